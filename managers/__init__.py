"""The only code that talks to AWS and pydicom.

At this level, the facades the rest of the service calls: the skeleton's ``S3Manager``,
``DynamoDBManager`` and ``DicomManager`` (named as the skeleton named them), ``Managers``
(``bundle``: all of them, built once per app) and the ``Indexer`` (``indexing``: a header read
and its record written). Beneath them, one folder per concern:

- ``aws/``: boto3 clients and their errors, S3 object reads, typed S3 events, Step Functions;
- ``dicom/``: pydicom only: header parsing within bounds, ranged reads, the DICOM JSON model;
- ``store/``: the table, its items and indexes, the study counters and the study index.

This package imports none of them, so the Lambda can import ``managers.DynamoDBManager``
without pulling in pydicom or requests.
"""
