"""DICOMweb under /dicomweb (PS3.18): QIDO-RS searches and WADO-RS metadata as
application/dicom+json; WADO-RS retrieve of files and frames as multipart/related.

Thin views over ``resolvers.dicomweb``: the query string goes in as given (a repeated key
once per value), the answer comes out as a JSON array. Errors take the contract's JSON shape
like every route's (``rest/errors.py``); warnings are ``Warning: 299 <service>: <text>``
headers (PS3.18 8.3.4), ``<service>`` being this blueprint's base URL.

A search that matches nothing answers ``200 []`` rather than the ``204`` PS3.18 allows:
dicomweb-client reads both as no results, but OHIF's study loader maps over the answer of a
series search, which a 204 leaves empty (``null`` in a browser).
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator

from flask import Blueprint, Response, request

from resolvers.dicomweb import pixels, retrieve, search
from resolvers.dicomweb import query as qido
from rest import managers
from web.request_id import current_request_id

bp = Blueprint("dicomweb", __name__, url_prefix="/dicomweb")

DICOM_JSON = "application/dicom+json"
SKIPPED_WARNING = "{count} of the instances could not be read (gone or no longer DICOM) and were left out."


@bp.get("/studies")
def search_for_studies() -> Response:
    """Search for studies (QIDO-RS)."""
    return _search("study")


@bp.get("/series")
def search_for_series() -> Response:
    """Search for series of any study (QIDO-RS)."""
    return _search("series")


@bp.get("/studies/<study>/series")
def search_for_study_series(study: str) -> Response:
    """Search for series of one study (QIDO-RS)."""
    return _search("series", study)


@bp.get("/instances")
def search_for_instances() -> Response:
    """Search for instances of any study (QIDO-RS)."""
    return _search("instance")


@bp.get("/studies/<study>/instances")
def search_for_study_instances(study: str) -> Response:
    """Search for instances of one study (QIDO-RS)."""
    return _search("instance", study)


@bp.get("/studies/<study>/series/<series>/instances")
def search_for_series_instances(study: str, series: str) -> Response:
    """Search for instances of one series (QIDO-RS)."""
    return _search("instance", study, series)


@bp.get("/studies/<study>/metadata")
def study_metadata(study: str) -> Response:
    """Return the header of every instance of a study (WADO-RS metadata)."""
    return _metadata(study)


@bp.get("/studies/<study>/series/<series>/metadata")
def series_metadata(study: str, series: str) -> Response:
    """Return the header of every instance of a series (WADO-RS metadata)."""
    return _metadata(study, series)


@bp.get("/studies/<study>/series/<series>/instances/<instance>/metadata")
def instance_metadata(study: str, series: str, instance: str) -> Response:
    """Return the header of one instance (WADO-RS metadata)."""
    return _metadata(study, series, instance)


def _search(level: qido.Level, study: str | None = None, series: str | None = None) -> Response:
    """Run a QIDO-RS search of ``level`` with the request's query string."""
    query = qido.parse_query(level, request.args.items(multi=True), study, series)
    models, warnings = search.search_models(managers(), query)
    return _dicom_json(json.dumps(models, separators=(",", ":")), warnings)


def _metadata(study: str, series: str | None = None, instance: str | None = None) -> Response:
    """Answer the headers of the instances a WADO-RS metadata route names; unreadable ones left out."""
    bundle = managers()
    instances = retrieve.metadata_instances(bundle, study, series, instance)
    # Each header is written out as it arrives, so the answer holds JSON text, not parsed headers.
    parts: list[str] = []
    for header in retrieve.read_headers(bundle, instances, _service_url(), current_request_id()):
        if header is not None:
            parts.append(json.dumps(header, separators=(",", ":")))
    skipped = len(instances) - len(parts)
    warnings = (SKIPPED_WARNING.format(count=skipped),) if skipped else ()
    return _dicom_json("[" + ",".join(parts) + "]", warnings)


@bp.get("/studies/<study>")
def retrieve_study(study: str) -> Response:
    """Return the stored files of a study (WADO-RS retrieve), streamed."""
    return _multipart(pixels.instance_files(managers(), study, None, None, request.headers.get("Accept")))


@bp.get("/studies/<study>/series/<series>")
def retrieve_series(study: str, series: str) -> Response:
    """Return the stored files of a series (WADO-RS retrieve), streamed."""
    return _multipart(pixels.instance_files(managers(), study, series, None, request.headers.get("Accept")))


