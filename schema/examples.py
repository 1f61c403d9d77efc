"""What the GraphiQL editor opens with: one place to extend.

Every operation here must run on the files `make run` seeds; tests/test_graphiql.py runs them.
"""

from __future__ import annotations

from typing import Any

from seeds import seeded_s3_path

EXAMPLE_QUERY = """\
# Ctrl-Enter (or ▶) runs this query on
# a seeded file (its path: Variables).
# The book icon opens the schema's docs.
#
# live:   five fields, read from S3 now
# stored: the record the ingest keeps
#         in DynamoDB
# ct2024: stored CT studies of 2024, one
#         per page: pass nextCursor as
#         `after` for the next; dicomJson
#         reads any attribute from S3

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
  ct2024: searchMetadata(
    filter: {modality: "CT", studyDateFrom: "2024-01-01", studyDateTo: "2024-12-31"}
    first: 1
  ) {
    items {
      s3Path
      studyDate
      dicomJson(keywords: ["SeriesDescription", "Rows"])
    }
    nextCursor
  }
}
"""


def example_variables() -> dict[str, Any]:
    """Return the variables of ``EXAMPLE_QUERY``: the first generated seed file."""
    return {"s3Path": seeded_s3_path(1)}
