"""GraphiQL in a real browser: the system's Chromium, driven by Playwright, on the local backend.

The page must work with no internet (as in CI and in closed hospital networks): every request
it makes goes to the app's own origin, and the example query runs on the seeded data.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright

from schema.graphiql import missing_assets
from tests.served import served_over_http

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling Google's hosts, which a
# closed network refuses (and which would count as requests leaving the origin).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parent.parent / "test-output" / "graphiql.png"
TIMEOUT_MS = 30_000  # GraphiQL's 3.5 MB script parses slowly on a busy 2-core machine

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


@pytest.fixture(scope="module")
def live_url(app: Flask) -> Iterator[str]:
    """Serve the app (on the embedded AWS) over real HTTP on a free port; yield its origin."""
    if missing_assets(Path(app.config["GRAPHIQL_NODE_MODULES"])):
        pytest.fail("GraphiQL's assets are missing: run `make test`, which runs `npm ci`")
    with served_over_http(app) as origin:
        yield origin


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, launched by Playwright."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        page.close()


def test_example_query_runs_offline_in_chromium(live_url: str, page: Page) -> None:
    requests: list[str] = []
    console_errors: list[str] = []  # a request blocked by the page's CSP shows up here
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)

    page.goto(f"{live_url}/graphql")
    with page.expect_response(
        lambda r: r.request.method == "POST" and "StudyList" in (r.request.post_data or "")
    ) as sent:
        page.locator(".graphiql-execute-button").click()
    # The panel draws only the lines in view (the study list is long in a shared archive):
    # the values are checked in the answer the page received, the panel for what it shows.
    answer = sent.value.json()
    assert "errors" not in answer, answer
    assert (answer["data"]["live"]["patientId"], answer["data"]["live"]["modality"]) == ("PAT-0001", "CT")
    assert answer["data"]["studies"]["items"], "the example's study list is empty"
    response = page.locator(".graphiql-response")
    expect(response).to_contain_text('"studies"')
    expect(response).to_contain_text('"numberOfSeries"')

    # The Docs explorer lists the schema's fields: introspection works in the page.
    page.get_by_label("Show Documentation Explorer").click()
    page.locator(".graphiql-doc-explorer").get_by_text("Query", exact=True).click()
    expect(page.locator(".graphiql-doc-explorer")).to_contain_text("dicomMetadata")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))

    leaving = [url for url in requests if not url.startswith(f"{live_url}/")]
    assert not leaving, f"requests left the app's origin: {leaving}"
    assert f"{live_url}/static/graphiql/graphiql.min.js" in requests
    assert not console_errors, f"the page logged errors: {console_errors}"