@bp.get("/studies/<study>/series/<series>/instances/<instance>")
def retrieve_instance(study: str, series: str, instance: str) -> Response:
    """Return the stored file of one instance (WADO-RS retrieve), streamed."""
    return _multipart(pixels.instance_files(managers(), study, series, instance, request.headers.get("Accept")))


@bp.get("/studies/<study>/series/<series>/instances/<instance>/frames/<frames>")
def retrieve_frames(study: str, series: str, instance: str, frames: str) -> Response:
    """Return frames of one instance (WADO-RS retrieve), one ranged read each, in the order asked."""
    accept = request.headers.get("Accept")
    return _multipart(pixels.instance_frames(managers(), study, series, instance, frames, accept))


@bp.get("/studies/<study>/series/<series>/instances/<instance>/bulkdata/<path:path>")
def bulk_data(study: str, series: str, instance: str, path: str) -> Response:
    """Return a bulk value of one instance, a BulkDataURI of its metadata, read by range."""
    accept = request.headers.get("Accept")
    return _multipart(pixels.bulk_data(managers(), study, series, instance, path, accept))


@bp.get("/studies/<study>/series/<series>/instances/<instance>/rendered")
def rendered_instance(study: str, series: str, instance: str) -> Response:
    """Return an instance's first frame rendered as JPEG or PNG (viewport, window, quality)."""
    how = pixels.rendering(request.headers.get("Accept"), request.args.to_dict())
    return _image(pixels.rendered_frame(managers(), study, series, instance, None, how), how)


@bp.get("/studies/<study>/series/<series>/instances/<instance>/frames/<frame>/rendered")
def rendered_frame(study: str, series: str, instance: str, frame: str) -> Response:
    """Return one frame rendered as JPEG or PNG (viewport, window, quality)."""
    how = pixels.rendering(request.headers.get("Accept"), request.args.to_dict())
    return _image(pixels.rendered_frame(managers(), study, series, instance, frame, how), how)


@bp.get("/studies/<study>/thumbnail")
def study_thumbnail(study: str) -> Response:
    """Return a small image of the study: its first series' middle instance."""
    return _thumbnail(study)


@bp.get("/studies/<study>/series/<series>/thumbnail")
def series_thumbnail(study: str, series: str) -> Response:
    """Return a small image of the series: its middle instance."""
    return _thumbnail(study, series)


@bp.get("/studies/<study>/series/<series>/instances/<instance>/thumbnail")
def instance_thumbnail(study: str, series: str, instance: str) -> Response:
    """Return a small image of the instance: its middle frame."""
    return _thumbnail(study, series, instance)


def _thumbnail(study: str, series: str | None = None, instance: str | None = None) -> Response:
    how = pixels.rendering(request.headers.get("Accept"), request.args.to_dict(), thumbnail=True)
    return _image(pixels.thumbnail(managers(), study, series, instance, how), how)


def _image(data: bytes, how: pixels.Rendering) -> Response:
    return Response(data, mimetype=how.media_type)


def _multipart(parts: list[pixels.Part]) -> Response:
    """Stream ``parts`` as one multipart/related answer (RFC 2387), each part as it is read.

    A part whose bytes turn out to be gone (a file deleted since it was indexed) is left out
    rather than sent empty. The first part's first bytes are read before the status is sent,
    so a request whose first frame cannot be read or decoded gets its error status; a later
    failure can only cut the answer short.
    """
    boundary = uuid.uuid4().hex
    part_type = parts[0].content_type.split(";")[0] if parts else pixels.INSTANCE_MEDIA_TYPE

    def body() -> Iterator[bytes]:
        for part in parts:
            first = next(part.chunks, None)
            if first is None:
                continue
            yield f"--{boundary}\r\nContent-Type: {part.content_type}\r\n\r\n".encode("ascii")
            yield first
            yield from part.chunks
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode("ascii")

    stream = body()
    first = next(stream)
    content_type = f'multipart/related; type="{part_type}"; boundary={boundary}'
    return Response(itertools.chain([first], stream), content_type=content_type, direct_passthrough=True)


def _dicom_json(body: str, warnings: tuple[str, ...]) -> Response:
    response = Response(body, mimetype=DICOM_JSON)
    service = _service_url()
    for text in warnings:
        response.headers.add("Warning", f"299 {service}: {text}")
    return response


def _service_url() -> str:
    """This service's DICOMweb base URL, as the request reached it."""
    return request.root_url.rstrip("/") + (bp.url_prefix or "")
