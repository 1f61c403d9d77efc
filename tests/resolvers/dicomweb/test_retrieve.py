"""WADO-RS retrieve of files and frames, on pydicom's own files of each transfer syntax, read
from the bucket where they lie: through dicomweb-client over HTTP as users call it, and
through the Flask client for errors and for what one frame costs at S3."""

from __future__ import annotations

import array
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from flask import Flask
from flask.testing import FlaskClient
from pydicom.encaps import generate_frames
from pydicom.uid import UID, generate_uid

from app import create_app
from config import S3_BUCKET_NAME
from local.server import LocalAWS
from tests.resolvers.dicomweb.test_dicomweb import body, wait_for

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
# One file or more of each transfer syntax pydicom ships pixel data in (offline).
FILES = [
    "CT_small.dcm",  # Explicit VR Little Endian, 16-bit signed
    "MR_small_implicit.dcm",  # Implicit VR Little Endian
    "MR_small_bigendian.dcm",  # Explicit VR Big Endian, 16-bit: swapped
    "rtdose.dcm",  # Implicit VR, 32-bit, 15 frames
    "SC_rgb_small_odd.dcm",  # RGB, 8-bit, odd size
    "examples_palette.dcm",  # PALETTE COLOR, 8-bit
    "SC_rgb_rle_2frame.dcm",  # RLE, 2 frames
    "MR_small_RLE.dcm",  # RLE, 16-bit
    "SC_jpeg_no_color_transform.dcm",  # JPEG baseline
    "JPEG-lossy.dcm",  # JPEG extended, 12-bit, which pylibjpeg cannot decode (a misplaced marker)
    "JPGExtended.dcm",  # JPEG extended, 12-bit
    "SC_rgb_jpeg_gdcm.dcm",  # JPEG lossless
    "MR_small_jpeg_ls_lossless.dcm",  # JPEG-LS lossless
    "JPEGLSNearLossless_08.dcm",  # JPEG-LS near-lossless
    "MR_small_jp2klossless.dcm",  # JPEG 2000 lossless
    "JPEG2000.dcm",  # JPEG 2000
]
KEY = "retrieve-key"
NATIVE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
ANY_SYNTAX = (("application/octet-stream", "*"),)


@dataclass
class Stored:
    """One file put under dicom/: its UIDs, its bytes, and its frames as pydicom reads them."""

    name: str
    study: str
    series: str
    sop: str
    syntax: str
    data: bytes
    frames: list[bytes]


def expected_frames(dataset: pydicom.Dataset) -> list[bytes]:
    """The frames pydicom reads from a file; native big endian ones swapped to little endian."""
    count = int(dataset.get("NumberOfFrames", 1) or 1)
    if dataset.file_meta.TransferSyntaxUID.is_compressed:
        return list(generate_frames(dataset.PixelData, number_of_frames=count))
    # The frame's own bytes: an odd-length value's padding byte belongs to no frame.
    size = dataset.Rows * dataset.Columns * dataset.get("SamplesPerPixel", 1) * dataset.BitsAllocated // 8
    frames = [dataset.PixelData[n * size : (n + 1) * size] for n in range(count)]
    if dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2" and dataset.BitsAllocated in (16, 32):
        swapped = []
        for frame in frames:
            samples = array.array("H" if dataset.BitsAllocated == 16 else "I", frame)
            samples.byteswap()
            swapped.append(samples.tobytes())
        frames = swapped
    return frames


def store(name: str, patient: str, modality: str | None = None) -> Stored:
    """Give a pydicom test file UIDs of its own (pixel data untouched) and return it as stored.

    ``modality``: given to a file that has none.
    """
    dataset = pydicom.dcmread(TEST_FILES / name)
    dataset.PatientID = patient
    if modality and not dataset.get("Modality"):
        dataset.Modality = modality
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    data = buffer.getvalue()
    stored = pydicom.dcmread(io.BytesIO(data))
    return Stored(
        name,
        str(stored.StudyInstanceUID),
        str(stored.SeriesInstanceUID),
        str(stored.SOPInstanceUID),
        str(stored.file_meta.TransferSyntaxUID),
        data,
        expected_frames(stored),
    )


