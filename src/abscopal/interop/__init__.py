"""Data in and out in the formats the field uses (../shared/specs/interop.md): SDTM + define.xml, ODM 1.3.2,
REDCap import, DICOM RT import. Exports read the store and call the engines; imports go through the services."""
