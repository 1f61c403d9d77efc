"""The OpenAPI 3 document of the REST routes, served at ``/openapi.json``.

It states the contract of docs/API.md: statuses, bodies and the one error shape. To document
a new route, add an entry to ``PATHS`` built with ``operation``; the fuzz tests
(``tests/test_fuzz.py``) then exercise it.
"""

from __future__ import annotations

from typing import Any

from config import S3_BUCKET_NAME
from metadata import FIELDS, MAX_FIELD_LENGTH

OPENAPI_VERSION = "3.0.3"

# What each error status of the contract means, as every operation's responses describe it.
ERROR_STATUSES: dict[int, str] = {
    400: "MISSING_PARAMETER, INVALID_S3_PATH, INVALID_PAYLOAD, INVALID_ARGUMENT or INVALID_CURSOR",
    401: "UNAUTHENTICATED: API keys are configured and none or a wrong one was sent",
    403: "FORBIDDEN_BUCKET: the path names another bucket",
    404: "NOT_FOUND: no such object, or no stored record",
    413: "PAYLOAD_TOO_LARGE: the body is over 1 MiB",
    415: "UNSUPPORTED_MEDIA_TYPE: the body is not sent as application/json",
    422: "NOT_DICOM: the object is not a readable DICOM file",
    406: "NOT_ACCEPTABLE: no representation the Accept header allows can be served (no transcoding)",
    503: "UPSTREAM_UNAVAILABLE: S3 or DynamoDB is unreachable, timing out or throttling",
}

# metadata.parse_s3_path's rule: s3://bucket/key, matched whole, no control characters.
S3_PATH_PATTERN = "^s3://[^/\\u0000-\\u001f\\u007f]+/[^\\u0000-\\u001f\\u007f]+$"
# An upload's path, minus dicom/_/….dcm, whose document would land among json/_/ (json_key_for).
UPLOAD_PATH_PATTERN = (
    "^s3://[^/\\u0000-\\u001f\\u007f]+/(?!dicom/_/[^\\u0000-\\u001f\\u007f]*\\.dcm$)[^\\u0000-\\u001f\\u007f]+$"
)