@pytest.fixture(scope="module")
def stored(app: Flask, s3: Any) -> Iterator[dict[str, Stored]]:
    patient = f"RETRIEVE-{uuid.uuid4().hex[:8]}"
    files = {name: store(name, patient) for name in FILES}
    keys = []
    for item in files.values():
        key = f"dicom/retrieve-tests/{item.sop}.dcm"
        s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=item.data)
        keys.append(key)
    client = app.test_client()

    def indexed() -> bool:
        answer = client.get("/dicomweb/studies", query_string={"PatientID": patient})
        return answer.status_code == 200 and len(body(answer)) == len(files)

    assert wait_for(indexed), "the files were not indexed in time"
    yield files
    for key in keys:
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)


@pytest.mark.parametrize("name", FILES)
def test_every_frame_is_the_file_s_own_bytes(dicomweb: DICOMwebClient, stored: dict[str, Stored], name: str) -> None:
    item = stored[name]
    numbers = list(range(1, len(item.frames) + 1))
    frames = dicomweb.retrieve_instance_frames(item.study, item.series, item.sop, numbers, media_types=ANY_SYNTAX)
    assert frames == item.frames


@pytest.mark.parametrize("name", FILES)
def test_an_instance_is_the_stored_file(dicomweb: DICOMwebClient, stored: dict[str, Stored], name: str) -> None:
    item = stored[name]
    instance = dicomweb.retrieve_instance(item.study, item.series, item.sop, media_types=(("application/dicom", "*"),))
    assert instance.SOPInstanceUID == item.sop
    assert instance.PixelData == pydicom.dcmread(io.BytesIO(item.data)).PixelData


def test_a_series_and_a_study_are_their_files(dicomweb: DICOMwebClient, stored: dict[str, Stored]) -> None:
    item = stored["CT_small.dcm"]
    (series,) = dicomweb.retrieve_series(item.study, item.series)
    (study,) = dicomweb.retrieve_study(item.study)
    assert series.SOPInstanceUID == study.SOPInstanceUID == item.sop
    assert study.PixelData == pydicom.dcmread(io.BytesIO(item.data)).PixelData


def test_frames_asked_in_any_order_come_in_that_order(dicomweb: DICOMwebClient, stored: dict[str, Stored]) -> None:
    item = stored["rtdose.dcm"]
    frames = dicomweb.retrieve_instance_frames(item.study, item.series, item.sop, [15, 1, 7, 1])
    assert frames == [item.frames[14], item.frames[0], item.frames[6], item.frames[0]]


UNDECODABLE = "JPEG-lossy.dcm"
COMPRESSED = [
    name
    for name in FILES
    if name != UNDECODABLE and pydicom.dcmread(TEST_FILES / name).file_meta.TransferSyntaxUID not in NATIVE
]


def decoded_frames(item: Stored) -> list[bytes]:
    """Each frame as pydicom decodes it (colour as RGB), as little-endian samples."""
    pixels = pydicom.dcmread(io.BytesIO(item.data)).pixel_array
    frames = pixels if len(item.frames) > 1 else pixels[np.newaxis]
    return [frame.astype(frame.dtype.newbyteorder("<")).tobytes() for frame in frames]


def test_the_default_syntax_serves_native_frames_as_stored(dicomweb: DICOMwebClient, stored: dict[str, Stored]) -> None:
    native = stored["MR_small_bigendian.dcm"]
    assert dicomweb.retrieve_instance_frames(native.study, native.series, native.sop, [1]) == native.frames


