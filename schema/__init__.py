"""The one Strawberry schema: types, queries and mutations merged here."""

from __future__ import annotations

from typing import Any

import strawberry

from schema.mutations import Mutation
from schema.queries import Query


class DicomMetaSchema(strawberry.Schema):
    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        # Expected errors (NOT_FOUND, NOT_DICOM…) are answers, not incidents; the unexpected
        # ones are logged once, with their traceback, where they are scrubbed (schema/view.py).
        return None


schema = DicomMetaSchema(query=Query, mutation=Mutation)

__all__ = ["schema"]
