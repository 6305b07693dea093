"""WSGIApp under real ASGI servers on loopback: uvicorn, hypercorn, granian.

uvicorn and hypercorn are started through ``wsgigate asgi`` (the command users run); granian
through its own command line, with a module that wraps the app in ``WSGIApp``. The app is
generated into a temporary directory: it reports its environ, counts uploads, generates
downloads, and records when a streamed response's iterable is closed.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port, require_binary, require_module, running

pytestmark = pytest.mark.integration

APP = r"""
import io, json, os, time, zlib

MARKS = os.environ["ASGI_TEST_MARKS"]
BLOCK = bytes(range(256)) * 256  # 64 KiB


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/upload":
        stream, total, crc = environ["wsgi.input"], 0, 0
        while block := stream.read(65536):
            total += len(block)
            crc = zlib.crc32(block, crc)
        body = json.dumps({"bytes": total, "crc": crc}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/download":
        size = int(environ["QUERY_STRING"])
        start_response("200 OK", [("Content-Length", str(size))])
        return download(size)
    if path == "/file":
        name = os.path.join(MARKS, "served.bin")
        if not os.path.exists(name):
            with open(name, "wb") as f:
                f.write(BLOCK * 40)
        headers = [("Content-Type", "application/octet-stream")]
        if environ["QUERY_STRING"] == "length":  # as Flask's send_file answers
            headers.append(("Content-Length", str(os.path.getsize(name))))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](Counted(name), 65536)
    if path == "/forever":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Forever(environ["QUERY_STRING"])
    keys = [k for k in environ if k.isupper()] + ["wsgi.url_scheme", "wsgi.input_terminated"]
    body = json.dumps({k: environ[k] for k in keys}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


def download(size):
    while size:
        block = BLOCK[:size]
        size -= len(block)
        yield block


class Counted(io.FileIO):
    def read(self, size=-1, /):
        with open(os.path.join(MARKS, "file-reads"), "a") as f:
            f.write("r")
        return super().read(size)


class Forever:
    def __init__(self, name):
        self.mark = os.path.join(MARKS, name)
        open(self.mark + ".started", "w").close()

    def __iter__(self):
        while True:
            yield b"tick\n"
            time.sleep(0.02)

    def close(self):
        with open(self.mark + ".closed", "w") as f:
            f.write(repr(time.monotonic()))
"""

GRANIAN_TARGET = """
from wsgigate.asgi import WSGIApp
from asgi_target import app as wsgi
app = WSGIApp(wsgi)
"""

SERVERS = ["uvicorn", "hypercorn", "granian"]
GIB = 1 << 30
RSS_LIMIT = 32 << 20


class Server:
    def __init__(self, name: str, port: int, process: subprocess.Popen[bytes], marks: Path):
        self.name = name
        self.port = port
        self.process = process
        self.marks = marks

    def connect(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def get(self, target: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = self.connect()
        try:
            conn.request("GET", target, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def environ(self, target: str, headers: list[tuple[str, str]] = ()) -> dict[str, str]:  # type: ignore[assignment]
        """The environ the app saw; headers sent raw, so repeats stay repeats."""
        conn = self.connect()
        try:
            conn.putrequest("GET", target, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders()
            response = conn.getresponse()
            assert response.status == 200
            data: dict[str, str] = json.loads(response.read())
            return data
        finally:
            conn.close()

    def memory(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) in bytes, summed over the server's processes (granian forks)."""
        rss = hwm = 0
        for pid in _session(self.process.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("VmHWM:"):
                    hwm += int(line.split()[1]) * 1024
        return rss, hwm


def _session(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rpartition(")")[2].split()
            if int(fields[3]) == sid:  # session id (the server started its own session)
                pids.append(int(entry))
    return pids


@pytest.fixture(scope="module", params=SERVERS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    name: str = request.param
    if name == "granian":
        # installed in the venv beside this interpreter; the venv need not be on PATH
        binary = require_binary("granian", str(Path(sys.executable).parent / "granian"))
    else:
        require_module(name)
    work = tmp_path_factory.mktemp(f"asgi-{name}")
    marks = work / "marks"
    marks.mkdir()
    (work / "asgi_target.py").write_text(APP)
    (work / "granian_target.py").write_text(GRANIAN_TARGET)
    port = free_port()
    if name == "granian":
        argv = [binary, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", "1", "--log-level", "warning", "granian_target:app"]
    else:
        argv = [sys.executable, "-m", "wsgigate", "asgi", "asgi_target:app", "--server", name]
        argv += ["--bind", f"127.0.0.1:{port}", "--root-path", "/mnt", "--log-level", "warning"]
    # The suite runs with PYTHONDEVMODE=1; in a server it turns on asyncio's debug mode, which
    # makes a 1 GiB transfer 3-4 times slower and measures the debug checks, not the bridge.
    env = {"ASGI_TEST_MARKS": str(marks), "PYTHONPATH": str(work), "PYTHONDEVMODE": ""}
    with running(argv, port=port, env=env, cwd=work, log=work / "server.log") as process:
        yield Server(name, port, process, marks)


# ---- tricky requests -----------------------------------------------------------------------


def test_percent_encoded_and_non_ascii_path(server: Server) -> None:
    # --root-path /mnt: uvicorn adds it to what a path-stripping proxy sent, hypercorn expects
    # the client's path to carry it; the app sees the same SCRIPT_NAME and PATH_INFO either way.
    sent_prefix = "/mnt" if server.name == "hypercorn" else ""
    env = server.environ(f"{sent_prefix}/a%2Fb/caf%C3%A9/%FF%20x?q=%C3%A9&q=2&e=")
    assert env["SCRIPT_NAME"] == ("" if server.name == "granian" else "/mnt")
    # bytes as sent, latin-1 decoded (PEP 3333): %2F decoded, %FF kept as the byte 0xFF
    assert env["PATH_INFO"] == "/a/b/caf\xc3\xa9/\xff x"
    assert env["PATH_INFO"].encode("latin-1") == b"/a/b/caf\xc3\xa9/\xff x"
    assert env["QUERY_STRING"] == "q=%C3%A9&q=2&e="
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.url_scheme"] == "http"


def test_repeated_headers_and_cookies(server: Server) -> None:
    env = server.environ(
        "/env",
        [
            ("X-Multi", "one"),
            ("X-Multi", "two"),
            ("Cookie", "a=1"),
            ("Cookie", "b=2"),
            ("X-Latin", "caf\xe9"),
            ("Content-Type", "text/x-test"),
        ],
    )
    assert env["HTTP_X_MULTI"] == "one, two"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_X_LATIN"] == "caf\xe9"
    assert env["CONTENT_TYPE"] == "text/x-test"
    assert "HTTP_CONTENT_TYPE" not in env


def test_chunked_upload_is_read_to_its_end(server: Server) -> None:
    conn = server.connect()
    try:
        parts = [b"x" * 1000, b"y" * 70000, b"z"]
        conn.request("POST", "/upload", body=iter(parts), encode_chunked=True)
        response = conn.getresponse()
        result = json.loads(response.read())
    finally:
        conn.close()
    data = b"".join(parts)
    assert result == {"bytes": len(data), "crc": zlib.crc32(data)}


def test_websocket_is_refused_with_403(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head and (chunk := sock.recv(4096)):
            head += chunk
    assert head.startswith(b"HTTP/1.1 403"), head[:200]
    # the server goes on serving
    assert server.get("/env/after-ws")[0] == 200


def test_file_wrapper_is_sent_by_path_where_the_server_offers_pathsend(server: Server) -> None:
    reads = server.marks / "file-reads"
    for path in ("/file", "/file?length"):  # without and with the app's own Content-Length
        reads.unlink(missing_ok=True)
        status, body = server.get(path)
        assert status == 200
        assert body == bytes(range(256)) * 256 * 40
        if server.name == "granian":  # offers http.response.pathsend: the worker never reads it
            assert not reads.exists(), path
        else:
            assert reads.read_text().count("r") >= 40


# ---- 1 GiB each way with flat memory -------------------------------------------------------


class Sampler:
    """Polls the server's RSS while a transfer runs; ``peak`` is the highest seen."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.peak = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, self.server.memory()[0])

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def growth(server: Server, transfer: object) -> int:
    """Bytes the server's memory grew by while ``transfer()`` ran (sampled RSS and VmHWM)."""
    before_rss, before_hwm = server.memory()
    assert before_rss > 0, "no /proc/PID/status for the server"
    with Sampler(server) as sampler:
        transfer()  # type: ignore[operator]
    after_rss, after_hwm = server.memory()
    peak = max(sampler.peak, after_rss, after_hwm if after_hwm > before_hwm else 0)
    print(f"{server.name}: RSS {before_rss >> 20} MiB before, peak {peak >> 20} MiB")
    return peak - before_rss


def test_upload_1gib_streams_with_flat_memory(server: Server) -> None:
    block = os.urandom(1 << 20)
    expected_crc = 0
    for _ in range(GIB // len(block)):
        expected_crc = zlib.crc32(block, expected_crc)
    upload(server, block, 8)  # warm-up: buffers and code paths allocated before measuring
    result: dict[str, int] = {}

    def transfer() -> None:
        result.update(upload(server, block, GIB // len(block)))

    start = time.monotonic()
    grew = growth(server, transfer)
    elapsed = time.monotonic() - start
    assert result == {"bytes": GIB, "crc": expected_crc}
    assert grew < RSS_LIMIT, f"{server.name} grew by {grew >> 20} MiB for a 1 GiB upload"
    assert elapsed < 60


def upload(server: Server, block: bytes, count: int) -> dict[str, int]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        head = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(block) * count}"
            "\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        for _ in range(count):
            sock.sendall(block)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head_bytes, _, body = response.partition(b"\r\n\r\n")
    assert head_bytes.startswith(b"HTTP/1.1 200"), head_bytes
    if b"transfer-encoding: chunked" in head_bytes.lower():
        body = dechunk(body)
    data: dict[str, int] = json.loads(body)
    return data


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if not size:
            return bytes(out)
        out += data[:size]
        data = data[size + 2 :]


def test_download_1gib_streams_with_flat_memory(server: Server) -> None:
    download(server, 8 << 20)
    received: list[int] = []

    def transfer() -> None:
        received.append(download(server, GIB))

    start = time.monotonic()
    grew = growth(server, transfer)
    elapsed = time.monotonic() - start
    assert received == [GIB]
    assert grew < RSS_LIMIT, f"{server.name} grew by {grew >> 20} MiB for a 1 GiB download"
    assert elapsed < 60


def download(server: Server, size: int) -> int:
    pattern = bytes(range(256)) * 256
    conn = server.connect(timeout=60)
    try:
        conn.request("GET", f"/download?{size}")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(size)
        total = 0
        while chunk := response.read(1 << 20):  # 1 MiB = 16 patterns: every read is aligned
            if chunk[:65536] != pattern or chunk[-65536:] != pattern:
                raise AssertionError(f"wrong bytes at offset {total}")
            total += len(chunk)
        return total
    finally:
        conn.close()


def test_slow_client_does_not_make_the_server_buffer_the_body(server: Server) -> None:
    before, _ = server.memory()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(f"GET /download?{GIB} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        got = 0
        while got < 1 << 20:
            got += len(sock.recv(65536))
        with Sampler(server) as sampler:
            time.sleep(1.5)  # the client stops reading; the app could produce 1 GiB meanwhile
    grew = max(sampler.peak, server.memory()[0]) - before
    assert grew < RSS_LIMIT, f"{server.name} buffered {grew >> 20} MiB for a stalled client"


# ---- disconnects and concurrency -----------------------------------------------------------


def test_client_disconnect_closes_the_iterator_within_a_second(server: Server) -> None:
    name = f"cut-{time.monotonic_ns()}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET /forever?{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        seen = b""
        while seen.count(b"tick") < 5:
            seen += sock.recv(4096)
        assert seen.startswith(b"HTTP/1.1 200")
    gone = time.monotonic()
    closed = server.marks / f"{name}.closed"
    while not closed.exists() and time.monotonic() - gone < 3:
        time.sleep(0.01)
    assert closed.exists(), f"{server.name}: iterator not closed 3 s after the disconnect"
    assert time.monotonic() - gone < 1.0 + 0.05  # polling granularity


def test_200_concurrent_requests(server: Server) -> None:
    def one(number: int) -> tuple[int, str]:
        conn = server.connect(timeout=30)
        try:
            if number % 2:
                body = os.urandom(number * 10)
                conn.request("POST", "/upload", body=body)
                result = json.loads(conn.getresponse().read())
                ok = result == {"bytes": len(body), "crc": zlib.crc32(body)}
                return (200 if ok else 0), ""
            conn.request("GET", f"/env/{number}?n={number}")
            response = conn.getresponse()
            env = json.loads(response.read())
            return response.status, env["QUERY_STRING"]
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(200) as pool:
        results = list(pool.map(one, range(200)))
    assert [status for status, _ in results] == [200] * 200
    assert [q for _, q in results[::2]] == [f"n={n}" for n in range(0, 200, 2)]


# ---- asgiref's WsgiToAsgi under the same load ----------------------------------------------

PEERS = """
def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]

from asgiref.wsgi import WsgiToAsgi
from wsgigate.asgi import WSGIApp

asgiref_app = WsgiToAsgi(hello)
wsgigate_app = WSGIApp(hello)
"""


def hammer(tmp_path: Path, target: str) -> tuple[int, int, str]:
    """16 connections for 3 s under uvicorn: (requests, failed requests, server log)."""
    wrk = require_binary("wrk")
    (tmp_path / "peers.py").write_text(PEERS)
    port = free_port()
    log = tmp_path / f"{target}.log"
    argv = [sys.executable, "-m", "uvicorn", f"peers:{target}", "--port", str(port)]
    argv += ["--no-access-log", "--workers", "1"]
    with running(argv, port=port, cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)}, log=log):
        done = subprocess.run(
            [wrk, "-t2", "-c16", "-d3s", f"http://127.0.0.1:{port}/"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    total = int(done.stdout.split(" requests in")[0].split()[-1])
    failed = 0
    for line in done.stdout.splitlines():
        if line.strip().startswith(("Non-2xx or 3xx responses:", "Socket errors:")):
            failed += sum(int(n) for n in line.replace(",", " ").split() if n.isdigit())
    return total, failed, log.read_text(errors="replace")


def test_asgiref_wsgitoasgi_fails_under_16_connections(tmp_path: Path) -> None:
    """The reproducer behind docs/comparison.md#asgiref (if this fails, asgiref fixed it)."""
    require_module("asgiref")
    total, failed, log = hammer(tmp_path, "asgiref_app")
    assert total > 0
    assert failed > 0 and "CurrentThreadExecutor already quit or is broken" in log


def test_wsgiapp_has_no_errors_under_the_same_load(tmp_path: Path) -> None:
    total, failed, log = hammer(tmp_path, "wsgigate_app")
    assert total > 100
    assert failed == 0
    assert "Traceback" not in log and "ERROR" not in log


# ---- wsgigate asgi: other binds, bad options -----------------------------------------------


def _get_over(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /env/bind HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.parametrize("name", ["uvicorn", "hypercorn"])
def test_cli_serves_on_ipv6_loopback_and_unix_socket(name: str, tmp_path: Path) -> None:
    require_module(name)
    (tmp_path / "marks").mkdir()
    (tmp_path / "asgi_target.py").write_text(APP)
    env = {"ASGI_TEST_MARKS": str(tmp_path / "marks"), "PYTHONPATH": str(tmp_path)}
    base = [sys.executable, "-m", "wsgigate", "asgi", "asgi_target:app", "--server", name]
    port = free_port()
    with running(base + ["--bind", f"[::1]:{port}"], env=env, cwd=tmp_path, log=tmp_path / "6"):
        deadline = time.monotonic() + 10
        while True:
            try:
                sock = socket.create_connection(("::1", port), timeout=10)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        with sock:
            response = _get_over(sock)
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert b'"REMOTE_ADDR": "::1"' in response
    path = tmp_path / "app.sock"
    with running(base + ["--bind", f"unix:{path}"], env=env, cwd=tmp_path, log=tmp_path / "u"):
        deadline = time.monotonic() + 10
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            response = _get_over(sock)
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert b'"PATH_INFO": "/env/bind"' in response


def test_cli_refuses_a_bad_bind_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "asgi_target.py").write_text(APP)
    done = subprocess.run(
        [sys.executable, "-m", "wsgigate", "asgi", "asgi_target:app", "--bind", "fd://3"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "ASGI_TEST_MARKS": str(tmp_path)},
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "wsgigate: error: bind 'fd://3': the ASGI servers take HOST:PORT or unix:/path"
    ]


@pytest.mark.parametrize("name", ["uvicorn", "hypercorn"])
def test_cli_stops_cleanly_on_sigterm(name: str, tmp_path: Path) -> None:
    require_module(name)
    (tmp_path / "asgi_target.py").write_text(APP)
    env = {"ASGI_TEST_MARKS": str(tmp_path), "PYTHONPATH": str(tmp_path), "PYTHONDEVMODE": ""}
    port = free_port()
    argv = [sys.executable, "-m", "wsgigate", "asgi", "asgi_target:app", "--server", name]
    argv += ["--bind", f"127.0.0.1:{port}", "--log-level", "info"]
    log = tmp_path / "server.log"
    with running(argv, port=port, env=env, cwd=tmp_path, log=log) as process:
        server = Server(name, port, process, tmp_path)
        assert server.get("/env/before-stop")[0] == 200
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal it caught once it has shut down (exit -15)
        assert process.wait(timeout=10) in (0, -signal.SIGTERM)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-2000:]
    if name == "uvicorn":
        assert "Application shutdown complete" in text, text[-2000:]