def ref(name: str) -> dict[str, str]:
    """Return a reference to a schema of ``components.schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: dict[str, Any], description: str, media_type: str = "application/json") -> dict[str, Any]:
    """Return a response (or request body) of JSON matching ``schema``."""
    return {"description": description, "content": {media_type: {"schema": schema}}}


def query_parameter(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    """Return a query-string parameter."""
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema}


def s3_path_parameter(description: str) -> dict[str, Any]:
    """Return the ``s3_path`` query parameter (missing or empty: 400 MISSING_PARAMETER)."""
    schema = {"type": "string", "pattern": S3_PATH_PATTERN, "example": f"s3://{S3_BUCKET_NAME}/dicom/anon-1.dcm"}
    return query_parameter("s3_path", description, schema, required=True)


# A DICOM date, YYYYMMDD (PS3.5 6.2, DA); days up to 28 keep every generated one real.
_DATE = r"(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|1\d|2[0-8])"
SEARCH_PARAMETERS = [
    query_parameter("PatientID", "exact PatientID", {"type": "string"}),
    query_parameter("Modality", "exact Modality", {"type": "string"}),
    query_parameter("InstitutionName", "exact InstitutionName", {"type": "string"}),
    query_parameter(
        "StudyDate",
        "a date or an inclusive range (QIDO-RS): A, A-B, -B or A-; empty: any",
        {"type": "string", "pattern": f"^(|{_DATE}|{_DATE}-|-{_DATE}|{_DATE}-{_DATE})$"},
    ),
    query_parameter("limit", "page size, 1 to 500 (default 50)", {"type": "integer", "minimum": 1, "maximum": 500}),
    query_parameter(
        "cursor", "next_cursor of the previous page (opaque; INVALID_CURSOR when altered)", {"type": "string"}
    ),
]


def operation(
    summary: str,
    ok: tuple[int, dict[str, Any], str],
    errors: tuple[int, ...],
    *,
    parameters: list[dict[str, Any]] | None = None,
    request_body: dict[str, Any] | None = None,
    public: bool = False,
    media_type: str = "application/json",
) -> dict[str, Any]:
    """Return an operation: its success answer (of ``media_type``), its contract errors, and
    whether it needs a key."""
    status, schema, description = ok
    responses = {str(status): json_body(schema, description, media_type)}
    for code in (*errors, *(() if public else (401,))):
        responses[str(code)] = json_body(ref("Error"), ERROR_STATUSES[code])
    op: dict[str, Any] = {"summary": summary, "responses": dict(sorted(responses.items()))}
    if parameters:
        op["parameters"] = parameters
    if request_body:
        op["requestBody"] = request_body
    if public:
        op["security"] = []
    return op


def _string_or_null(description: str) -> dict[str, Any]:
    return {"type": "string", "nullable": True, "maxLength": MAX_FIELD_LENGTH, "description": description}


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "request_id"],
                "properties": {
                    "code": {"type": "string", "example": "NOT_FOUND"},
                    "message": {"type": "string"},
                    "request_id": {"type": "string"},
                },
            }
        },
    },
    "Metadata": {
        "type": "object",
        "required": ["s3_path", *FIELDS],
        "properties": {
            "s3_path": {"type": "string"},
            **{field: {"type": "string", "nullable": True} for field in FIELDS},
        },
    },
    "MetadataDocument": {
        "type": "object",
        "required": ["s3_path"],
        "additionalProperties": False,
        "properties": {
            "s3_path": {"type": "string", "pattern": UPLOAD_PATH_PATTERN, "description": "the DICOM file it describes"},
            **{field: _string_or_null(f"DICOM {field}") for field in FIELDS},
        },
    },
    "SearchPage": {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": ref("Metadata")},
            "next_cursor": {"type": "string", "nullable": True, "description": "null on the last page"},
        },
    },
    "UploadResult": {
        "type": "object",
        "required": ["s3_path"],
        "properties": {"s3_path": {"type": "string", "example": f"s3://{S3_BUCKET_NAME}/json/anon-1.json"}},
    },
    "Health": {"type": "object", "required": ["message"], "properties": {"message": {"type": "string"}}},
    "Readiness": {
        "type": "object",
        "required": ["s3", "dynamodb"],
        "properties": {"s3": {"type": "string", "enum": ["ok"]}, "dynamodb": {"type": "string", "enum": ["ok"]}},
    },
}

# DICOMweb (PS3.18) under /dicomweb: QIDO-RS keys by keyword (a tag such as 00100020 works too).
DICOM_JSON = "application/dicom+json"
_UID = r"[0-9]+(\.[0-9]+)*"
_UID_LIST = f"^({_UID}([\\\\,]{_UID})*)?$"
_TEXT_PATTERN = r"^\**[^*?]{0,64}\**$"
_DATE_RANGE = {"type": "string", "pattern": f"^(|{_DATE}|{_DATE}-|-{_DATE}|{_DATE}-{_DATE})$"}
_MODALITIES = {"type": "string", "pattern": "^([A-Za-z0-9_]{1,16}([\\\\,][A-Za-z0-9_]{1,16})*)?$"}


def uid_in_path(name: str, description: str) -> dict[str, Any]:
    """Return a UID path parameter (a malformed one: 400 INVALID_ARGUMENT)."""
    schema = {"type": "string", "pattern": f"^{_UID}$", "maxLength": 64}
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _uid_list(description: str) -> dict[str, Any]:
    return {"type": "string", "pattern": _UID_LIST, "description": description}


QIDO_CONTROL_PARAMETERS = [
    query_parameter(
        "limit",
        "results per answer (default 100; above 1000: 1000 and a Warning header)",
        {"type": "integer", "minimum": 1},
    ),
    query_parameter("offset", "results skipped, at most 10000", {"type": "integer", "minimum": 0, "maximum": 10000}),
    query_parameter(
        "includefield", "more attributes: keywords or tags, comma-separated or repeated, or all", {"type": "string"}
    ),
    query_parameter("fuzzymatching", "true: answered with literal matching and a Warning header", {"type": "boolean"}),
]
QIDO_STUDY_PARAMETERS = [
    query_parameter("StudyInstanceUID", "one UID or a list (\\ or ,)", _uid_list("UIDs")),
    query_parameter(
        "PatientID", "exact, or value* / *value* for a prefix", {"type": "string", "pattern": _TEXT_PATTERN}
    ),
    query_parameter(
        "PatientName",
        "exact, NAME* (prefix), *text* (a name component's prefix); any case",
        {"type": "string", "pattern": _TEXT_PATTERN},
    ),
    query_parameter("StudyDate", "a date or an inclusive range: A, A-B, -B or A-", _DATE_RANGE),
    query_parameter(
        "AccessionNumber", "exact, or value* / *value* for a prefix", {"type": "string", "pattern": _TEXT_PATTERN}
    ),
    query_parameter(
        "StudyDescription",
        "exact, text* (prefix), *text* (a word's prefix)",
        {"type": "string", "pattern": _TEXT_PATTERN},
    ),
    query_parameter("ModalitiesInStudy", "a modality or a list (\\ or ,): studies with any", _MODALITIES),
]
QIDO_SERIES_PARAMETERS = [
    query_parameter("SeriesInstanceUID", "one UID or a list (\\ or ,)", _uid_list("UIDs")),
    query_parameter("Modality", "a modality or a list (\\ or ,)", _MODALITIES),
    query_parameter("SeriesDate", "a date or an inclusive range: A, A-B, -B or A-", _DATE_RANGE),
]
QIDO_INSTANCE_PARAMETERS = [
    query_parameter("SOPInstanceUID", "one UID or a list (\\ or ,)", _uid_list("UIDs")),
]
_DICOM_JSON_ARRAY = {"type": "array", "items": {"type": "object"}}


def qido(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a QIDO-RS search operation: an array of DICOM JSON objects, [] when nothing matches."""
    return operation(
        summary,
        (200, _DICOM_JSON_ARRAY, "the matching results in the DICOM JSON model ([] for none)"),
        (400, 503),
        parameters=parameters + QIDO_CONTROL_PARAMETERS,
        media_type=DICOM_JSON,
    )


