"""The one Strawberry schema: types, queries and mutations merged here."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.schema.config import StrawberryConfig

from schema.mutations import Mutation
from schema.queries import Query
from schema.types import Long


class DicomMetaSchema(strawberry.Schema):
    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        # Expected errors (NOT_FOUND, NOT_DICOM…) are answers, not incidents; the unexpected
        # ones are logged once, with their traceback, where they are scrubbed (schema/view.py).
        return None


SCALARS = {
    Long: strawberry.scalar(
        name="Long", serialize=int, parse_value=int, description="A 64-bit integer, serialized as a JSON number."
    )
}

schema = DicomMetaSchema(query=Query, mutation=Mutation, config=StrawberryConfig(scalar_map=SCALARS))

__all__ = ["schema"]