@pytest.mark.parametrize("name", COMPRESSED)
def test_the_default_syntax_decodes_compressed_frames(
    dicomweb: DICOMwebClient, client: FlaskClient, stored: dict[str, Stored], name: str
) -> None:
    # dicomweb-client's default asks for Explicit VR Little Endian: the frames are decoded.
    item = stored[name]
    numbers = list(range(1, len(item.frames) + 1))
    assert dicomweb.retrieve_instance_frames(item.study, item.series, item.sop, numbers) == decoded_frames(item)
    answer = client.get(frames_url(item, "1"), headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert b"Content-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n" in answer.data


def test_a_frame_that_cannot_be_decoded_is_a_4xx_with_a_code(client: FlaskClient, stored: dict[str, Stored]) -> None:
    item = stored[UNDECODABLE]
    answer = client.get(frames_url(item, "1"), headers={"Accept": 'multipart/related; type="application/octet-stream"'})
    assert (answer.status_code, body(answer)["error"]["code"]) == (422, "NOT_DICOM")
    assert client.get(frames_url(item, "1"), headers={"Accept": OHIF_ACCEPT}).data.count(item.frames[0]) == 1


def test_frames_no_decoder_reads_are_served_as_stored_only(
    dicomweb: DICOMwebClient, client: FlaskClient, s3: Any, stored: dict[str, Stored]
) -> None:
    # GIVEN a file whose frames are MPEG-4 (relabelled JPEG fragments: no decoder here reads it)
    dataset = pydicom.dcmread(TEST_FILES / "SC_jpeg_no_color_transform.dcm")
    dataset.file_meta.TransferSyntaxUID = MPEG4
    dataset.PatientID = f"MPEG-{uuid.uuid4().hex[:8]}"
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    key = f"dicom/retrieve-tests/{dataset.SOPInstanceUID}.dcm"
    s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=buffer.getvalue())
    try:
        item = Stored(
            "mpeg",
            str(dataset.StudyInstanceUID),
            str(dataset.SeriesInstanceUID),
            str(dataset.SOPInstanceUID),
            MPEG4,
            b"",
            [],
        )
        url = frames_url(item, "1")
        assert wait_for(lambda: client.get(url, headers={"Accept": OHIF_ACCEPT}).status_code == 200)
        # WHEN its frame is asked for decoded, THEN 406; as stored, THEN the fragment's bytes
        with pytest.raises(requests.HTTPError) as refused:
            dicomweb.retrieve_instance_frames(item.study, item.series, item.sop, [1])
        assert refused.value.response.status_code == 406
        assert refused.value.response.json()["error"]["code"] == "NOT_ACCEPTABLE"
        (frame,) = dicomweb.retrieve_instance_frames(item.study, item.series, item.sop, [1], media_types=ANY_SYNTAX)
        assert frame == stored["SC_jpeg_no_color_transform.dcm"].frames[0]
        # and its rendered image is a 4xx with a code, never a 500
        rendered = client.get(url + "/rendered")
        assert (rendered.status_code, body(rendered)["error"]["code"]) == (406, "NOT_ACCEPTABLE")
    finally:
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)


MPEG4 = UID("1.2.840.10008.1.2.4.102")


def frames_url(item: Stored, frames: str) -> str:
    return f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}/frames/{frames}"


OHIF_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


def test_each_part_names_its_transfer_syntax(client: FlaskClient, stored: dict[str, Stored]) -> None:
    for name, labelled in (("JPEG2000.dcm", stored["JPEG2000.dcm"].syntax), ("MR_small_implicit.dcm", None)):
        answer = client.get(frames_url(stored[name], "1"), headers={"Accept": OHIF_ACCEPT})
        assert answer.status_code == 200 and answer.mimetype == "multipart/related"
        syntax = labelled or "1.2.840.10008.1.2.1"  # implicit VR relabelled: the same bytes
        assert f"Content-Type: application/octet-stream; transfer-syntax={syntax}\r\n".encode() in answer.data


@pytest.mark.parametrize("frames", ["0", "2", "x", "1,,2", "-1", ",".join(["1"] * 1001)])
def test_a_bad_frame_list_is_invalid_argument(client: FlaskClient, stored: dict[str, Stored], frames: str) -> None:
    answer = client.get(frames_url(stored["CT_small.dcm"], frames), headers={"Accept": OHIF_ACCEPT})
    assert (answer.status_code, body(answer)["error"]["code"]) == (400, "INVALID_ARGUMENT")


