"""Fault injection and security checks against real servers on loopback (issue #7).

Every gateway runs tests/reliability_app.py: `wsgigate fastcgi` (spoken to with the codec, and
behind real nginx), `wsgigate scgi`, the ASGI bridge under real uvicorn, the Lambda handler and
`wsgigate cgi`. What is already proven elsewhere is not repeated here:

- FastCGI peer leaving mid-response, ABORT_REQUEST, malformed records, a full pool, SIGTERM with
  one request in flight: tests/test_fastcgi_server.py; a client leaving mid-stream behind nginx
  and SIGHUP under load: tests/integration/test_fastcgi_nginx.py;
- a killed, hung or stopped worker respawned, unix socket modes of the runtime:
  tests/test_server_runtime.py; SCGI peer gone mid-body: tests/test_scgi_server.py;
- start_response / exc_info / close() rules in the core: tests/test_core_runner.py.

docs/reliability.md has the table of what was tried and found.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import servers
from tests.support import DEPLOY, ROOT, free_port, require_binary, wait_for_port
from tests.test_server_runtime import LiveServer, live_server
from wsgigate.fastcgi.client import http_params
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols.fastcgi import (
    CANT_MPX_CONN,
    REQUEST_COMPLETE,
    EndRequest,
    FastCGIClientConnection,
    Stdout,
)
from wsgigate.protocols.scgi import encode_request

APP_FILE = ROOT / "tests" / "reliability_app.py"
APP = f"{APP_FILE}:app"
SECRET = "reliability-app-secret-in-a-traceback"


def fastcgi(tmp_path: Path, *args: str, marks: Path | None = None) -> Any:
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", APP, *args]
    if "--bind" not in args:
        argv += ["--bind", "127.0.0.1:0"]
    env = {"RELIABILITY_MARKS": str(marks)} if marks else None
    return live_server(argv, tmp_path, env=env)


class FCGI:
    """One FastCGI connection to a live server, driven request by request."""

    def __init__(self, server: LiveServer, timeout: float = 10) -> None:
        self.sock = server.connect(timeout=timeout)
        self.client = FastCGIClientConnection()

    def close(self) -> None:
        self.sock.close()

    def send(
        self,
        rid: int,
        target: str,
        body: bytes = b"",
        *,
        keep: bool = True,
        params: dict[str, str] | None = None,
        end_stdin: bool = True,
    ) -> None:
        client = self.client
        client.begin_request(rid, keep_conn=keep)
        meta = http_params("POST" if body else "GET", target, body=body)
        meta.update(params or {})
        client.params(rid, meta)
        client.stdin(rid, body)
        if end_stdin:
            client.end_stdin(rid)
        self.sock.sendall(client.data_to_send())

    def answer(self, rid: int, timeout: float = 10) -> tuple[bytes, EndRequest | None]:
        """STDOUT of ``rid`` and its END_REQUEST (None when the server closed instead)."""
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.client.next_event()
            if event is NEED_DATA:
                self.client.receive_data(self.sock.recv(65536))
            elif isinstance(event, ConnectionClosed):
                return out, None
            elif isinstance(event, Stdout) and event.request_id == rid:
                out += event.data
            elif isinstance(event, EndRequest) and event.request_id == rid:
                return out, event
        raise AssertionError(f"no answer to request {rid} in {timeout}s; got {out[:200]!r}")


def status_of(stdout: bytes) -> int:
    head = stdout.partition(b"\r\n\r\n")[0]
    return int(head.split(b"Status: ", 1)[1][:3]) if b"Status: " in head else 200


def one(server: LiveServer, target: str, body: bytes = b"", **params: str) -> bytes:
    conn = FCGI(server)
    try:
        conn.send(1, target, body, keep=False, params=params)
        out, end = conn.answer(1)
        assert end is not None and end.protocol_status == REQUEST_COMPLETE, out
        return out
    finally:
        conn.close()


@pytest.fixture(scope="module")
def fcgi_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("reliability-fcgi")
    marks = tmp / "marks"
    marks.mkdir()
    with fastcgi(tmp, "--workers", "1", "--threads", "2", marks=marks) as server:
        server.marks = marks  # type: ignore[attr-defined]
        yield server


# -- the app misbehaves: every gateway ---------------------------------------------------------

# path -> expected status; None: a response cut off after its first chunk
FAULTS: dict[str, int | None] = {
    "/raise-before": 500,
    "/bad-status": 500,
    "/crlf": 500,
    "/lf": 500,
    "/nul": 500,
    "/raise-in-iter": 500,
    "/no-start-response": 500,
    "/raise-in-close": 200,
    "/raise-mid-stream": None,
}


Ask = Callable[[str, dict[str, str]], tuple[int | None, dict[str, str], bytes]]


def _split_cgi(data: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    status = int(headers.get("status", "200")[:3])
    return status, headers, body


@contextlib.contextmanager
def gateway(name: str, tmp_path: Path) -> Iterator[Ask]:
    """``ask(path, headers) -> (status or None if cut off, lower-cased headers, body)``."""
    if name == "fastcgi":
        with fastcgi(tmp_path, "--workers", "0", "--threads", "2") as server:

            def ask_fastcgi(path: str, headers: dict[str, str]) -> Any:
                conn = FCGI(server)
                try:
                    meta = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
                    conn.send(1, path, keep=False, params=meta)
                    out, end = conn.answer(1)
                finally:
                    conn.close()
                status, head, body = _split_cgi(out)
                return (status if end else None), head, body

            yield ask_fastcgi
    elif name == "scgi":
        argv = [sys.executable, "-m", "wsgigate", "scgi", APP, "--bind", "127.0.0.1:0"]
        with live_server([*argv, "--workers", "0"], tmp_path) as server:

            def ask_scgi(path: str, headers: dict[str, str]) -> Any:
                meta = {"REQUEST_METHOD": "GET", "REQUEST_URI": path, "SERVER_NAME": "x"}
                meta.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
                meta["SERVER_PORT"] = "80"
                meta["SERVER_PROTOCOL"] = "HTTP/1.1"
                with server.connect(10) as sock:
                    sock.sendall(encode_request(meta))
                    data = b""
                    while chunk := sock.recv(65536):
                        data += chunk
                status, head, body = _split_cgi(data)
                # SCGI marks no end: a cut-off response is one shorter than announced, or, for
                # this app's unannounced stream, one without its second chunk.
                return status, head, body

            yield ask_scgi
    elif name == "asgi":
        require_binary("uvicorn")
        port = free_port()
        argv = [sys.executable, "-m", "wsgigate", "asgi", APP, "--bind", f"127.0.0.1:{port}"]
        argv += ["--server", "uvicorn"]
        with live_server(argv, tmp_path, wait=False) as server:
            wait_for_port(port, process=server.proc)  # type: ignore[arg-type]

            def ask_asgi(path: str, headers: dict[str, str]) -> Any:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("GET", path, headers=headers)
                    reply = conn.getresponse()
                    try:
                        body = reply.read()
                    except http.client.IncompleteRead:
                        return None, {}, b""
                    head = {k.lower(): v for k, v in reply.getheaders()}
                    return reply.status, head, body
                finally:
                    conn.close()

            yield ask_asgi
    elif name == "lambda":
        from wsgigate.aws_lambda import events, make_handler
        from wsgigate.loader import load_app

        handler = make_handler(load_app(APP))

        def ask_lambda(path: str, headers: dict[str, str]) -> Any:
            answer = handler(events.make_v2_event(path=path, headers=list(headers.items())), None)
            head = {k.lower(): v for k, v in answer.get("headers", {}).items()}
            return answer["statusCode"], head, answer.get("body", "").encode()

        yield ask_lambda
    elif name == "cgi":

        def ask_cgi(path: str, headers: dict[str, str]) -> Any:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_", "CGI"))}
            env.update(GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="GET", PATH_INFO=path)
            env.update(SCRIPT_NAME="", SERVER_NAME="x", SERVER_PORT="80", QUERY_STRING="")
            env.update(SERVER_PROTOCOL="HTTP/1.1")
            env.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
            env.pop("PYTHONDEVMODE", None)
            done = subprocess.run(
                [sys.executable, "-m", "wsgigate", "cgi", APP],
                env=env,
                capture_output=True,
                timeout=30,
                stdin=subprocess.DEVNULL,
            )
            return _split_cgi(done.stdout)

        yield ask_cgi
    else:  # pragma: no cover
        raise ValueError(name)


GATEWAYS = ["fastcgi", "scgi", "asgi", "lambda", "cgi"]


@pytest.mark.parametrize("name", GATEWAYS)
def test_app_faults_answered_without_leaking_anything(name: str, tmp_path: Path) -> None:
    """Each fault: the status PEP 3333 calls for, no traceback or injected header, and the
    gateway serves the next request."""
    with gateway(name, tmp_path) as ask:
        for path, expected in FAULTS.items():
            if name in ("lambda", "cgi", "scgi") and expected is None:
                # No end-of-response marker (SCGI, CGI) or a buffered answer (Lambda: a 500).
                status, _, body = ask(path, {})
                assert SECRET.encode() not in body and b"second" not in body, (path, body)
                continue
            status, headers, body = ask(path, {})
            assert status == expected, (name, path, status, body[:300])
            assert SECRET.encode() not in body and b"Traceback" not in body, (name, path, body)
            assert "set-cookie" not in headers and "injected" not in str(headers).lower()
            if expected == 500:
                assert body.startswith(b"Internal Server Error"), (name, path, body[:200])
            assert ask("/ok", {})[:3:2] == (200, b"ok"), (name, path)


@pytest.mark.parametrize("name", GATEWAYS)
def test_httpoxy_proxy_header_never_reaches_environ_or_os_environ(
    name: str, tmp_path: Path
) -> None:
    """httpoxy (CVE-2016-5385 and kin): a `Proxy:` request header must not become HTTP_PROXY,
    the variable requests/urllib read from os.environ."""
    with gateway(name, tmp_path) as ask:
        status, _, body = ask("/proxy", {"Proxy": "http://evil.example:8080"})
        assert status == 200, body
        assert json.loads(body) == {"environ": None, "os.environ": None}


def test_traceback_only_with_debug(tmp_path: Path) -> None:
    with fastcgi(tmp_path, "--workers", "0", "--debug") as server:
        out = one(server, "/raise-before")
        assert status_of(out) == 500
        assert SECRET.encode() in out and b"Traceback" in out


# -- the front end misbehaves: FastCGI -------------------------------------------------------


def test_front_end_closes_mid_body_frees_the_thread(tmp_path: Path) -> None:
    """A web server gone halfway through an upload: the app's read fails, the only thread is
    free again at once, the worker is the same process."""
    with fastcgi(tmp_path, "--workers", "1", "--threads", "1") as server:
        pid = one(server, "/pid").partition(b"\r\n\r\n")[2]
        for _ in range(3):
            conn = FCGI(server)
            conn.send(1, "/echo", params={"CONTENT_LENGTH": "100000"}, end_stdin=False)
            conn.client.stdin(1, b"x" * 1000)
            conn.sock.sendall(conn.client.data_to_send())
            time.sleep(0.1)
            conn.close()
        started = time.monotonic()
        assert one(server, "/pid").partition(b"\r\n\r\n")[2] == pid
        assert time.monotonic() - started < 2
        assert "Traceback" not in server.text() or "application raised" not in server.text()


def test_front_end_closes_mid_response_closes_the_iterator(fcgi_server: LiveServer) -> None:
    marks: Path = fcgi_server.marks  # type: ignore[attr-defined]
    before = _lines(marks / "closed")
    conn = FCGI(fcgi_server)
    conn.send(1, "/slow", params={"QUERY_STRING": "closing"})
    conn.client.receive_data(conn.sock.recv(4096))
    conn.close()
    deadline = time.monotonic() + 5
    while len(_lines(marks / "closed")) == len(before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_lines(marks / "closed")) == len(before) + 1
    assert status_of(one(fcgi_server, "/ok")) == 200


def test_front_end_closes_between_kept_and_multiplexed_requests(fcgi_server: LiveServer) -> None:
    """A kept connection closed between two requests, and a second concurrent request on one
    connection (refused with CANT_MPX_CONN: wsgigate says FCGI_MPXS_CONNS=0) then a close
    before the first is answered: the server carries on, nothing is logged as an error."""
    mark = len(fcgi_server.text())
    conn = FCGI(fcgi_server)
    conn.send(1, "/ok")
    assert conn.answer(1)[1] is not None
    conn.send(2, "/ok")
    assert conn.answer(2)[1] is not None
    conn.close()
    conn = FCGI(fcgi_server)
    conn.send(1, "/sleep", params={"QUERY_STRING": "0.3"})
    conn.send(2, "/ok")
    out, end = conn.answer(2)
    # Refused at once (CANT_MPX_CONN) if the codec read it during request 1, else answered
    # after it: never mixed up with request 1.
    assert end is not None and end.protocol_status in (CANT_MPX_CONN, REQUEST_COMPLETE)
    assert end.protocol_status == CANT_MPX_CONN or out.endswith(b"ok")
    conn.send(3, "/sleep", params={"QUERY_STRING": "0.3"})
    conn.close()  # request 3 is still running
    time.sleep(0.5)
    for _ in range(3):
        assert status_of(one(fcgi_server, "/ok")) == 200
    assert "[ERROR]" not in fcgi_server.text()[mark:], fcgi_server.text()[mark:]


def test_oversized_params_answered_431_and_the_connection_stays_usable(
    fcgi_server: LiveServer,
) -> None:
    conn = FCGI(fcgi_server)
    try:
        conn.send(1, "/ok", params={"HTTP_X_BIG": "b" * 200_000})
        out, end = conn.answer(1)
        assert end is not None and status_of(out) == 431
        conn.send(2, "/ok", params={"HTTP_X_MANY": "m"})
        out, end = conn.answer(2)
        assert end is not None and status_of(out) == 200 and out.endswith(b"ok")
    finally:
        conn.close()


@pytest.mark.parametrize("command", ["fastcgi", "scgi"])
def test_slowloris_head_holds_no_thread(command: str, tmp_path: Path) -> None:
    """A request head trickling in a byte every 0.3 s: the connection is dropped once the head
    is overdue (half of --timeout here), and neither the worker (no --timeout kill) nor the
    request queued behind it on the only thread is lost. Before the fix the arbiter killed the
    worker and the queued request was reset."""
    argv = [sys.executable, "-m", "wsgigate", command, APP, "--bind", "127.0.0.1:0"]
    argv += ["--workers", "1", "--threads", "1", "--timeout", "4"]
    if command == "fastcgi":
        client = FastCGIClientConnection()
        client.begin_request(1)
        client.params(1, http_params("GET", "/ok"))
        wire = client.data_to_send()
    else:
        wire = encode_request({"REQUEST_METHOD": "GET", "REQUEST_URI": "/ok"})
    with live_server(argv, tmp_path) as server:
        ask = _ask_fastcgi_pid if command == "fastcgi" else _ask_scgi_pid
        pid = ask(server)
        slow = server.connect(timeout=20)
        dropped: list[float] = []
        started = time.monotonic()

        def drip() -> None:
            for byte in wire:
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.3)
            with contextlib.suppress(OSError):
                if slow.recv(1) == b"":
                    dropped.append(time.monotonic() - started)

        dripper = threading.Thread(target=drip)
        dripper.start()
        time.sleep(0.5)
        try:
            assert ask(server) == pid, server.text()[-2000:]  # queued behind the slow head
        finally:
            dripper.join(30)
            slow.close()
        assert dropped and dropped[0] < 4, (dropped, server.text()[-2000:])
        assert "killing it" not in server.text()
        assert "request head not complete after 2s" in server.text()


def _ask_fastcgi_pid(server: LiveServer) -> bytes:
    return one(server, "/pid").partition(b"\r\n\r\n")[2]


def _ask_scgi_pid(server: LiveServer) -> bytes:
    meta = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/pid", "SERVER_NAME": "x"}
    with server.connect(10) as sock:
        sock.sendall(encode_request(meta))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return _split_cgi(data)[2]


# -- processes die: SIGKILL, SIGTERM -----------------------------------------------------------


def test_sigkill_mid_request_behind_nginx(tmp_path: Path) -> None:
    """Two workers of one thread behind nginx; the worker running a slow request is killed:
    that request gets nginx's 502, the load running meanwhile on the other worker loses
    nothing, and the killed worker is respawned."""
    marks = tmp_path / "marks"
    marks.mkdir()
    address = f"127.0.0.1:{free_port()}"
    args = ("--bind", address, "--workers", "2", "--threads", "1")
    with (
        fastcgi(tmp_path, *args, marks=marks) as app,
        servers.nginx(DEPLOY / "nginx" / "fastcgi.conf", values={"BACKEND": address}) as web,
    ):
        app.wait_for(r"booted worker \d+(?:.*\n)+.*booted worker \d+")
        victim: list[Any] = []
        slow = threading.Thread(
            target=lambda: victim.append(web.request("GET", "/sleep?5-victim", timeout=20))
        )
        slow.start()
        deadline = time.monotonic() + 10
        while not _lines(marks / "started") and time.monotonic() < deadline:
            time.sleep(0.02)
        victim_pid = int(_lines(marks / "started")[0].split()[0])
        failures: list[str] = []
        count = [0]
        done = threading.Event()

        def load() -> None:
            while not done.is_set():
                try:
                    response = web.request("GET", "/pid", timeout=10)
                    if response.status != 200 or int(response.body) == victim_pid:
                        failures.append(f"{response.status} {response.body[:80]!r}")
                    count[0] += 1
                except Exception as exc:  # pragma: no cover - reported below
                    failures.append(repr(exc))

        loaders = [threading.Thread(target=load) for _ in range(3)]
        for thread in loaders:
            thread.start()
        time.sleep(0.3)
        os.kill(victim_pid, signal.SIGKILL)
        app.wait_for(rf"worker {victim_pid} killed by SIGKILL; starting a new one")
        time.sleep(0.5)
        done.set()
        for thread in loaders:
            thread.join(15)
        slow.join(20)
        assert not failures, failures[:5]
        assert count[0] > 10
        assert victim and victim[0].status == 502
        # the respawned worker serves too
        pids = {web.request("GET", "/pid").body for _ in range(20)}
        assert str(victim_pid).encode() not in pids


def test_sigterm_under_load_answers_every_accepted_request(tmp_path: Path) -> None:
    """Clients keep sending requests of 50 ms while the server gets SIGTERM: every request the
    app started is answered completely; later connections are refused, never cut."""
    marks = tmp_path / "marks"
    marks.mkdir()
    with fastcgi(tmp_path, "--workers", "2", "--threads", "2", marks=marks) as server:
        server.wait_for(r"booted worker \d+(?:.*\n)+.*booted worker \d+")
        answered: set[str] = set()
        cut: list[str] = []
        refused = [0]
        lock = threading.Lock()
        stop = threading.Event()

        def client(index: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                tag = f"0.05-{index}-{n}"
                try:
                    conn = FCGI(server, timeout=10)
                except OSError:
                    with lock:
                        refused[0] += 1
                    time.sleep(0.02)
                    continue
                try:
                    conn.send(1, "/sleep", keep=False, params={"QUERY_STRING": tag})
                    out, end = conn.answer(1)
                    with lock:
                        if end is not None and f"slept {tag} in".encode() in out:
                            answered.add(tag)
                        elif out:
                            cut.append(tag)
                except OSError:
                    pass  # reset before the server read it: it was never accepted
                finally:
                    conn.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        server.signal(signal.SIGTERM)
        assert server.proc.wait(30) == 0
        stop.set()
        for thread in threads:
            thread.join(15)
        started = {line.split()[1] for line in _lines(marks / "started")}
        assert len(started) > 20
        assert not cut, cut
        assert started <= answered, sorted(started - answered)[:10]


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


# -- request smuggling: CONTENT_LENGTH never read past -----------------------------------------


def test_fastcgi_input_stops_at_content_length_and_the_next_request_is_intact(
    fcgi_server: LiveServer,
) -> None:
    """STDIN longer than CONTENT_LENGTH carries a second "request": the app gets exactly
    CONTENT_LENGTH bytes, and the next request on the kept connection is the real next one."""
    smuggled = b"hello" + encode_request({"REQUEST_URI": "/smuggled"}) + b"GET /x HTTP/1.1\r\n\r\n"
    conn = FCGI(fcgi_server)
    try:
        conn.send(1, "/echo", smuggled, params={"CONTENT_LENGTH": "5"})
        out, end = conn.answer(1)
        assert end is not None and out.partition(b"\r\n\r\n")[2] == b"hello"
        conn.send(2, "/echo", b"second", params={"CONTENT_LENGTH": "6"})
        out, end = conn.answer(2)
        assert end is not None and out.partition(b"\r\n\r\n")[2] == b"second"
        conn.send(3, "/ok")
        assert conn.answer(3)[0].endswith(b"ok")
    finally:
        conn.close()
    # CONTENT_LENGTH larger than the STDIN stream: the app's read ends where STDIN ends, the
    # request is given up as a client that left (the connection is closed), nothing waits.
    conn = FCGI(fcgi_server)
    try:
        conn.send(1, "/echo", b"short", params={"CONTENT_LENGTH": "50"})
        out, end = conn.answer(1, timeout=5)
        assert end is None and out == b""
    finally:
        conn.close()
    assert status_of(one(fcgi_server, "/ok")) == 200


def test_scgi_input_stops_at_content_length(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "wsgigate", "scgi", APP, "--bind", "127.0.0.1:0"]
    with live_server([*argv, "--workers", "0"], tmp_path) as server:
        meta = {"REQUEST_METHOD": "POST", "REQUEST_URI": "/echo", "SERVER_NAME": "x"}
        meta.update(SERVER_PORT="80", SERVER_PROTOCOL="HTTP/1.1")
        wire = encode_request(meta, b"hello")
        with server.connect(10) as sock:
            sock.sendall(wire + encode_request({**meta, "REQUEST_URI": "/smuggled"}, b"evil"))
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert _split_cgi(data)[0] == 200 and _split_cgi(data)[2] == b"hello"
        assert "/smuggled" not in server.text()


# -- unix sockets: the mode asked for ---------------------------------------------------------


@pytest.mark.parametrize("command", ["fastcgi", "scgi"])
@pytest.mark.parametrize(
    ("spec", "args", "mode"), [(",600", (), 0o600), ("", ("--socket-mode", "660"), 0o660)]
)
def test_unix_socket_created_with_the_requested_mode(
    command: str, spec: str, args: tuple[str, ...], mode: int, tmp_path: Path
) -> None:
    path = tmp_path / f"{command}.sock"
    argv = [sys.executable, "-m", "wsgigate", command, APP, "--bind", f"unix:{path}{spec}"]
    with live_server([*argv, "--workers", "0", *args], tmp_path):
        assert path.stat().st_mode & 0o777 == mode


def test_asgi_client_leaves_mid_upload_under_uvicorn(tmp_path: Path) -> None:
    """Clients that send half a body and leave: each app read fails, its pool thread is free
    again (the requests that follow are served at once) and nothing is logged as a traceback."""
    require_binary("uvicorn")
    port = free_port()
    argv = [sys.executable, "-m", "wsgigate", "asgi", APP, "--bind", f"127.0.0.1:{port}"]
    with live_server([*argv, "--threads", "2"], tmp_path, wait=False) as server:
        wait_for_port(port, process=server.proc)  # type: ignore[arg-type]
        for _ in range(6):  # three times the pool
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(
                    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
                    + b"x" * 1000
                )
                time.sleep(0.05)
        started = time.monotonic()
        for _ in range(4):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("POST", "/echo", body=b"after")
                reply = conn.getresponse()
                assert (reply.status, reply.read()) == (200, b"after")
            finally:
                conn.close()
        assert time.monotonic() - started < 3
        assert "Traceback" not in server.text(), server.text()[-3000:]


def test_slow_body_is_bounded_by_request_timeout(tmp_path: Path) -> None:
    """A body trickling in (R.U.D.Y.) keeps the app in wsgi.input.read(): the head deadline
    does not apply (a slow upload may be legitimate). Without --request-timeout the worker is
    killed after --timeout with what is queued behind it (docs/reliability.md); with it, only
    that request fails and the one queued behind it on the only thread is answered."""
    argv = ("--workers", "1", "--threads", "1", "--timeout", "6", "--request-timeout", "1")
    with fastcgi(tmp_path, *argv) as server:
        pid = _ask_fastcgi_pid(server)
        conn = FCGI(server, timeout=30)
        conn.send(1, "/echo", params={"CONTENT_LENGTH": "100"}, end_stdin=False)
        stop = threading.Event()

        def drip() -> None:
            while not stop.is_set():
                try:
                    conn.client.stdin(1, b"x")
                    conn.sock.sendall(conn.client.data_to_send())
                except OSError:
                    return
                time.sleep(0.3)

        dripper = threading.Thread(target=drip)
        dripper.start()
        try:
            time.sleep(0.3)
            assert _ask_fastcgi_pid(server) == pid  # same worker, not killed
        finally:
            stop.set()
            dripper.join(10)
            conn.close()
        assert "killing it" not in server.text()
        assert "request timeout (--request-timeout 1)" in server.text()
