"""Mutation fields."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

import resolvers
from schema.types import Context, UploadResult


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Upload a metadata document (s3_path plus the five fields) to json/ "
        "through a presigned URL; the ingest then stores it. Same rules as POST /upload-json-to-s3."
    )
    def upload_json(self, info: Info[Context, None], payload: JSON) -> UploadResult:
        return UploadResult(s3_path=resolvers.upload_json(info.context.managers, payload))
