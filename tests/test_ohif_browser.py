"""OHIF, the viewer people use, in Chromium: it opens studies of native, JPEG, JPEG 2000 and
RLE files read from the bucket by range, and paints their images.

OHIF is the pinned @ohif/app's built viewer (``make ohif`` unpacks it, ``.ci/run`` too),
served by ``local.ohif`` in front of the app, as a person runs it. Skipped, saying why, where
Chromium or the unpacked viewer is absent. Screenshots go to ``test-output/``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, sync_playwright

from config import S3_BUCKET_NAME
from local.ohif import DIST, serve
from tests.resolvers.dicomweb.test_dicomweb import body, wait_for
from tests.resolvers.dicomweb.test_retrieve import Stored, store
from tests.served import served_over_http
from tests.test_graphiql_browser import CHROMIUM, CHROMIUM_ARGS

OUTPUT = Path(__file__).resolve().parent.parent / "test-output"
STUDIES = {
    "native CT": "CT_small.dcm",
    # Not SC_jpeg_no_color_transform.dcm: its header says YBR but its codestream is RGB, which
    # OHIF paints magenta (the viewer is right to follow the header).
    "JPEG": "examples_ybr_color.dcm",
    "JPEG 2000": "MR_small_jp2klossless.dcm",
    "RLE": "MR_small_RLE.dcm",
}
TIMEOUT_MS = 90_000  # OHIF's bundles and codecs load slowly on a busy 2-core machine

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.skipif(not (DIST / "index.html").is_file(), reason="OHIF is not unpacked (make ohif unpacks it)"),
]


@pytest.fixture(scope="module")
def viewer(app: Flask) -> Iterator[str]:
    """The app over HTTP, and OHIF in front of it; yield OHIF's origin."""
    with served_over_http(app) as origin:
        ohif = serve(origin, 0)
        try:
            yield f"http://127.0.0.1:{ohif.server_address[1]}"
        finally:
            ohif.shutdown()


@pytest.fixture(scope="module")
def studies(app: Flask, s3: Any) -> Iterator[dict[str, Stored]]:
    patient = f"OHIF-{uuid.uuid4().hex[:8]}"
    # OHIF 3.13 fails to open a study whose ModalitiesInStudy has no value (its getModalities
    # reads Value.length), so every file here names its modality; see docs/ohif.md.
    made = {kind: store(name, patient, modality="OT") for kind, name in STUDIES.items()}
    keys = [f"dicom/ohif-tests/{item.sop}.dcm" for item in made.values()]
    for key, item in zip(keys, made.values(), strict=True):
        s3.put_object(Bucket=S3_BUCKET_NAME, Key=key, Body=item.data)
    client = app.test_client()

    def indexed() -> bool:
        answer = client.get("/dicomweb/studies", query_string={"PatientID": patient})
        return answer.status_code == 200 and len(body(answer)) == len(made)

    assert wait_for(indexed), "the studies were not indexed in time"
    yield made
    for key in keys:
        s3.delete_object(Bucket=S3_BUCKET_NAME, Key=key)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # WebGL in software, as OHIF's viewports need it and a CI machine has no GPU.
    args = [arg for arg in CHROMIUM_ARGS if arg != "--disable-gpu"] + ["--use-gl=angle", "--use-angle=swiftshader"]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            yield chromium
        finally:
            chromium.close()


PAINTED = """() => {
  const canvas = [...document.querySelectorAll('canvas')].find(c => c.width > 64 && c.height > 64);
  if (!canvas) return 0;
  const copy = document.createElement('canvas');
  copy.width = canvas.width; copy.height = canvas.height;
  const context = copy.getContext('2d');
  context.drawImage(canvas, 0, 0);
  const data = context.getImageData(0, 0, copy.width, copy.height).data;
  let lit = 0;
  for (let i = 0; i < data.length; i += 4) if (data[i] + data[i + 1] + data[i + 2] > 60) lit++;
  return lit;
}"""


@pytest.mark.parametrize("kind", list(STUDIES))
def test_ohif_paints_the_image(viewer: str, studies: dict[str, Stored], browser: Browser, kind: str) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    frames: list[int] = []
    errors: list[str] = []
    page.on("response", lambda r: frames.append(r.status) if "/frames/" in r.url else None)
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    try:
        page.goto(f"{viewer}/viewer?StudyInstanceUIDs={studies[kind].study}")
        try:
            page.wait_for_function(f"({PAINTED})() > 500", timeout=TIMEOUT_MS)
        except Exception as exc:
            raise AssertionError(f"nothing painted; frames answered {frames}; console errors: {errors[:5]}") from exc
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"ohif-{kind.replace(' ', '-').lower()}.png"))
    finally:
        page.close()
    assert frames and all(status == 200 for status in frames), frames
