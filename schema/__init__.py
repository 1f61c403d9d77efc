"""The one Strawberry schema: types, queries and mutations merged here."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter, SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types.scalar import ScalarDefinition

from schema.fanout import ExpandedSizeLimiter
from schema.mutations import Mutation
from schema.queries import Query
from schema.types import Long


class DicomMetaSchema(strawberry.Schema):
    def process_errors(self, errors: list[Any], execution_context: Any = None) -> None:
        # Expected errors (NOT_FOUND, NOT_DICOM…) are answers, not incidents; the unexpected
        # ones are logged once, with their traceback, where they are scrubbed (schema/view.py).
        return None


SCALARS: dict[object, ScalarDefinition] = {
    Long: strawberry.scalar(
        name="Long", serialize=int, parse_value=int, description="A 64-bit integer, serialized as a JSON number."
    )
}

# Bounds on what one document may ask for, checked before anything runs. Real queries are a
# few levels deep, ten leaves room for paged connections; each alias of a field is another S3
# or DynamoDB read; tokens bound the parser's work, introspection included (the depth limit
# does not count introspection fields, so GraphiQL's introspection query, about 200 tokens,
# passes).
MAX_QUERY_DEPTH = 10
MAX_ALIASES = 15
MAX_TOKENS = 2000

# Factories, not instances: Strawberry builds fresh extensions for each request. The expanded
# size comes first: the depth limiter and graphql-core's validation walk fragment expansions.
LIMITS: list[type[SchemaExtension] | Callable[[], SchemaExtension]] = [
    ExpandedSizeLimiter,
    lambda: QueryDepthLimiter(max_depth=MAX_QUERY_DEPTH),
    lambda: MaxAliasesLimiter(max_alias_count=MAX_ALIASES),
    lambda: MaxTokensLimiter(max_token_count=MAX_TOKENS),
]

schema = DicomMetaSchema(query=Query, mutation=Mutation, config=StrawberryConfig(scalar_map=SCALARS), extensions=LIMITS)

__all__ = ["schema"]
