"""The SCGI connection handler (socket pair, no server) and ``wsgigate scgi`` / ``wsgigate run``
as processes: strict header, bounded ``wsgi.input``, clear refusals, every bind kind."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

import pytest

from tests.test_server_runtime import live_server
from wsgigate.protocols.scgi import encode_request
from wsgigate.scgi.server import SCGIHandler, fix_apache_path_info
from wsgigate.server import BindSpec, Connection, Listener, ServerConfig, Worker

NGINX_META = {  # what nginx's stock scgi_params send (seen on the wire, nginx 1.22)
    "REQUEST_METHOD": "GET",
    "REQUEST_URI": "/caf%C3%A9/a%20b?x=1&x=&y",
    "QUERY_STRING": "x=1&x=&y",
    "CONTENT_TYPE": "",
    "DOCUMENT_URI": "/caf\xc3\xa9/a b",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REQUEST_SCHEME": "http",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "60448",
    "SERVER_PORT": "8080",
    "SERVER_NAME": "localhost",
    "HTTP_HOST": "127.0.0.1",
}


def echo_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """Answers what it saw; ``/read-all`` reads wsgi.input with no size, as flup users do."""
    if environ["PATH_INFO"] == "/boom":
        raise RuntimeError("boom on purpose")
    if environ["PATH_INFO"] == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (b"part %d\n" % i for i in range(100))
    body = environ["wsgi.input"].read() if environ["PATH_INFO"] == "/read-all" else b""
    seen = {k: v for k, v in environ.items() if isinstance(v, str)}
    data = json.dumps({"environ": seen, "body": len(body)}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [data]


class Served:
    """One connection served by the handler on a thread; we are the web server's end."""

    def __init__(self, app: Any = echo_app, **options: Any) -> None:
        config = ServerConfig(workers=1, threads=2)
        self.handler = SCGIHandler(app, config, **options)
        self.ours, self.theirs = socket.socketpair()
        self.ours.settimeout(10)
        self.theirs.settimeout(10)
        listener = Listener(self.ours, BindSpec("fd"), "test")
        self.conn = Connection(self.ours, "", listener, Worker([], self.handler, config))
        self.kept: list[bool] = []
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        self.kept.append(self.handler.handle(self.conn))
        self.ours.close()  # as the runtime does: the end of the response

    def received(self) -> bytes:
        """All the handler sent, up to its end of the response (the handler thread ended)."""
        data = b""
        while chunk := self.theirs.recv(65536):
            data += chunk
        self.theirs.close()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return data

    def response(self) -> tuple[int, dict[str, str], bytes]:
        head, _, body = self.received().partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        return int(headers["Status"][:3]), headers, body


def ask(wire: bytes, app: Any = echo_app, **options: Any) -> tuple[int, dict[str, str], bytes]:
    served = Served(app, **options)
    served.theirs.sendall(wire)  # no shutdown: web servers keep their side open
    return served.response()


def test_nginx_request_environ() -> None:
    status, headers, body = ask(encode_request(NGINX_META))
    assert status == 200 and headers["Content-Type"] == "application/json"
    env = json.loads(body)["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/caf\xc3\xa9/a b")
    assert env["QUERY_STRING"] == "x=1&x=&y"
    assert env["SCGI"] == "1" and env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"
    assert "CONTENT_TYPE" not in env or env["CONTENT_TYPE"] == ""


def test_script_name_option_splits_at_the_mount_point() -> None:
    meta = {**NGINX_META, "REQUEST_URI": "/app/x/y", "QUERY_STRING": ""}
    env = json.loads(ask(encode_request(meta), script_name="/app")[2])["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/x/y")