def test_unknown_uids_and_an_instance_of_another_series_are_not_found(
    client: FlaskClient, stored: dict[str, Stored]
) -> None:
    ct, mr = stored["CT_small.dcm"], stored["MR_small_RLE.dcm"]
    for url in (
        f"/dicomweb/studies/{ct.study}/series/{mr.series}/instances/{ct.sop}/frames/1",
        f"/dicomweb/studies/{ct.study}/series/{ct.series}/instances/1.2.3/frames/1",
        f"/dicomweb/studies/1.2.3/series/{ct.series}/instances/{ct.sop}",
        "/dicomweb/studies/1.2.3",
    ):
        answer = client.get(url, headers={"Accept": OHIF_ACCEPT} if "/frames/" in url else {})
        assert (answer.status_code, body(answer)["error"]["code"]) == (404, "NOT_FOUND"), url


def test_a_media_type_that_cannot_be_served_is_406(client: FlaskClient, stored: dict[str, Stored]) -> None:
    item = stored["CT_small.dcm"]
    answer = client.get(frames_url(item, "1"), headers={"Accept": "image/png"})
    assert (answer.status_code, body(answer)["error"]["code"]) == (406, "NOT_ACCEPTABLE")
    url = f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}"
    other = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    answer = client.get(url, headers={"Accept": other})
    assert (answer.status_code, body(answer)["error"]["code"]) == (406, "NOT_ACCEPTABLE")


