"""CDISC SDTMIG 3.4 datasets derived from the trial (interop.md §2), written as SAS XPORT v5, CSV and Dataset-JSON."""
