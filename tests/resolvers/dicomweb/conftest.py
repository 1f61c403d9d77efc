"""Fixtures of the DICOMweb tests: the app served over HTTP with an API key, and
dicomweb-client pointed at it, as a deployment's users call it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dicomweb_client.api import DICOMwebClient

from app import create_app
from local.server import LocalAWS
from tests.served import served_over_http

API_KEY = "dicomweb-key"


@pytest.fixture(scope="package")
def served(local_aws: LocalAWS) -> Iterator[str]:
    """The app on a real HTTP server, with an API key as a deployment has; its /dicomweb URL."""
    app = create_app(
        {"AWS_ENDPOINT_URL": local_aws.endpoint_url, "AWS_CREDENTIALS": local_aws.credentials, "API_KEYS": [API_KEY]}
    )
    with served_over_http(app) as origin:
        yield f"{origin}/dicomweb"


@pytest.fixture
def dicomweb(served: str) -> DICOMwebClient:
    return DICOMwebClient(url=served, headers={"Authorization": f"Bearer {API_KEY}"})
