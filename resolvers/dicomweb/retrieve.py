"""WADO-RS retrieve (PS3.18 10.4): the headers of a study, a series or an instance, as metadata."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

from errors import DicomMetaError, InvalidArgument, NotFound, UpstreamUnavailable, scrubbed_traceback
from managers.bundle import Managers
from managers.store.study_index import StudyIndex
from managers.store.study_records import InstanceRecord
from resolvers.arguments import checked_uid
from resolvers.dicomweb.search import Budget, instance_order, instances_of
from resolvers.urls import instance_url

log = logging.getLogger(__name__)

# Headers one WADO-RS metadata answer holds: a large CT study (2,000 slices) with room to spare.
MAX_METADATA_INSTANCES = 5_000
# Headers read at once per request (the pool bounds the app's total); a window's answers are
# all that is held besides the JSON already written.
HEADER_WINDOW = 64


def metadata_instances(
    managers: Managers, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[InstanceRecord]:
    """Return the instances of a study, a series of it, or one instance of that series, in order.

    Raises
    ------
    InvalidArgument
        For a malformed UID, or more than ``MAX_METADATA_INSTANCES`` instances.
    NotFound
        For an unknown study, a series not of that study, an instance not of that series.
    """
    study = checked_uid(study_uid, "StudyInstanceUID")
    series = None if series_uid is None else checked_uid(series_uid, "SeriesInstanceUID")
    sop = None if sop_uid is None else checked_uid(sop_uid, "SOPInstanceUID")
    index = managers.studies
    if sop is not None:
        found = [
            i for i in index.instances_by_sop(sop) if (i.study_instance_uid, i.series_instance_uid) == (study, series)
        ]
        if not found:
            raise NotFound("no such instance in that series and study")
        return sorted(found, key=instance_order)[:1]
    if series is not None:
        record = index.get_series([series]).get(series)
        if record is None or record.study_instance_uid != study:
            raise NotFound("no such series in that study")
        _check_size(record.number_of_instances)
        return _all_instances(index, [series])
    study_record = index.get_studies([study]).get(study)
    if study_record is None:
        raise NotFound("no such study")
    _check_size(study_record.number_of_instances)
    series_uids = [record.series_instance_uid for record in index.series_of([study]).get(study, [])]
    return _all_instances(index, series_uids)


def _check_size(count: int) -> None:
    if count > MAX_METADATA_INSTANCES:
        raise InvalidArgument(
            f"the metadata of at most {MAX_METADATA_INSTANCES} instances is answered at once; "
            "ask for each series' metadata instead"
        )


def _all_instances(index: StudyIndex, series_uids: list[str]) -> list[InstanceRecord]:
    """Return every instance of these series, series after series, within the metadata bound."""
    budget = Budget(MAX_METADATA_INSTANCES + 1)
    instances = [instance for uid in series_uids for instance in instances_of(index, uid, budget)]
    if budget.exhausted:
        _check_size(MAX_METADATA_INSTANCES + 1)
    return instances


def read_headers(
    managers: Managers, instances: Sequence[InstanceRecord], service_url: str, request_id: str = ""
) -> Iterator[Any]:
    """Yield each instance's header in the DICOM JSON model, or ``None`` for one that cannot be read.

    Bulk values (Pixel Data among them) are written as ``BulkDataURI`` under ``service_url``,
    the DICOMweb base URL the request reached (``…/instances/{i}/bulkdata/{path}``).

    Headers are read header-only, ``HEADER_WINDOW`` at a time on the app's pool, and yielded
    in order. A file gone since it was indexed, or no longer readable DICOM, is ``None``:
    the rest of the study is still answered.

    Raises
    ------
    UpstreamUnavailable
        When S3 does not answer: no header could be read, so the request fails.
    """
    read = partial(_header, managers, service_url=service_url, request_id=request_id)
    for start in range(0, len(instances), HEADER_WINDOW):
        yield from managers.pool.map(read, instances[start : start + HEADER_WINDOW])


def _header(managers: Managers, instance: InstanceRecord, service_url: str, request_id: str) -> dict[str, Any] | None:
    bulk = instance_url(
        service_url, instance.study_instance_uid, instance.series_instance_uid, instance.sop_instance_uid
    )
    try:
        return managers.dicom.dicom_json(instance.s3_path, bulk_data_uri=f"{bulk}/bulkdata")
    except UpstreamUnavailable:
        raise
    except DicomMetaError:
        return None
    except Exception as exc:  # noqa: BLE001 - one bad file must not fail the study; logged scrubbed
        log.error(
            "unexpected error reading a header for metadata (request %s)\n%s", request_id, scrubbed_traceback(exc)
        )
        return None
