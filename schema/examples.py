"""What the GraphiQL editor opens with: one place to extend (a search, when the schema has one).

Every operation here must run on the files `make run` seeds; tests/test_graphiql.py runs them.
"""

from __future__ import annotations

from typing import Any

from config import S3_BUCKET_NAME
from local.samples import SEED_UID_ROOT

EXAMPLE_QUERY = """\
# Ctrl-Enter (or ▶) runs this query on
# a seeded file (its path: Variables).
# The book icon opens the schema's docs.
#
# live:   five fields, read from S3 now
# stored: the record in DynamoDB; null
#         until the metadata is uploaded
#         (uploadJson in the docs)

query SeededFile($s3Path: String!) {
  live: dicomMetadata(s3Path: $s3Path) {
    s3Path
    patientId
    studyDate
    modality
    institutionName
    studyDescription
  }
  stored: storedMetadata(s3Path: $s3Path) {
    patientId
    studyDate
    modality
    institutionName
    studyDescription
  }
}
"""


def example_variables() -> dict[str, Any]:
    """Return the variables of ``EXAMPLE_QUERY``: the first generated seed file."""
    return {"s3Path": f"s3://{S3_BUCKET_NAME}/dicom/anon-{SEED_UID_ROOT}1.dcm"}
