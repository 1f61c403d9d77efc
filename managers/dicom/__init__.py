"""DICOM files read with pydicom: header parsing within fixed bounds over ranged reads, the
attributes a record keeps, and the DICOM JSON model.

This package's ``__init__`` imports nothing, so a module that needs only the attribute lists
(``managers.dicom.attributes``) does not pull pydicom into the ingest Lambda.
"""
