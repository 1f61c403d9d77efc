"""Where a frontend fetches what the study view lists: DICOMweb URLs of thumbnails, rendered
images and frames, for GraphQL to hand out (docs/API.md, "Pixels in GraphQL").

The URLs are the service's own ``/dicomweb`` routes under the request's base URL; they need
the same API key as the GraphQL request did.
"""

from __future__ import annotations


def study_url(base: str, study: str) -> str:
    return f"{base}/studies/{study}"


def series_url(base: str, study: str, series: str) -> str:
    return f"{study_url(base, study)}/series/{series}"


def instance_url(base: str, study: str, series: str, sop: str) -> str:
    return f"{series_url(base, study, series)}/instances/{sop}"


def frame_url(base: str, study: str, series: str, sop: str, frame: int) -> str:
    """The URL of one frame as stored (``multipart/related``), 1-based."""
    return f"{instance_url(base, study, series, sop)}/frames/{frame}"


def rendered_url(base: str, study: str, series: str, sop: str, frame: int | None = None) -> str:
    """The URL of an instance's rendered image (JPEG), of one frame when ``frame`` is given."""
    instance = instance_url(base, study, series, sop)
    return f"{instance}/rendered" if frame is None else f"{instance}/frames/{frame}/rendered"