def wado_metadata(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a WADO-RS metadata operation: each instance's header, without bulk data."""
    return operation(
        summary,
        (200, _DICOM_JSON_ARRAY, "each instance's header in the DICOM JSON model"),
        (400, 404, 503),
        parameters=parameters,
        media_type=DICOM_JSON,
    )


def wado_retrieve(summary: str, parameters: list[dict[str, Any]], part_type: str) -> dict[str, Any]:
    """Return a WADO-RS retrieve operation: a multipart/related answer of ``part_type`` parts."""
    described = operation(
        summary, (200, {"type": "string", "format": "binary"}, "the parts"), (400, 404, 406, 422, 503)
    )
    described["parameters"] = parameters
    described["responses"]["200"]["content"] = {
        f'multipart/related; type="{part_type}"': {"schema": {"type": "string", "format": "binary"}}
    }
    return described


_FRAMES = {
    "name": "frames",
    "in": "path",
    "required": True,
    "description": "1-based frame numbers, comma-separated, in the order to answer (at most 1000)",
    "schema": {"type": "string", "pattern": "^[0-9]{1,9}(,[0-9]{1,9}){0,999}$"},
}
_BULK_PATH = {
    "name": "path",
    "in": "path",
    "required": True,
    "description": "the value's tag, or tags and item indexes alternating (00880200/0/7FE00010), as BulkDataURI gives",
    "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{8}(/[0-9]{1,6}/[0-9A-Fa-f]{8}){0,64}$"},
}
_RENDER_PARAMETERS = [
    query_parameter(
        "viewport",
        "width,height the image fits in (aspect kept; 1 to 8192)",
        {"type": "string", "pattern": "^[0-9]+,[0-9]+$"},
    ),
    query_parameter("window", "center,width[,LINEAR|LINEAR_EXACT|SIGMOID]", {"type": "string"}),
    query_parameter("quality", "JPEG quality, 1 to 100 (90)", {"type": "integer", "minimum": 1, "maximum": 100}),
]


