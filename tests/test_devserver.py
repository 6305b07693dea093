"""The development HTTP server (wsgigate.devserver), spoken to over raw sockets on loopback."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import pytest

from tests.support import EXAMPLES
from wsgigate.devserver import WSGIDevServer, make_server, parse_host_port
from wsgigate.errors import ConfigurationError
from wsgigate.loader import load_app

HELLO = load_app(f"{EXAMPLES / 'hello.py'}:app")


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, chunked: bool) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.chunked = chunked


def read_response(f: BinaryIO, head_request: bool = False) -> Response:
    status_line = f.readline()
    assert status_line.startswith(b"HTTP/1.1 "), status_line
    headers: dict[str, str] = {}
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(status_line.split()[1])
    chunked = headers.get("transfer-encoding") == "chunked"
    if head_request or status in (204, 304):
        body = b""
    elif chunked:
        parts = []
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                assert f.readline() == b"\r\n"
                break
            parts.append(f.read(size))
            assert f.readline() == b"\r\n"
        body = b"".join(parts)
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    else:
        body = f.read()
    return Response(status, headers, body, chunked)


@pytest.fixture
def serve() -> Iterator[Callable[..., tuple[str, int]]]:
    servers: list[tuple[WSGIDevServer, threading.Thread]] = []

    def start(app: Any = HELLO, debug: bool = False) -> tuple[str, int]:
        server = make_server(app, "127.0.0.1:0", debug)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
        return str(server.server_address[0]), int(server.server_address[1])

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(5)


def connect(address: tuple[str, int]) -> tuple[socket.socket, BinaryIO]:
    sock = socket.create_connection(address, timeout=5)
    return sock, sock.makefile("rb")


def closed_by_peer(sock: socket.socket, f: BinaryIO) -> bool:
    try:
        return f.read(1) == b""
    except (ConnectionResetError, TimeoutError):
        return False


def test_keep_alive_two_requests_on_one_connection(serve: Callable[..., tuple[str, int]]) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(b"GET /alice HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(f)
        sock.sendall(b"GET /bob HTTP/1.1\r\nHost: x\r\n\r\n")
        second = read_response(f)
    assert (first.status, first.body) == (200, b"Hello, alice!\n")
    assert (second.status, second.body) == (200, b"Hello, bob!\n")
    assert first.headers.get("connection") != "close"


def test_pipelined_requests(serve: Callable[..., tuple[str, int]]) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f).body == b"Hello, a!\n"
        assert read_response(f).body == b"Hello, b!\n"


def test_streaming_response_is_chunked(serve: Callable[..., tuple[str, int]]) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_response(f)
        assert response.chunked
        assert "content-length" not in response.headers
        assert response.body == b"".join(f"line {i}\n".encode() for i in range(5))
        # the connection is still usable after the terminating chunk
        sock.sendall(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f).body == b"Hello, again!\n"


def test_streaming_to_http10_client_closes(serve: Callable[..., tuple[str, int]]) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(b"GET /stream HTTP/1.0\r\n\r\n")
        response = read_response(f)
        assert not response.chunked
        assert response.body == b"".join(f"line {i}\n".encode() for i in range(5))


def test_one_chunk_response_gets_content_length(serve: Callable[..., tuple[str, int]]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"known length"]

    sock, f = connect(serve(app))
    with sock, f:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = read_response(f)
    assert response.headers["content-length"] == "12" and not response.chunked


def test_head_has_no_body(serve: Callable[..., tuple[str, int]]) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(b"HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        head = read_response(f, head_request=True)
        sock.sendall(b"HEAD /carol HTTP/1.1\r\nHost: x\r\n\r\n")
        head2 = read_response(f, head_request=True)
        # had a body leaked after either head, this would be parsed as the status line
        sock.sendall(b"GET /dave HTTP/1.1\r\nHost: x\r\n\r\n")
        after = read_response(f)
    assert head.status == 200 and "transfer-encoding" not in head.headers
    assert head2.headers["content-length"] == str(len(b"Hello, carol!\n"))
    assert after.body == b"Hello, dave!\n"


def test_post_body_echoed(serve: Callable[..., tuple[str, int]]) -> None:
    payload = bytes(range(256)) * 300
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-bin\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        response = read_response(f)
    assert response.body == payload
    assert response.headers["content-type"] == "application/x-bin"


def test_unread_body_is_drained_before_next_request(
    serve: Callable[..., tuple[str, int]],
) -> None:
    body = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"  # looks like a request, is a body
    sock, f = connect(serve())  # hello's / never reads the body
    with sock, f:
        sock.sendall(
            b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        assert read_response(f).body == b"Hello, first!\n"
        sock.sendall(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f).body == b"Hello, second!\n"


def test_expect_100_continue(serve: Callable[..., tuple[str, int]]) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert f.readline().startswith(b"HTTP/1.1 100")
        assert f.readline() == b"\r\n"
        sock.sendall(b"data")
        assert read_response(f).body == b"data"


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1e3", b"+5"])
def test_bad_content_length_is_400(serve: Callable[..., tuple[str, int]], length: bytes) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n")
        response = read_response(f)
        assert response.status == 400
        assert closed_by_peer(sock, f)


def test_chunked_request_body_is_refused(serve: Callable[..., tuple[str, int]]) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
        )
        assert read_response(f).status == 411


def test_client_hanging_up_mid_body_is_quiet(
    serve: Callable[..., tuple[str, int]], error_log: pytest.LogCaptureFixture, capfd: Any
) -> None:
    address = serve()  # hello's / does not read the body; the server drains it and sees the end
    sock, f = connect(address)
    with sock, f:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a bit")
        assert read_response(f).status == 200
        sock.shutdown(socket.SHUT_WR)
        assert closed_by_peer(sock, f)
    # the server still serves, and printed no traceback
    sock, f = connect(address)
    with sock, f:
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f).body == b"Hello, next!\n"
    assert "Traceback" not in capfd.readouterr().err


def test_app_error_is_500_and_server_keeps_serving(
    serve: Callable[..., tuple[str, int]], error_log: pytest.LogCaptureFixture
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/fail":
            raise RuntimeError("kaput")
        start_response("200 OK", [])
        return [b"fine"]

    sock, f = connect(serve(app))
    with sock, f:
        sock.sendall(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
        failed = read_response(f)
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
        ok = read_response(f)
    assert failed.status == 500 and b"kaput" not in failed.body
    assert ok.body == b"fine"
    assert any(r.exc_info for r in error_log.records if r.levelno >= logging.ERROR)


def test_app_error_after_head_cuts_the_connection(serve: Callable[..., tuple[str, int]]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"partial"
        raise RuntimeError("midway")

    sock, f = connect(serve(app))
    with sock, f:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert f.readline().startswith(b"HTTP/1.1 200")
        while f.readline() != b"\r\n":
            pass
        assert f.readline() == b"7\r\n"
        assert f.readline() == b"partial\r\n"
        assert f.read() == b""  # no terminating 0-chunk: the client sees the cut


def test_short_content_length_closes_the_connection(
    serve: Callable[..., tuple[str, int]], error_log: pytest.LogCaptureFixture
) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Length", "100")])
        return [b"only 11 b\r\n"]

    sock, f = connect(serve(app))
    with sock, f:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        f.readline()
        while f.readline() != b"\r\n":
            pass
        # the client must not be left waiting for 89 bytes that never come
        assert f.read() == b"only 11 b\r\n"


def test_no_content_status_sends_no_body(serve: Callable[..., tuple[str, int]]) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/204":
            start_response("204 No Content", [])
            return [b"a body a 204 must not carry"]
        start_response("200 OK", [])
        return [b"next"]

    sock, f = connect(serve(app))
    with sock, f:
        sock.sendall(b"DELETE /204 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f).status == 204
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(f).body == b"next"


def test_environ_from_request(serve: Callable[..., tuple[str, int]]) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    sock, f = connect(serve(app))
    with sock, f:
        sock.sendall(
            b"GET /caf%C3%A9?q=1 HTTP/1.1\r\nHost: x\r\nProxy: http://evil\r\n"
            b"X-A: 1\r\nX-A: 2\r\nX_A: smuggle\r\n\r\n"
        )
        read_response(f)
    assert seen["PATH_INFO"] == "/caf\xc3\xa9"
    assert seen["QUERY_STRING"] == "q=1"
    assert "HTTP_PROXY" not in seen
    assert seen["HTTP_X_A"] == "1, 2"
    assert seen["wsgi.multithread"] is True and seen["wsgi.run_once"] is False


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("[::1]:8080", ("::1", 8080)),
        (":9000", ("127.0.0.1", 9000)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_parse_host_port(bind: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(bind) == expected


@pytest.mark.parametrize("bind", ["8000", "host:", "host:port", ""])
def test_parse_host_port_errors(bind: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_host_port(bind)


def test_bind_failure_is_a_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigurationError, match=str(port)):
            make_server(HELLO, f"127.0.0.1:{port}")


def test_ipv6_loopback(serve: Callable[..., tuple[str, int]]) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        server = make_server(HELLO, "[::1]:0")
    except ConfigurationError:
        pytest.skip("::1 not available")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        sock = socket.create_connection(("::1", server.server_address[1]), timeout=5)
        f = sock.makefile("rb")
        with sock, f:
            sock.sendall(b"GET /six HTTP/1.1\r\nHost: [::1]\r\n\r\n")
            assert read_response(f).body == b"Hello, six!\n"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_http10_keep_alive(serve: Callable[..., tuple[str, int]]) -> None:
    sock, f = connect(serve())
    with sock, f:
        sock.sendall(b"GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        first = read_response(f)
        assert first.headers.get("connection", "").lower() == "keep-alive"
        sock.sendall(b"GET /two HTTP/1.0\r\n\r\n")  # no keep-alive: the server closes after
        second = read_response(f)
        assert second.headers.get("connection", "").lower() == "close"
        assert closed_by_peer(sock, f)
    assert (first.body, second.body) == (b"Hello, one!\n", b"Hello, two!\n")
