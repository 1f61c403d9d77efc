"""local/keepalive.py: the embedded AWS keeps a client's connection between requests, skips a
request body the application left unread, and closes what it cannot keep."""

from __future__ import annotations

import http.client
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wsgi import get_input_stream

from config import DYNAMODB_TABLE_NAME
from local import keepalive
from local.server import LocalAWS

SECRET = "patient-name-from-a-request"


def app(environ: dict[str, Any], start_response: Any) -> Any:
    """A WSGI app: ``/echo`` answers the body; ``/ignore`` reads none; ``/stream`` has no length."""
    path = environ["PATH_INFO"]
    port = str(environ["REMOTE_PORT"]).encode()
    if path == "/fail":
        raise ValueError(SECRET)
    if path == "/stream":
        start_response("200 OK", [])
        return [b"a" * 10, b"b" * 5]
    body = get_input_stream(environ).read() if path == "/echo" else b""  # as Flask reads it
    answer = body + b"|" + port
    start_response("200 OK", [("Content-Length", str(len(answer)))])
    return [answer]


@pytest.fixture
def server() -> Iterator[BaseWSGIServer]:
    served = make_server("127.0.0.1", 0, app, threaded=True, request_handler=keepalive.KeepAliveHandler)
    thread = threading.Thread(target=served.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.shutdown()
        keepalive.close_connections(served)
        served.server_close()


def connect(server: BaseWSGIServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=10)


def ask(connection: http.client.HTTPConnection, path: str, body: bytes = b"", **headers: str) -> tuple[Any, bytes]:
    connection.request("POST", path, body=body, headers=headers)
    response = connection.getresponse()
    return response, response.read()


def test_requests_share_one_connection_and_an_unread_body_is_skipped(server: BaseWSGIServer) -> None:
    connection = connect(server)
    first, unread = ask(connection, "/ignore", b"x" * 300_000)  # far more than one socket read
    second, echoed = ask(connection, "/echo", b"hello")
    third, streamed = ask(connection, "/stream")
    assert (first.status, second.status, third.status) == (200, 200, 200)
    assert echoed.split(b"|")[0] == b"hello"
    assert streamed == b"a" * 10 + b"b" * 5  # no length: sent chunked, and the connection kept
    assert unread.split(b"|")[1] == echoed.split(b"|")[1]  # the same client port: one connection
    assert all(response.getheader("Connection") is None for response in (first, second, third))


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({"Transfer-Encoding": "chunked"}, b"5\r\nhello\r\n0\r\n\r\n"),  # its end is the app's to find
        ({"Content-Length": "abc"}, b""),  # not a length
        ({"Connection": "close"}, b""),  # the client's wish
    ],
)
def test_what_cannot_be_kept_is_closed(server: BaseWSGIServer, headers: dict[str, str], body: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=10) as raw:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        raw.sendall(f"POST /echo HTTP/1.1\r\nHost: x\r\n{head}\r\n".encode() + body)
        answer = b""
        while chunk := raw.recv(65536):  # the server closes: recv ends
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert b"\r\nConnection: close\r\n" in answer


def test_a_failing_application_answers_500_and_logs_no_value(
    server: BaseWSGIServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    connection = connect(server)
    response, _ = ask(connection, "/fail")
    assert response.status == 500
    assert response.getheader("Connection") == "close"
    assert "ValueError" in caplog.text
    assert SECRET not in caplog.text
    response, body = ask(connect(server), "/echo", b"next")  # the server goes on
    assert body.startswith(b"next|")


def test_stopping_closes_the_kept_connections(server: BaseWSGIServer) -> None:
    connection = connect(server)
    assert ask(connection, "/echo", b"1")[0].status == 200
    server.shutdown()
    keepalive.close_connections(server)
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        ask(connection, "/echo", b"2")


def test_a_boto3_client_makes_its_calls_on_one_connection() -> None:
    ports: list[int] = []

    def noting(inner: Any) -> Any:
        def wrapped(environ: dict[str, Any], start_response: Any) -> Any:
            ports.append(environ["REMOTE_PORT"])
            return inner(environ, start_response)

        return wrapped

    aws = LocalAWS.start(0, seed=False, deliver_events=False, middleware=noting)
    try:
        s3, dynamodb = aws.client("s3"), aws.client("dynamodb")
        ports.clear()
        for n in range(5):
            s3.put_object(Bucket="data-apps-ex", Key=f"keepalive/{n}.bin", Body=b"x" * n)
            assert s3.get_object(Bucket="data-apps-ex", Key=f"keepalive/{n}.bin")["Body"].read() == b"x" * n
            dynamodb.describe_table(TableName=DYNAMODB_TABLE_NAME)
        assert len(ports) == 15
        assert len(set(ports)) == 2  # one connection for S3's 10 calls, one for DynamoDB's 5
    finally:
        aws.stop()