def rendered(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a rendered or thumbnail operation: image/jpeg (default) or image/png."""
    described = operation(
        summary, (200, {"type": "string", "format": "binary"}, "the image"), (400, 404, 406, 422, 503)
    )
    described["parameters"] = parameters + _RENDER_PARAMETERS
    binary = {"schema": {"type": "string", "format": "binary"}}
    described["responses"]["200"]["content"] = {"image/jpeg": binary, "image/png": binary}
    return described


_FRAME = {
    "name": "frame",
    "in": "path",
    "required": True,
    "description": "a 1-based frame number",
    "schema": {"type": "integer", "minimum": 1},
}
_STUDY = uid_in_path("study", "StudyInstanceUID")
_SERIES = uid_in_path("series", "SeriesInstanceUID")
_INSTANCE = uid_in_path("instance", "SOPInstanceUID")
_STUDY_LEVEL = QIDO_STUDY_PARAMETERS
_SERIES_LEVEL = QIDO_STUDY_PARAMETERS + QIDO_SERIES_PARAMETERS
_INSTANCE_LEVEL = _SERIES_LEVEL + QIDO_INSTANCE_PARAMETERS
DICOMWEB_PATHS: dict[str, dict[str, Any]] = {
    "/dicomweb/studies": {"get": qido("QIDO-RS: search for studies", _STUDY_LEVEL)},
    "/dicomweb/series": {"get": qido("QIDO-RS: search for series of any study", _SERIES_LEVEL)},
    "/dicomweb/studies/{study}/series": {
        "get": qido("QIDO-RS: search for series of a study", [_STUDY, *_SERIES_LEVEL])
    },
    "/dicomweb/instances": {"get": qido("QIDO-RS: search for instances of any study", _INSTANCE_LEVEL)},
    "/dicomweb/studies/{study}/instances": {
        "get": qido("QIDO-RS: search for instances of a study", [_STUDY, *_INSTANCE_LEVEL])
    },
    "/dicomweb/studies/{study}/series/{series}/instances": {
        "get": qido("QIDO-RS: search for instances of a series", [_STUDY, _SERIES, *_INSTANCE_LEVEL])
    },
    "/dicomweb/studies/{study}/metadata": {
        "get": wado_metadata("WADO-RS: the headers of a study's instances", [_STUDY])
    },
    "/dicomweb/studies/{study}/series/{series}/metadata": {
        "get": wado_metadata("WADO-RS: the headers of a series' instances", [_STUDY, _SERIES])
    },
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata": {
        "get": wado_metadata("WADO-RS: the header of one instance", [_STUDY, _SERIES, _INSTANCE])
    },
    "/dicomweb/studies/{study}": {
        "get": wado_retrieve("WADO-RS: a study's stored files, streamed", [_STUDY], "application/dicom")
    },
    "/dicomweb/studies/{study}/series/{series}": {
        "get": wado_retrieve("WADO-RS: a series' stored files, streamed", [_STUDY, _SERIES], "application/dicom")
    },
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}": {
        "get": wado_retrieve("WADO-RS: one stored file", [_STUDY, _SERIES, _INSTANCE], "application/dicom")
    },
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}/rendered": {
        "get": rendered("WADO-RS: an instance's first frame, rendered", [_STUDY, _SERIES, _INSTANCE])
    },
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered": {
        "get": rendered("WADO-RS: one frame, rendered", [_STUDY, _SERIES, _INSTANCE, _FRAME])
    },
    "/dicomweb/studies/{study}/thumbnail": {
        "get": rendered("WADO-RS: a study's thumbnail (its first series' middle instance)", [_STUDY])
    },
    "/dicomweb/studies/{study}/series/{series}/thumbnail": {
        "get": rendered("WADO-RS: a series' thumbnail (its middle instance)", [_STUDY, _SERIES])
    },
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}/thumbnail": {
        "get": rendered("WADO-RS: an instance's thumbnail (its middle frame)", [_STUDY, _SERIES, _INSTANCE])
    },
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}": {
        "get": wado_retrieve(
            "WADO-RS: frames of one instance, one ranged read each",
            [_STUDY, _SERIES, _INSTANCE, _FRAMES],
            "application/octet-stream",
        )
    },
    "/dicomweb/studies/{study}/series/{series}/instances/{instance}/bulkdata/{path}": {
        "get": wado_retrieve(
            "WADO-RS: a bulk value of one instance (a BulkDataURI of its metadata), read by range",
            [_STUDY, _SERIES, _INSTANCE, _BULK_PATH],
            "application/octet-stream",
        )
    },
}


PATHS: dict[str, dict[str, Any]] = {
    "/health": {
        "get": operation(
            "Liveness: the process answers (no dependency is checked)", (200, ref("Health"), "alive"), (), public=True
        )
    },
    "/ready": {
        "get": operation(
            'Readiness: S3 and DynamoDB answer. A 503 body also names each check, "ok" or "unavailable"',
            (200, ref("Readiness"), "both answer"),
            (503,),
            public=True,
        )
    },
    "/dicom-metadata": {
        "get": operation(
            "The five fields, read live from the DICOM file in S3",
            (200, ref("Metadata"), "the file's metadata"),
            (400, 403, 404, 422, 503),
            parameters=[s3_path_parameter("s3 path of a DICOM file")],
        )
    },
    "/upload-json-to-s3": {
        "post": operation(
            "Upload a metadata document to json/ through a presigned URL; the ingest then stores it",
            (201, ref("UploadResult"), "where the JSON document was stored"),
            (400, 403, 413, 415, 503),
            request_body={"required": True, **json_body(ref("MetadataDocument"), "s3_path plus the five fields")},
        )
    },
    "/fetch-dicom-metadata": {
        "get": operation(
            "The record the ingest stored in DynamoDB",
            (200, ref("Metadata"), "the stored metadata"),
            (400, 403, 404, 503),
            parameters=[s3_path_parameter("s3 path of a DICOM file")],
        )
    },
    "/search-metadata": {
        "get": operation(
            "Stored records matching QIDO-RS style parameters (PS3.18 8.3.4), by StudyDate then s3 path",
            (200, ref("SearchPage"), "one page of records, and the cursor of the next"),
            (400, 503),
            parameters=SEARCH_PARAMETERS,
        )
    },
    "/openapi.json": {"get": operation("This document", (200, {"type": "object"}, "the OpenAPI document"), ())},
    **DICOMWEB_PATHS,
}


def openapi_document() -> dict[str, Any]:
    """Return the whole OpenAPI 3 document."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "dicom-meta REST API",
            "version": "1",
            "description": "REST compatibility routes and DICOMweb (/dicomweb); GraphQL is served at /graphql.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        # Either scheme; enforced only when API keys are configured.
        "security": [{"bearer": []}, {"apiKey": []}],
    }