def test_read_without_size_returns_at_content_length() -> None:
    """flup gives the socket as wsgi.input: read() waits for an EOF nginx never sends. Here it
    returns at CONTENT_LENGTH, and the connection closes (the end of the response) at once."""
    body = b"q" * 300_000
    meta = {**NGINX_META, "REQUEST_METHOD": "POST", "REQUEST_URI": "/read-all"}
    served = Served()
    started = time.monotonic()
    served.theirs.sendall(encode_request(meta, body))
    while served.theirs.recv(65536):  # to the end of the response: the handler's close
        pass
    assert time.monotonic() - started < 1
    assert served.kept == [False]
    served.theirs.close()
    served.thread.join(10)


def test_streamed_response_and_app_error() -> None:
    status, headers, body = ask(encode_request({**NGINX_META, "REQUEST_URI": "/stream"}))
    assert status == 200 and body.count(b"part ") == 100
    assert "Content-Length" not in headers
    status, _, body = ask(encode_request({**NGINX_META, "REQUEST_URI": "/boom"}))
    assert status == 500 and b"boom on purpose" not in body


def test_unread_body_is_drained_so_the_response_arrives() -> None:
    """The app answers without reading 4 MiB: the handler half-closes (the end of the
    response) and reads the rest off, so the web server's send completes, with no reset."""
    served = Served()
    meta = {**NGINX_META, "REQUEST_METHOD": "POST"}
    sender = threading.Thread(
        target=served.theirs.sendall, args=(encode_request(meta, b"z" * (4 << 20)),)
    )
    sender.start()
    data = b""
    while chunk := served.theirs.recv(65536):
        data += chunk
    sender.join(10)
    assert not sender.is_alive()  # every byte was taken
    served.theirs.close()
    served.thread.join(10)
    assert data.startswith(b"Status: 200 OK\r\n")
    assert json.loads(data.partition(b"\r\n\r\n")[2])["body"] == 0


def test_bytes_after_content_length_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    """nginx 1.22 with scgi_request_buffering off sends CONTENT_LENGTH = what it had read."""
    meta = {**NGINX_META, "REQUEST_METHOD": "POST", "REQUEST_URI": "/read-all"}
    with caplog.at_level(logging.WARNING, "wsgigate.error"):
        status, _, body = ask(encode_request(meta, b"x" * 9113) + b"y" * 50000)
    assert status == 200 and json.loads(body)["body"] == 9113
    assert "sent 50000 byte(s) after the CONTENT_LENGTH of 9113" in caplog.text


@pytest.mark.parametrize(
    ("wire", "status", "logged"),
    [
        (b"36:CONTENT_LENGTH\x000\x00REQUEST_METHOD\x00GET\x00,", 400, "lacks SCGI=1"),
        (b"024:CONTENT_LENGTH\x000\x00SCGI\x001\x00,", 400, "leading zero"),
        (b"24:SCGI\x001\x00CONTENT_LENGTH\x000\x00,", 400, "must start with CONTENT_LENGTH"),
        (
            encode_request([("REQUEST_METHOD", "GET"), ("REQUEST_METHOD", "POST")]),
            400,
            "'REQUEST_METHOD' appears twice",
        ),
        (b"99999999999:CONTENT_LENGTH\x00", 431, "exceeds the limit of 131072 bytes"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "looks like HTTP"),
    ],
)
def test_malformed_headers_answered_and_logged(
    wire: bytes, status: int, logged: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "wsgigate.error"):
        got, _, body = ask(wire)
    assert got == status and body.startswith(str(status).encode())
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1 and logged in messages[0], messages
    assert "Traceback" not in caplog.text


def test_max_header_size_option() -> None:
    wire = encode_request({**NGINX_META, "HTTP_COOKIE": "c" * 3000})
    assert ask(wire, max_header_size=2048)[0] == 431
    assert ask(wire, max_header_size=4096)[0] == 200


def test_web_server_gone_mid_body(caplog: pytest.LogCaptureFixture) -> None:
    served = Served()
    meta = {**NGINX_META, "REQUEST_METHOD": "POST", "REQUEST_URI": "/read-all"}
    served.theirs.sendall(encode_request(meta, b"x" * 1000)[:-400])
    with caplog.at_level(logging.INFO, "wsgigate"):
        served.theirs.shutdown(socket.SHUT_WR)
        assert served.received() == b""  # nobody left to answer
    assert served.kept == [False]
    assert "the web server closed the connection mid-body" in caplog.text
    assert "Traceback" not in caplog.text