class Gets:
    """The ranged GETs an S3 client makes while a test runs: each one's Range."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.ranges: list[str] = []
        client.meta.events.register("provide-client-params.s3.GetObject", self.record, unique_id="test-retrieve-gets")

    def record(self, params: dict[str, Any], **_: Any) -> None:
        self.ranges.append(str(params.get("Range", "")))

    def close(self) -> None:
        self.client.meta.events.unregister("provide-client-params.s3.GetObject", unique_id="test-retrieve-gets")


def test_a_frame_costs_one_ranged_get_of_about_its_bytes(app: Flask, stored: dict[str, Stored]) -> None:
    client = app.test_client()
    item = stored["rtdose.dcm"]
    assert client.get(frames_url(item, "1"), headers={"Accept": OHIF_ACCEPT}).status_code == 200  # layout learned
    gets = Gets(app.extensions["dicom_meta.managers"].s3.client)
    try:
        answer = client.get(frames_url(item, "9"), headers={"Accept": OHIF_ACCEPT})
    finally:
        gets.close()
    assert answer.status_code == 200 and item.frames[8] in answer.data
    (one,) = gets.ranges
    start, end = (int(n) for n in one.removeprefix("bytes=").split("-"))
    assert end - start + 1 == len(item.frames[8])


def test_the_new_routes_need_a_key_and_answer_preflights(local_aws: LocalAWS, stored: dict[str, Stored]) -> None:
    origin = "https://viewer.example.org"
    secured = create_app(
        {
            "AWS_ENDPOINT_URL": local_aws.endpoint_url,
            "AWS_CREDENTIALS": local_aws.credentials,
            "API_KEYS": [KEY],
            "CORS_ORIGINS": origin,
        }
    ).test_client()
    item = stored["CT_small.dcm"]
    bulk = f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}/bulkdata/7FE00010"
    for url in (frames_url(item, "1"), f"/dicomweb/studies/{item.study}", bulk):
        answer = secured.get(url, headers={"Accept": OHIF_ACCEPT})
        assert (answer.status_code, body(answer)["error"]["code"]) == (401, "UNAUTHENTICATED")
        preflight = secured.options(
            url,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "accept",
            },
        )
        assert preflight.status_code in (200, 204) and preflight.headers["Access-Control-Allow-Origin"] == origin


# --------------------------------------------------------------------------- rendered and thumbnails

RENDERED = [
    "CT_small.dcm",
    "MR_small_bigendian.dcm",
    "rtdose.dcm",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_rle_2frame.dcm",
    "MR_small_RLE.dcm",
    "examples_palette.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "JPGExtended.dcm",
    "SC_rgb_jpeg_gdcm.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "JPEGLSNearLossless_08.dcm",
    "MR_small_jp2klossless.dcm",
    "JPEG2000.dcm",
]


def image_of(data: bytes) -> Any:
    from PIL import Image

    return Image.open(io.BytesIO(data))


@pytest.mark.parametrize("name", RENDERED)
def test_every_syntax_renders_a_picture_of_the_file(
    dicomweb: DICOMwebClient, stored: dict[str, Stored], name: str
) -> None:
    item = stored[name]
    rendered = dicomweb.retrieve_instance_rendered(item.study, item.series, item.sop)
    image = image_of(rendered)
    dataset = pydicom.dcmread(io.BytesIO(item.data))
    assert image.format == "JPEG" and image.size == (dataset.Columns, dataset.Rows)
    pixels = np.asarray(image.convert("L")).ravel().tolist()
    assert max(pixels) - min(pixels) > 20, "the rendering is flat: nothing of the image shows"


def test_a_frame_renders_as_png_within_a_viewport(dicomweb: DICOMwebClient, stored: dict[str, Stored]) -> None:
    item = stored["rtdose.dcm"]
    rendered = dicomweb.retrieve_instance_frames_rendered(
        item.study, item.series, item.sop, [15], media_types=("image/png",), params={"viewport": "5,5"}
    )
    image = image_of(rendered)
    assert image.format == "PNG" and max(image.size) == 5


def test_a_window_and_monochrome_inversion_follow_the_request(client: FlaskClient, stored: dict[str, Stored]) -> None:
    item = stored["CT_small.dcm"]
    url = f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}/rendered"
    everything = image_of(client.get(url, query_string={"window": "0,100000"}).data).convert("L")
    nothing = image_of(client.get(url, query_string={"window": "-100000,10"}).data).convert("L")
    assert np.asarray(nothing).min() > 250  # every value above the window
    assert 100 < np.asarray(everything).mean() < 160


@pytest.mark.parametrize(
    ("query", "accept", "status"),
    [
        ({"viewport": "0,10"}, None, 400),
        ({"viewport": "10"}, None, 400),
        ({"window": "40,0"}, None, 400),
        ({"window": "40,400,CUBIC"}, None, 400),
        ({"quality": "101"}, None, 400),
        ({"size": "3"}, None, 400),
        ({}, "image/gif", 406),
    ],
)
def test_bad_rendering_parameters(
    client: FlaskClient, stored: dict[str, Stored], query: dict[str, str], accept: str | None, status: int
) -> None:
    item = stored["CT_small.dcm"]
    url = f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}/rendered"
    answer = client.get(url, query_string=query, headers={"Accept": accept} if accept else {})
    assert answer.status_code == status and body(answer)["error"]["code"] in ("INVALID_ARGUMENT", "NOT_ACCEPTABLE")


def test_thumbnails_of_a_study_a_series_and_an_instance(client: FlaskClient, stored: dict[str, Stored]) -> None:
    item = stored["CT_small.dcm"]
    base = f"/dicomweb/studies/{item.study}"
    for url in (
        f"{base}/thumbnail",
        f"{base}/series/{item.series}/thumbnail",
        f"{base}/series/{item.series}/instances/{item.sop}/thumbnail",
    ):
        answer = client.get(url)
        assert answer.status_code == 200 and answer.mimetype == "image/jpeg", url
        assert max(image_of(answer.data).size) == 128
    assert client.get("/dicomweb/studies/1.2.3/thumbnail").status_code == 404
    assert client.get(f"{base}/series/{stored['MR_small_RLE.dcm'].series}/thumbnail").status_code == 404


def test_a_rendered_request_reads_one_frame_of_a_multi_frame(app: Flask, stored: dict[str, Stored]) -> None:
    item = stored["rtdose.dcm"]
    client = app.test_client()
    url = f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}/frames/3/rendered"
    assert client.get(url).status_code == 200  # layout learned
    gets = Gets(app.extensions["dicom_meta.managers"].s3.client)
    try:
        assert client.get(url).status_code == 200
    finally:
        gets.close()
    # The header again (its image attributes), then the one frame: never the whole object.
    sizes = [int(end) - int(start) + 1 for start, end in (r.removeprefix("bytes=").split("-") for r in gets.ranges)]
    assert len(item.frames[2]) in sizes and sum(sizes) < len(item.data) + 64 * 1024
    assert len(gets.ranges) == 2


PIXEL_URLS = """query($uid: String!) { study(studyInstanceUid: $uid) { thumbnailUrl series { thumbnailUrl
  instances { items { renderedUrl frameUrl(frame: 2) thumbnailUrl secondRendered: renderedUrl(frame: 2) } } } } }"""


def test_graphql_says_where_the_pixels_are(client: FlaskClient, stored: dict[str, Stored]) -> None:
    item = stored["SC_rgb_rle_2frame.dcm"]
    answer = client.post("/graphql", json={"query": PIXEL_URLS, "variables": {"uid": item.study}}).json
    assert answer is not None and "errors" not in answer, answer
    study = answer["data"]["study"]
    (series,) = study["series"]
    (instance,) = series["instances"]["items"]
    base = f"http://localhost/dicomweb/studies/{item.study}"
    assert study["thumbnailUrl"] == f"{base}/thumbnail"
    assert series["thumbnailUrl"] == f"{base}/series/{item.series}/thumbnail"
    assert instance["frameUrl"] == f"{base}/series/{item.series}/instances/{item.sop}/frames/2"
    for url in (study["thumbnailUrl"], series["thumbnailUrl"], instance["renderedUrl"], instance["secondRendered"]):
        assert client.get(url.removeprefix("http://localhost")).mimetype == "image/jpeg", url
    frame = client.get(instance["frameUrl"].removeprefix("http://localhost"), headers={"Accept": OHIF_ACCEPT})
    assert item.frames[1] in frame.data


# --------------------------------------------------------------------------- bulk data


def as_sent(served: str, path: str) -> str:
    """The URI the service writes for ``path`` when dicomweb-client asks: the client sends
    ``Host`` without the port (dicomweb_client/web.py sets it from the host name alone), so
    the request's own URL, which the service answers with, has none either."""
    return served.replace(urlsplit(served).netloc, urlsplit(served).hostname or "") + path


