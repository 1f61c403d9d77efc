"""What the GraphiQL editor opens with: one place to extend.

Every operation here must run on the files `make run` seeds; tests/test_graphiql.py runs them.
"""

from __future__ import annotations

from typing import Any

from seeds import seeded_s3_path

EXAMPLE_QUERY = """\
# Ctrl-Enter (or ▶) runs this query.
# The book icon opens the schema's docs.
#
# studies: the archive as a study list,
#          newest first, with each study's
#          series and counts. For the next
#          page, copy nextCursor into
#          `after` (Variables). Narrow it
#          with filter: {patientName:
#          "*doe*", modality: "CT",
#          studyDateFrom: "2024-01-01"}
# live:    the five fields of a seeded
#          file (Variables), read from S3

query StudyList($after: String, $s3Path: String!) {
  studies(first: 10, after: $after) {
    items {
      studyInstanceUid
      patientName
      patientId
      studyDate
      studyDescription
      modalitiesInStudy
      numberOfSeries
      numberOfInstances
      series {
        seriesNumber
        modality
        seriesDescription
        numberOfInstances
      }
    }
    nextCursor
  }
  live: dicomMetadata(s3Path: $s3Path) {
    s3Path
    patientId
    studyDate
    modality
    institutionName
    studyDescription
  }
}
"""


def example_variables() -> dict[str, Any]:
    """Return the variables of ``EXAMPLE_QUERY``: the first page, the first generated seed file."""
    return {"after": None, "s3Path": seeded_s3_path(1)}