def test_closed_before_a_complete_header_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = Served()
    served.theirs.sendall(b"70:CONTENT_LE")
    with caplog.at_level(logging.INFO, "wsgigate"):
        served.theirs.shutdown(socket.SHUT_WR)
        assert served.theirs.recv(100) == b""
        served.thread.join(10)
    served.theirs.close()
    assert served.kept == [False] and not caplog.records


def test_overloaded_answers_503_at_once(caplog: pytest.LogCaptureFixture) -> None:
    """The runtime's full-pool hook (worker main thread): a 503, no app call, no waiting."""
    config = ServerConfig(workers=1, threads=3)
    handler = SCGIHandler(echo_app, config)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(encode_request(NGINX_META))
        conn = Connection(
            ours, "", Listener(ours, BindSpec("fd"), "t"), Worker([], handler, config)
        )
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, "wsgigate.error"):
            handler.overloaded(conn)
        assert time.monotonic() - started < 1
        theirs.settimeout(5)
        data = theirs.recv(65536)
    assert data.startswith(b"Status: 503 Service Unavailable\r\n") and b"Retry-After: 1" in data
    assert "all 3 threads busy" in caplog.text


# -- Apache mod_proxy_scgi, as seen on the wire (Apache 2.4.71) ---------------------------------


@pytest.mark.parametrize(
    ("uri", "script_name", "path_info", "expected"),
    [
        ("/x%20y/z", "/x y", "/x%20y/z", ("", "/x y/z")),
        ("/caf%C3%A9/", "/caf\xc3\xa9", "/caf%C3%A9/", ("", "/caf\xc3\xa9/")),
        ("/a/b/c?q=1", "", "/a/b/c", ("", "/a/b/c")),
        ("/", "", "/", ("", "/")),
        ("/app/x%20y", "/app/x", "/x%20y", ("/app", "/x y")),  # ProxyPass "/app/" ".../"
        ("/app/x", "/app", "/x", ("/app", "/x")),
    ],
)
def test_apache_proxy_scgi_pathinfo(
    uri: str, script_name: str, path_info: str, expected: tuple[str, str]
) -> None:
    meta = {
        "proxy-scgi-pathinfo": "1",
        "REQUEST_URI": uri,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
    }
    fix_apache_path_info(meta)
    assert (meta["SCRIPT_NAME"], meta["PATH_INFO"]) == expected


def test_apache_without_pathinfo_is_left_to_fix_script_name() -> None:
    meta = {"REQUEST_URI": "/x%20y/z", "SCRIPT_NAME": "/x y/z"}
    fix_apache_path_info(meta)
    assert meta == {"REQUEST_URI": "/x%20y/z", "SCRIPT_NAME": "/x y/z"}
    wire = encode_request({"REQUEST_METHOD": "GET", **meta})
    env = json.loads(ask(wire)[2])["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/x y/z")


# -- processes ----------------------------------------------------------------------------------


APP = f"{Path(__file__).resolve().parent / 'integration' / 'cgi_probe.py'}:app"