def reachable(served: str, uri: str) -> str:
    """``uri`` with the served port put back, for the client to follow."""
    return uri.replace(f"://{urlsplit(served).hostname}/", f"://{urlsplit(served).netloc}/", 1)


@pytest.mark.parametrize("name", FILES)
def test_pixel_data_s_bulk_data_uri_answers_the_frames(
    dicomweb: DICOMwebClient, served: str, stored: dict[str, Stored], name: str
) -> None:
    item = stored[name]
    metadata = dicomweb.retrieve_instance_metadata(item.study, item.series, item.sop)
    uri = metadata["7FE00010"]["BulkDataURI"]
    assert uri == as_sent(served, f"/studies/{item.study}/series/{item.series}/instances/{item.sop}/bulkdata/7FE00010")
    parts = dicomweb.retrieve_bulkdata(reachable(served, uri))
    # Native: every frame in one part, little endian; encapsulated: one part per frame as stored
    assert parts == (item.frames if item.syntax not in NATIVE else [b"".join(item.frames)])


ICON = bytes(range(256)) * 16  # 4,096 bytes: bulk (over 1 KiB), read with the header
PRIVATE = bytes(reversed(range(256))) * 12_000  # about 3 MB: left unread by the header parse


@pytest.fixture(scope="module")
def with_bulk(app: Flask, s3: Any) -> Iterator[Stored]:
    """CT_small with an icon (a nested bulk value) and a large private OB value."""
    dataset = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    dataset.PatientID = f"BULK-{uuid.uuid4().hex[:8]}"
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
    dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    icon = pydicom.Dataset()
    icon.Rows, icon.Columns, icon.BitsAllocated, icon.SamplesPerPixel = 64, 64, 8, 1
    icon.add_new(0x7FE00010, "OB", ICON)
    dataset.IconImageSequence = pydicom.Sequence([icon])
    dataset.add_new(0x00291010, "OB", PRIVATE)
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    item = Stored(
        "bulk", str(dataset.StudyInstanceUID), str(dataset.SeriesInstanceUID), str(dataset.SOPInstanceUID), "", b"", []
    )
    key = f"dicom/retrieve-tests/{item.sop}.dcm"
    s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=buffer.getvalue())
    metadata = f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}/metadata"
    client = app.test_client()
    assert wait_for(lambda: client.get(metadata).status_code == 200)
    yield item
    s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)


