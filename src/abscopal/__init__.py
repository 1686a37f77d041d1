"""Abscopal: run a radiotherapy + immunotherapy clinical trial from first screening to final report."""

__version__ = "0.1.0"