def scgi_request(
    address: str, meta: dict[str, str], body: bytes = b"", timeout: float = 10
) -> tuple[int, bytes]:
    """One request to a live SCGI server: (status, body)."""
    family, target = (
        (socket.AF_UNIX, address[5:])
        if address.startswith("unix:")
        else (
            socket.AF_INET6 if address.startswith("[") else socket.AF_INET,
            (address.rpartition(":")[0].strip("[]"), int(address.rpartition(":")[2])),
        )
    )
    with socket.socket(family) as sock:
        sock.settimeout(timeout)
        sock.connect(target)
        sock.sendall(encode_request(meta, body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split(b"Status: ", 1)[1][:3])
    return status, payload


@contextlib.contextmanager
def scgi_server(tmp_path: Path, *args: str, **popen: Any) -> Iterator[Any]:
    argv = [sys.executable, "-m", "wsgigate", *args]
    with live_server(argv, tmp_path, **popen) as server:
        yield server


def test_stalled_upload_is_cut_off_by_the_io_timeout(tmp_path: Path) -> None:
    """--timeout is the socket's I/O timeout (SO_RCVTIMEO): a web server that stops sending in
    the middle of a body frees the thread after about that long, the app's read raising the
    TimeoutError of a timed-out read (a 500), and the worker keeps serving."""
    args = ("scgi", APP, "--bind", "127.0.0.1:0", "--workers", "0", "--timeout", "2")
    with scgi_server(tmp_path, *args) as server:
        host, port = server.address.rsplit(":", 1)
        meta = {**NGINX_META, "REQUEST_METHOD": "POST", "REQUEST_URI": "/upload"}
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(encode_request(meta, b"x" * 10)[:-8])  # 2 of 10 body bytes
            started = time.monotonic()
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
            waited = time.monotonic() - started
        assert data.startswith(b"Status: 500"), data[:200]
        assert 1.5 < waited < 7, waited
        assert "TimeoutError: the web server sent no more of the request body" in server.text()
        assert scgi_request(server.address, {**NGINX_META, "REQUEST_URI": "/after"})[0] == 200


def test_cli_on_ipv6_and_unix_socket(tmp_path: Path) -> None:
    """flup's SCGI allow-list is IPv4 only (see docs/comparison.md); wsgigate binds ::1."""
    sock = tmp_path / "app.sock"
    with scgi_server(
        tmp_path,
        *("scgi", APP, "--bind", "[::1]:0", "--bind", f"unix:{sock}"),
        *("--workers", "0", "--threads", "2"),
    ) as server:
        addresses = [server.address, *server.wait_for(r"listening on (unix:\S+)").groups()]
        assert server.address.startswith("[::1]:")
        for address in addresses:
            status, body = scgi_request(address, {**NGINX_META, "REQUEST_URI": "/v6"})
            assert status == 200 and json.loads(body)["environ"]["PATH_INFO"] == "/v6"
        server.wait_for(r'"GET /v6 HTTP/1.1" 200')  # the access log line
    assert not sock.exists()


def test_run_on_an_inherited_socket_speaks_scgi(tmp_path: Path) -> None:
    """``wsgigate run --protocol scgi`` as a spawner starts it: the listening socket on fd 0."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    with listener, scgi_server(tmp_path, "run", "--protocol", "scgi", APP, stdin=listener) as app:
        listener.close()
        assert app.address == f"127.0.0.1:{port}"
        app.wait_for(r"scgi listening")
        status, body = scgi_request(app.address, {**NGINX_META, "REQUEST_URI": "/fd0"})
        assert status == 200 and json.loads(body)["environ"]["PATH_INFO"] == "/fd0"


def test_threads_0_and_the_ping_path(tmp_path: Path) -> None:
    """The shared runtime's options work for SCGI too: --threads 0 (requests on each worker's
    main thread) and --ping-path answered in front of the app."""
    with scgi_server(
        tmp_path,
        *("scgi", APP, "--bind", "127.0.0.1:0", "--workers", "1", "--threads", "0"),
        "--ping-path",
        "/ping",
    ) as server:
        status, body = scgi_request(server.address, {**NGINX_META, "REQUEST_URI": "/ping"})
        assert (status, body.strip()) == (200, b"pong")
        for i in range(3):
            meta = {**NGINX_META, "REQUEST_URI": f"/n{i}", "REQUEST_METHOD": "POST"}
            status, body = scgi_request(server.address, meta, b"abc")
            env = json.loads(body)["environ"]
            assert (status, env["PATH_INFO"], env["wsgi.multithread"]) == (200, f"/n{i}", False)


def test_bad_max_header_size_is_a_usage_error(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "wsgigate", "scgi", APP, "--max-header-size", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "--max-header-size" in done.stderr
