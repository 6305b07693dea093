"""wsgigate.fastcgi.client and the codec against an independent implementation (Debian's cgi-fcgi).

The FastCGI application here is a tiny threaded server built on the sans-I/O codec; it answers
with what it received. cgi-fcgi (libfcgi) then plays the web server, writing 8 KiB records, and
our client plays it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, require_binary, running
from wsgigate.cli import main as cli_main
from wsgigate.core import cgi_response_head
from wsgigate.errors import ConfigurationError, ProtocolError
from wsgigate.fastcgi.client import Response, get_values, http_params, parse_address, request
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols import fastcgi as f

HEADER = struct.Struct("!BBHHBx")


class EchoApp:
    """A FastCGI application server on the codec, for tests: one thread, one connection at a time.

    It answers each request with a JSON document of its params and body; ``HTTP_X_STATUS`` sets
    the status, ``HTTP_X_SIZE`` asks for that many body bytes, ``HTTP_X_STDERR`` is logged to
    FCGI_STDERR, ``HTTP_X_EMPTY`` asks for an empty body. Raw bytes received are kept.
    """

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.listener.settimeout(0.1)
        self.received: list[bytearray] = []  # one per connection, filled as bytes arrive
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with sock:
                sock.settimeout(10)
                self._connection(sock)

    def _connection(self, sock: socket.socket) -> None:
        conn = f.FastCGIConnection(max_conns=7, max_reqs=3, multiplex=False)
        raw = bytearray()
        self.received.append(raw)
        params: dict[int, dict[str, str]] = {}
        bodies: dict[int, list[bytes]] = {}
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                sock.sendall(conn.data_to_send())
                if conn.should_close:
                    return
                data = sock.recv(65536)
                raw += data
                conn.receive_data(data)
            elif isinstance(event, ConnectionClosed):
                return
            elif isinstance(event, f.BeginRequest):
                bodies[event.request_id] = []
            elif isinstance(event, f.Params):
                params[event.request_id] = event.params
            elif isinstance(event, f.Stdin):
                bodies[event.request_id].append(event.data)
            elif isinstance(event, f.StdinEnd | f.AbortRequest):
                rid = event.request_id
                self._answer(conn, rid, params.pop(rid, {}), b"".join(bodies.pop(rid)))

    def _answer(
        self, conn: f.FastCGIConnection, rid: int, params: dict[str, str], body: bytes
    ) -> None:
        status = params.get("HTTP_X_STATUS", "200 OK")
        if "HTTP_X_SIZE" in params:
            out = bytes(range(256)) * (int(params["HTTP_X_SIZE"]) // 256)
        elif "HTTP_X_EMPTY" in params:
            out = b""
        else:
            out = json.dumps({"params": params, "body": body.decode("latin-1")}).encode()
        if "HTTP_X_STDERR" in params:
            conn.stderr(rid, params["HTTP_X_STDERR"].encode("latin-1"))
        conn.stdout(rid, cgi_response_head(status, [("Content-Type", "application/json")]))
        conn.stdout(rid, out)
        conn.end_request(rid, app_status=int(params.get("HTTP_X_APP_STATUS", "0")))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()


@contextlib.contextmanager
def echo_app(family: str, tmp_path: Path) -> Iterator[tuple[str, EchoApp]]:
    if family == "unix":
        path = str(tmp_path / "app.sock")
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)
        address = f"unix:{path}"
    elif family == "ipv6":
        if not socket.has_ipv6:
            pytest.skip("no IPv6")
        listener = socket.socket(socket.AF_INET6)
        try:
            listener.bind(("::1", 0))
        except OSError:
            listener.close()
            pytest.skip("no ::1")
        address = f"[::1]:{listener.getsockname()[1]}"
    else:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{listener.getsockname()[1]}"
    listener.listen(16)
    app = EchoApp(listener)
    try:
        yield address, app
    finally:
        app.close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[str, EchoApp]]:
    with echo_app("tcp", tmp_path) as pair:
        yield pair


def params_records(wire: bytes) -> list[int]:
    """Content lengths of the non-empty PARAMS records in a raw stream."""
    sizes = []
    pos = 0
    while pos + 8 <= len(wire):
        _, rtype, _, length, padding = HEADER.unpack_from(wire, pos)
        if rtype == f.PARAMS and length:
            sizes.append(length)
        pos += 8 + length + padding
    return sizes


# -- our client ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["tcp", "unix", "ipv6"])
def test_request_round_trip(family: str, tmp_path: Path) -> None:
    with echo_app(family, tmp_path) as (address, _):
        params = http_params("POST", "/caf%C3%A9/x?a=1&a=2", [("X-Stderr", "careful")], b"body")
        response = request(address, params, b"body", timeout=5)
    assert response.status == 200
    assert ("Content-Type", "application/json") in response.headers
    answer = json.loads(response.body)
    assert answer["body"] == "body"
    assert answer["params"]["PATH_INFO"] == "/caf\xc3\xa9/x"
    assert answer["params"]["QUERY_STRING"] == "a=1&a=2"
    assert answer["params"]["CONTENT_LENGTH"] == "4"
    assert answer["params"]["REQUEST_METHOD"] == "POST"
    assert response.stderr == b"careful"
    assert response.app_status == 0
    assert response.protocol_status == f.REQUEST_COMPLETE


def test_big_header_in_8k_records_and_big_response(app: tuple[str, EchoApp]) -> None:
    address, server = app
    params = http_params("GET", "/", [("X-Big", "z" * 20000)])
    response = request(address, params, record_size=8192)
    assert json.loads(response.body)["params"]["HTTP_X_BIG"] == "z" * 20000
    assert max(params_records(server.received[-1])) == 8192
    response = request(address, {**params, "HTTP_X_SIZE": "300000"})
    assert response.body == bytes(range(256)) * (300000 // 256)


def test_http_params_mount_point_and_extra() -> None:
    params = http_params(
        "GET", "/app/x%2Fy?q", script_name="/app", extra={"SCRIPT_FILENAME": "/srv/ping.php"}
    )
    assert params["SCRIPT_NAME"] == "/app"
    assert params["PATH_INFO"] == "/x/y"
    assert params["QUERY_STRING"] == "q"
    assert params["SCRIPT_FILENAME"] == "/srv/ping.php"
    assert "CONTENT_LENGTH" not in params


def test_get_values(app: tuple[str, EchoApp]) -> None:
    assert get_values(app[0]) == {
        "FCGI_MAX_CONNS": "7",
        "FCGI_MAX_REQS": "3",
        "FCGI_MPXS_CONNS": "0",
    }


def test_response_head_parsing() -> None:
    assert Response(b"Status: 404 Not Found\r\nA: b\r\n\r\nbody", b"", 0).status == 404
    assert Response(b"Location: /x\n\n", b"", 0).status == 302
    assert Response(b"Content-Type: text/plain\n\nhi\r\n\r\n", b"", 0).body == b"hi\r\n\r\n"
    with pytest.raises(ProtocolError, match="no end of headers"):
        Response(b"Status: 200 OK\r\n", b"", 0).status  # noqa: B018
    with pytest.raises(ProtocolError, match="malformed Status"):
        Response(b"Status: OK\r\n\r\n", b"", 0).status  # noqa: B018


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:9000", (socket.AF_INET, ("127.0.0.1", 9000))),
        (":9000", (socket.AF_INET, ("127.0.0.1", 9000))),
        ("[::1]:9000", (socket.AF_INET6, ("::1", 9000))),
        ("unix:/run/app.sock", (socket.AF_UNIX, "/run/app.sock")),
        ("/run/app.sock", (socket.AF_UNIX, "/run/app.sock")),
    ],
)
def test_parse_address(address: str, expected: tuple[object, object]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["localhost", "::1:9000", "host:0", "host:99999", "unix:"])
def test_parse_address_errors(address: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_address(address)


def test_peer_closing_without_answer_is_a_protocol_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def close_at_once() -> None:
            sock, _ = listener.accept()
            sock.recv(65536)
            sock.close()

        thread = threading.Thread(target=close_at_once)
        thread.start()
        with pytest.raises(ProtocolError, match="closed the connection before answering"):
            request(f"127.0.0.1:{port}", http_params(), timeout=5)
        thread.join()


# -- the command -----------------------------------------------------------------------------


def test_cli_exit_status(
    app: tuple[str, EchoApp], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    address = app[0]
    assert cli_main(["fastcgi-request", "--connect", address, "/health?x=1"]) == 0
    out = capsysbinary.readouterr().out
    assert json.loads(out)["params"]["QUERY_STRING"] == "x=1"
    argv = ["fastcgi-request", "--connect", address, "-i", "--header", "X-Status: 301 Moved", "/"]
    assert cli_main(argv) == 0
    assert capsysbinary.readouterr().out.startswith(b"Status: 301 Moved\r\n")
    for status in ("404 Not Found", "500 Internal Server Error", "101 Switching"):
        argv = [
            "fastcgi-request",
            "--connect",
            address,
            "-q",
            "--header",
            f"X-Status: {status}",
            "/",
        ]
        assert cli_main(argv) == 1
    assert capsysbinary.readouterr() == (b"", b"")
    argv = ["fastcgi-request", "--connect", address, "--method", "PUT", "--data", "payload"]
    assert cli_main([*argv, "--param", "HTTP_X_EMPTY=1", "/"]) == 0
    assert capsysbinary.readouterr().out == b""


def test_cli_connection_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert cli_main(["fastcgi-request", "--connect", f"127.0.0.1:{port}", "/"]) == 2
    assert "fastcgi-request 127.0.0.1:" in capsys.readouterr().err
    missing = f"unix:{tmp_path}/missing.sock"
    assert cli_main(["fastcgi-request", "--connect", missing, "/"]) == 2
    assert "missing.sock" in capsys.readouterr().err
    assert cli_main(["fastcgi-request", "--connect", "nonsense", "/"]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err


def test_cli_as_a_process(app: tuple[str, EchoApp]) -> None:
    """What a Docker HEALTHCHECK runs."""
    argv = [sys.executable, "-m", "wsgigate", "fastcgi-request", "--connect", app[0], "-q", "/"]
    result = subprocess.run(argv, capture_output=True, timeout=30, cwd=ROOT)
    assert (result.returncode, result.stdout) == (0, b"")


# -- cgi-fcgi (libfcgi) as the web server -----------------------------------------------------


def cgi_fcgi(address: str, env: dict[str, str], body: bytes = b"") -> bytes:
    binary = require_binary("cgi-fcgi", "/usr/bin/cgi-fcgi")
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "POST" if body else "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_LENGTH": str(len(body)),
        **env,
    }
    result = subprocess.run(
        [binary, "-bind", "-connect", address],
        input=body,
        env=environ,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_cgi_fcgi_sends_a_20000_byte_header_in_8k_records(family: str, tmp_path: Path) -> None:
    """libfcgi splits PARAMS at 8 KiB, across a pair: the value must arrive whole (flup: 8,064)."""
    big = "".join(chr(0x61 + i % 26) for i in range(20000))
    with echo_app(family, tmp_path) as (address, server):
        out = cgi_fcgi(address.removeprefix("unix:"), {"HTTP_X_BIG": big}, b"a=1&b=2")
    sizes = params_records(server.received[-1])
    assert len(sizes) >= 3, sizes
    assert max(sizes) <= 8192
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 200 OK")
    answer = json.loads(body)
    assert answer["params"]["HTTP_X_BIG"] == big
    assert answer["body"] == "a=1&b=2"


def test_cgi_fcgi_reads_our_split_and_padded_stdout(app: tuple[str, EchoApp]) -> None:
    out = cgi_fcgi(app[0], {"HTTP_X_SIZE": str(256 * 1000), "HTTP_X_STDERR": "log line"})
    head, _, body = out.partition(b"\r\n\r\n")
    assert body == bytes(range(256)) * 1000  # > 65,535: several records, each padded


def test_cgi_fcgi_empty_response(app: tuple[str, EchoApp]) -> None:
    out = cgi_fcgi(app[0], {"HTTP_X_EMPTY": "1", "HTTP_X_STATUS": "204 No Content"})
    assert out == b"Status: 204 No Content\r\nContent-Type: application/json\r\n\r\n"


# -- against the real server -------------------------------------------------------------------

STATUS_APP = """
def app(environ, start_response):
    code = environ["PATH_INFO"].rpartition("/")[2] or "200"
    start_response(code + " Status", [("Content-Type", "text/plain")])
    return [environ["REQUEST_METHOD"].encode() + b" " + environ["wsgi.input"].read()]
"""


def test_health_check_against_wsgigate_fastcgi(tmp_path: Path) -> None:
    (tmp_path / "statusapp.py").write_text(STATUS_APP)
    port = free_port()
    address = f"127.0.0.1:{port}"
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", "statusapp:app", "-b", address]
    argv += ["--workers", "0", "--threads", "2"]
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT / 'src'}"}
    with running(argv, port=port, env=env, cwd=tmp_path, log=tmp_path / "server.log"):
        response = request(address, http_params("PUT", "/x/201", body=b"data"), b"data")
        assert (response.status, response.body) == (201, b"PUT data")
        assert get_values(address)["FCGI_MPXS_CONNS"] == "0"
        check = [sys.executable, "-m", "wsgigate", "fastcgi-request", "--connect", address, "-q"]
        codes = {
            path: subprocess.run([*check, path], timeout=30, env={**os.environ, **env}).returncode
            for path in ("/200", "/302", "/404", "/503")
        }
        assert codes == {"/200": 0, "/302": 0, "/404": 1, "/503": 1}