def test_bulk_values_inside_and_outside_sequences_are_answered(
    dicomweb: DICOMwebClient, served: str, with_bulk: Stored
) -> None:
    item = with_bulk
    metadata = dicomweb.retrieve_instance_metadata(item.study, item.series, item.sop)
    instance = as_sent(served, f"/studies/{item.study}/series/{item.series}/instances/{item.sop}")
    icon = metadata["00880200"]["Value"][0]["7FE00010"]
    assert icon == {"vr": "OB", "BulkDataURI": f"{instance}/bulkdata/00880200/0/7FE00010"}
    assert metadata["00291010"] == {"vr": "OB", "BulkDataURI": f"{instance}/bulkdata/00291010"}
    assert dicomweb.retrieve_bulkdata(reachable(served, icon["BulkDataURI"])) == [ICON]
    assert dicomweb.retrieve_bulkdata(reachable(served, metadata["00291010"]["BulkDataURI"])) == [PRIVATE]


def test_a_bulk_value_is_read_by_range_a_chunk_at_a_time(app: Flask, client: FlaskClient, with_bulk: Stored) -> None:
    item = with_bulk
    url = f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}/bulkdata/00291010"
    gets = Gets(app.extensions["dicom_meta.managers"].s3.client)
    try:
        answer = client.get(url)
        data = answer.get_data()  # streamed: read while the GETs are counted
    finally:
        gets.close()
    assert answer.status_code == 200 and data.count(PRIVATE) == 1
    sizes = [int(end) - int(start) + 1 for start, end in (r.removeprefix("bytes=").split("-") for r in gets.ranges)]
    # The header's reads (the private value left unread), then the value in 1 MiB ranges
    assert sorted(sizes)[-3:] == [len(PRIVATE) - 2 * 1024 * 1024, 1024 * 1024, 1024 * 1024]
    assert sum(sizes) < len(PRIVATE) + 256 * 1024


@pytest.mark.parametrize(
    ("path", "accept", "status", "code"),
    [
        ("00291010/x", None, 400, "INVALID_ARGUMENT"),
        ("7FE0001", None, 400, "INVALID_ARGUMENT"),
        ("00880200/0", None, 400, "INVALID_ARGUMENT"),
        ("00880200/5/7FE00010", None, 404, "NOT_FOUND"),
        ("00291012", None, 404, "NOT_FOUND"),
        ("00880200", None, 404, "NOT_FOUND"),  # a sequence is no bulk value
        ("00291010", "image/png", 406, "NOT_ACCEPTABLE"),
        (
            "7FE00010",
            'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.4.50',
            406,
            "NOT_ACCEPTABLE",
        ),
    ],
)
def test_bulk_data_errors(
    client: FlaskClient, with_bulk: Stored, path: str, accept: str | None, status: int, code: str
) -> None:
    item = with_bulk
    url = f"/dicomweb/studies/{item.study}/series/{item.series}/instances/{item.sop}/bulkdata/{path}"
    answer = client.get(url, headers={"Accept": accept} if accept else {})
    assert (answer.status_code, body(answer)["error"]["code"]) == (status, code)
