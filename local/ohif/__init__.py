"""OHIF, the web viewer, in front of a running dicom-meta: ``make ohif`` (``python -m local.ohif``).

The pinned ``@ohif/app`` package ships its built viewer in ``dist/``; ``make ohif`` unpacks it.
This serves those files, with ``app-config.js`` replaced by this folder's (one DICOMweb data
source), and proxies ``/dicomweb`` to the service, so the viewer and the API share one origin
and need no CORS. ``OHIF_API_KEY``, when the service has API keys, is sent as a bearer token.
"""

from __future__ import annotations

import contextlib
import mimetypes
import threading
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
# Where `make ohif` unpacks the pinned package (npm pack): its dependencies are not needed, the
# viewer in dist/ is built, and some of them are not on the registry this project reaches.
DIST = ROOT / "build" / "ohif" / "package" / "dist"
CONFIG_TEMPLATE = Path(__file__).resolve().parent / "app-config.js"
# Headers passed on to the service, and back from it.
# Host too, so the URLs the service writes into its answers (metadata's BulkDataURIs) name
# this origin, through this proxy, rather than the API's own.
_FORWARDED = ("Accept", "Range", "Host")
_RETURNED = ("Content-Type", "Warning", "X-Request-ID")
PROXY_TIMEOUT = (2.0, 60.0)


def app_config(dicomweb_root: str) -> bytes:
    """Return OHIF's configuration pointing its data source at ``dicomweb_root``."""
    return CONFIG_TEMPLATE.read_text(encoding="utf-8").replace("DICOMWEB_ROOT", dicomweb_root).encode("utf-8")


class OhifHandler(SimpleHTTPRequestHandler):
    """Static files of the viewer, its configuration, and ``/dicomweb`` proxied to the API."""

    api_url = "http://127.0.0.1:5000"
    api_key: str | None = None
    session = requests.Session()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(DIST), **kwargs)

    def handle(self) -> None:
        # The browser may go on before an answer is written (a cancelled prefetch).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: URLs hold UIDs, and the service logs its own requests

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith("/dicomweb/") or path == "/dicomweb":
            self._proxy()
        elif path == "/app-config.js":
            self._send(HTTPStatus.OK, "application/javascript", app_config(self._dicomweb_root()))
        elif (DIST / path.lstrip("/")).is_file():
            super().do_GET()
        else:
            # A viewer route (/viewer?StudyInstanceUIDs=…): the single-page app answers it.
            self._send(HTTPStatus.OK, "text/html", (DIST / "index.html").read_bytes())

    def _dicomweb_root(self) -> str:
        return f"http://{self.headers.get('Host') or '127.0.0.1'}/dicomweb"

    def _proxy(self) -> None:
        headers = {name: self.headers[name] for name in _FORWARDED if self.headers.get(name)}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        try:
            answer = self.session.get(self.api_url + self.path, headers=headers, timeout=PROXY_TIMEOUT)
        except requests.RequestException:
            self._send(HTTPStatus.BAD_GATEWAY, "text/plain", b"dicom-meta does not answer")
            return
        self.send_response(answer.status_code)
        for name in _RETURNED:
            if name in answer.headers:
                self.send_header(name, answer.headers[name])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(api_url: str, port: int, api_key: str | None = None) -> ThreadingHTTPServer:
    """Start the viewer on ``127.0.0.1:port`` (0: a free port) in a thread; return its server."""
    if not (DIST / "index.html").is_file():
        raise SystemExit("OHIF is not unpacked: `make ohif` brings the pinned @ohif/app")
    mimetypes.add_type("application/wasm", ".wasm")
    handler = type("Handler", (OhifHandler,), {"api_url": api_url.rstrip("/"), "api_key": api_key})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="ohif").start()
    return server
