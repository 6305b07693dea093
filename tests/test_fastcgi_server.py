"""The FastCGI server, live: `wsgigate fastcgi` in a subprocess, spoken to with the codec.

Raw records come from :class:`FastCGIClientConnection` (the same codec the server uses, client
side), so these tests can send what real web servers send: params split over 8 KiB records,
chunked uploads without CONTENT_LENGTH, ABORT_REQUEST, kept connections, garbage.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.test_server_runtime import LiveServer, live_server
from wsgigate.fastcgi.client import http_params, request
from wsgigate.fastcgi.server import fix_script_name
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols.fastcgi import (
    OVERLOADED,
    REQUEST_COMPLETE,
    STDIN,
    EndRequest,
    FastCGIClientConnection,
    GetValuesResult,
    Stdout,
)

APP = textwrap.dedent(
    '''
    import json, os, time

    MARKS = os.environ["FCGI_TEST_MARKS"]

    def mark(name):
        with open(os.path.join(MARKS, name), "a") as f:
            f.write(str(os.getpid()) + "\\n")

    class Slow:
        """Streams a chunk every 50 ms for a long time; records close()."""
        def __init__(self, name):
            self.name = name
        def __iter__(self):
            for i in range(200):
                yield b"x" * 100
                time.sleep(0.05)
        def close(self):
            mark(self.name)

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/env":
            keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "REQUEST_METHOD",
                    "CONTENT_LENGTH", "HTTP_X_BIG", "FCGI_ROLE", "wsgi.multithread",
                    "wsgi.multiprocess")
            body = json.dumps({k: environ.get(k) for k in keys}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        if path == "/echo":
            body = environ["wsgi.input"].read()
            start_response("200 OK", [("Content-Type", "application/octet-stream")])
            return [body]
        if path == "/first5":
            first = environ["wsgi.input"].read(5)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"got " + first]
        if path == "/big":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"a" * 200000]
        if path == "/empty":
            start_response("204 No Content", [])
            return []
        if path == "/slow":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return Slow(environ.get("QUERY_STRING") or "slow")
        if path == "/sleep":
            time.sleep(float(environ.get("QUERY_STRING") or 1))
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"slept"]
        if path == "/echo-count":
            stream = environ["wsgi.input"]
            total = 0
            while chunk := stream.read(1 << 20):
                total += len(chunk)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(total).encode()]
        if path == "/filter":
            data = environ["wsgigate.fastcgi.data"].read()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [data.upper()]
        if path == "/boom":
            raise RuntimeError("boom")
        if path == "/pid":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(os.getpid()).encode()]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello"]
    '''
)


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    path = tmp_path / "fcgiapp.py"
    path.write_text(APP)
    (tmp_path / "marks").mkdir()
    return path


def fastcgi_server(
    app_file: Path, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> object:
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", f"{app_file}:app", *args]
    if "--bind" not in args:
        argv += ["--bind", "127.0.0.1:0"]
    return live_server(
        argv, tmp_path, env={"FCGI_TEST_MARKS": str(tmp_path / "marks"), **(env or {})}
    )


def get(server: LiveServer, target: str = "/", body: bytes = b"", **kw: object) -> object:
    method = "POST" if body else "GET"
    return request(server.address, http_params(method, target, body=body), body, timeout=10, **kw)  # type: ignore[arg-type]


class Raw:
    """A FastCGI connection driven record by record."""

    def __init__(self, server: LiveServer, record_size: int = 65535) -> None:
        self.sock = server.connect(timeout=10)
        self.client = FastCGIClientConnection(record_size=record_size)

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def flush(self) -> None:
        self.sock.sendall(self.client.data_to_send())

    def begin(
        self,
        rid: int,
        target: str,
        *,
        keep: bool,
        method: str = "GET",
        params: dict[str, str] | None = None,
        role: int = 1,
    ) -> None:
        self.client.begin_request(rid, role, keep_conn=keep)
        p = http_params(method, target)
        p.update(params or {})
        self.client.params(rid, p)
        self.flush()

    def events(self, until_end: int | None = None, timeout: float = 10) -> list[object]:
        """Read events until END_REQUEST of ``until_end`` (or the connection closes)."""
        out: list[object] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            event = self.client.next_event()
            if event is NEED_DATA:
                self.client.receive_data(self.sock.recv(65536))
                continue
            out.append(event)
            if isinstance(event, ConnectionClosed):
                return out
            if isinstance(event, EndRequest) and event.request_id == until_end:
                return out
        raise AssertionError(f"timeout; got {out!r}")

    def first_stdout(self) -> Stdout:
        while True:
            event = self.client.next_event()
            if event is NEED_DATA:
                self.client.receive_data(self.sock.recv(65536))
            elif isinstance(event, Stdout):
                return event

    def closed_by_peer(self, timeout: float = 5.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def stdout_of(events: list[object]) -> bytes:
    return b"".join(e.data for e in events if isinstance(e, Stdout))


# -- fix_script_name (the front-end quirk, one named function) ---------------------------------


def test_fix_script_name_stock_nginx_params_mounted_at_root() -> None:
    meta = {"SCRIPT_NAME": "/a/b", "REQUEST_URI": "/a/b?x=1"}
    fix_script_name(meta)
    assert (meta["SCRIPT_NAME"], meta["PATH_INFO"]) == ("", "/a/b")


def test_fix_script_name_trusts_a_split_path() -> None:
    meta = {"SCRIPT_NAME": "/app", "PATH_INFO": "/x"}
    fix_script_name(meta)
    assert (meta["SCRIPT_NAME"], meta["PATH_INFO"]) == ("/app", "/x")


def test_fix_script_name_sub_path_mount() -> None:
    for script, info, expected in [
        ("/app/x/y", "", ("/app", "/x/y")),
        ("/app", "", ("/app", "")),
        ("/app", "/x", ("/app", "/x")),
        ("/application", "", ("", "/application")),  # not under /app
    ]:
        meta = {"SCRIPT_NAME": script, "PATH_INFO": info}
        fix_script_name(meta, "/app/")
        assert (meta["SCRIPT_NAME"], meta["PATH_INFO"]) == expected, (script, info)


def test_fix_script_name_root_mount_rejoins_a_lighttpd_split() -> None:
    """lighttpd without fix-root-scriptname splits / mounts at the first path segment."""
    meta = {"SCRIPT_NAME": "/caf\xc3\xa9", "PATH_INFO": "/x"}
    fix_script_name(meta, "/")
    assert (meta["SCRIPT_NAME"], meta["PATH_INFO"]) == ("", "/caf\xc3\xa9/x")


def test_fix_script_name_falls_back_to_request_uri() -> None:
    meta = {"REQUEST_URI": "/caf%C3%A9?q=1"}
    fix_script_name(meta)
    assert meta["PATH_INFO"] == "/caf\xc3\xa9" and meta["SCRIPT_NAME"] == ""


# -- live ------------------------------------------------------------------------------------


def test_requests_environ_and_access_log(app_file: Path, tmp_path: Path) -> None:
    with fastcgi_server(app_file, tmp_path, "--workers", "2", "--threads", "2") as server:
        response = get(server, "/")
        assert (response.status, response.body) == (200, b"hello")
        # Stock nginx params: SCRIPT_NAME is the whole path, there is no PATH_INFO.
        params = http_params("GET", "/env?a=1&a=2")
        params["SCRIPT_NAME"], params["PATH_INFO"] = "/env", ""
        env = json.loads(request(server.address, params, timeout=10).body)
        assert env["SCRIPT_NAME"] == "" and env["PATH_INFO"] == "/env"
        assert env["QUERY_STRING"] == "a=1&a=2" and env["FCGI_ROLE"] == "RESPONDER"
        assert env["wsgi.multithread"] is True and env["wsgi.multiprocess"] is True
        echo = get(server, "/echo", b"x" * 300000)
        assert echo.body == b"x" * 300000
        assert get(server, "/boom").status == 500
        assert get(server, "/").status == 200  # still serving after the app raised
        server.stop()
    text = server.text()
    assert '"GET / HTTP/1.1" 200 5 "-" "-"' in text
    assert '"POST /echo HTTP/1.1" 200 300000' in text
    assert "application raised" in text


def test_script_name_option(app_file: Path, tmp_path: Path) -> None:
    with fastcgi_server(app_file, tmp_path, "--script-name", "/app", "--workers", "0") as server:
        params = http_params("GET", "/app/env")
        params["SCRIPT_NAME"], params["PATH_INFO"] = "/app/env", ""
        env = json.loads(request(server.address, params, timeout=10).body)
        assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/app", "/env")


def test_params_split_over_8k_records(app_file: Path, tmp_path: Path) -> None:
    """cgi-fcgi writes 8 KiB records; flup truncates a 20,000-byte header to 8,064 bytes."""
    with fastcgi_server(app_file, tmp_path, "--workers", "0") as server:
        params = http_params("GET", "/env", [("X-Big", "v" * 20000)])
        env = json.loads(request(server.address, params, timeout=10, record_size=8192).body)
        assert env["HTTP_X_BIG"] == "v" * 20000


def test_chunked_upload_without_content_length_is_streamed(app_file: Path, tmp_path: Path) -> None:
    """nginx fastcgi_request_buffering off: no CONTENT_LENGTH, the body ends with empty STDIN."""
    with fastcgi_server(app_file, tmp_path, "--workers", "0") as server, Raw(server) as raw:
        raw.begin(1, "/first5", keep=True, method="POST", params={"CONTENT_LENGTH": ""})
        raw.client.stdin(1, b"hello")
        raw.flush()
        # The app answers from the first 5 bytes while the rest of the body is still to come.
        events = raw.events(until_end=1)
        assert stdout_of(events).endswith(b"got hello")
        # The rest of request 1's body arrives after its END_REQUEST (the client codec
        # has closed request 1, so the records are written raw).
        raw.client.raw_record(STDIN, 1, b" world" * 1000)
        raw.client.raw_record(STDIN, 1, b"")
        raw.flush()
        # The unread rest is dropped; the kept connection serves the next request.
        raw.begin(2, "/echo", keep=True, method="POST", params={"CONTENT_LENGTH": ""})
        raw.client.stdin(2, b"part1,")
        raw.flush()
        time.sleep(0.1)
        raw.client.stdin(2, b"part2")
        raw.client.end_stdin(2)
        raw.flush()
        events = raw.events(until_end=2)
        assert stdout_of(events).endswith(b"\r\n\r\npart1,part2")
        end = events[-1]
        assert isinstance(end, EndRequest) and end.protocol_status == REQUEST_COMPLETE


def test_keep_conn_and_close(app_file: Path, tmp_path: Path) -> None:
    with fastcgi_server(app_file, tmp_path, "--workers", "1") as server:
        with Raw(server) as raw:
            pids = set()
            for rid in (1, 2, 3):
                raw.begin(rid, "/pid", keep=True)
                raw.client.end_stdin(rid)
                raw.flush()
                pids.add(stdout_of(raw.events(until_end=rid)).split(b"\r\n\r\n")[1])
            assert len(pids) == 1 and pids.pop().isdigit()
            raw.sock.settimeout(0.3)
            with pytest.raises(TimeoutError):
                raw.sock.recv(1)  # still open
        with Raw(server) as raw:
            raw.begin(1, "/", keep=False)
            raw.client.end_stdin(1)
            raw.flush()
            assert stdout_of(raw.events(until_end=1)).endswith(b"hello")
            assert raw.closed_by_peer()


def test_response_records_coalesced_split_and_empty(app_file: Path, tmp_path: Path) -> None:
    with fastcgi_server(app_file, tmp_path, "--workers", "0") as server, Raw(server) as raw:
        raw.begin(1, "/big", keep=True)
        raw.client.end_stdin(1)
        raw.flush()
        events = raw.events(until_end=1)
        chunks = [e.data for e in events if isinstance(e, Stdout)]
        assert chunks[0].startswith(b"Status: 200 OK\r\n") and b"\r\n\r\naaa" in chunks[0]
        assert max(len(c) for c in chunks) <= 65535 and len(chunks) >= 4
        assert b"".join(chunks).endswith(b"a" * 200000)
        raw.begin(2, "/empty", keep=True)
        raw.client.end_stdin(2)
        raw.flush()
        events = raw.events(until_end=2)
        assert stdout_of(events).startswith(b"Status: 204 No Content\r\n")
        assert isinstance(events[-1], EndRequest)


def test_abort_request_closes_the_app_iterator(app_file: Path, tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    with fastcgi_server(app_file, tmp_path, "--workers", "0") as server, Raw(server) as raw:
        raw.begin(1, "/slow?aborted", keep=True)
        raw.client.end_stdin(1)
        raw.flush()
        raw.first_stdout()  # the response has started
        raw.client.abort_request(1)
        raw.flush()
        events = raw.events(until_end=1, timeout=5)
        assert isinstance(events[-1], EndRequest)
        assert (marks / "aborted").exists()
        raw.begin(2, "/", keep=True)
        raw.client.end_stdin(2)
        raw.flush()
        assert stdout_of(raw.events(until_end=2)).endswith(b"hello")


def test_broken_peer_closes_the_iterator_and_worker_keeps_serving(
    app_file: Path, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    with fastcgi_server(app_file, tmp_path, "--workers", "1", "--threads", "1") as server:
        before = get(server, "/pid").body
        with Raw(server) as raw:
            raw.begin(1, "/slow?gone", keep=False)
            raw.client.end_stdin(1)
            raw.flush()
            raw.first_stdout()
        deadline = time.monotonic() + 5
        while not (marks / "gone").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (marks / "gone").exists()
        assert get(server, "/pid").body == before  # same worker, still serving


def test_malformed_records_close_only_that_connection(app_file: Path, tmp_path: Path) -> None:
    with fastcgi_server(app_file, tmp_path, "--workers", "0") as server:
        with server.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # HTTP to a FastCGI port
            sock.settimeout(5)
            assert sock.recv(100) == b""
        assert get(server, "/").body == b"hello"
        server.wait_for(r"closing the connection from 127\.0\.0\.1: record with FastCGI version")


def test_get_values(app_file: Path, tmp_path: Path) -> None:
    with fastcgi_server(app_file, tmp_path, "--workers", "2", "--threads", "3") as server:
        with Raw(server) as raw:
            raw.client.get_values(["FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"])
            raw.flush()
            event = _first_values(raw)
        assert event.values[b"FCGI_MAX_CONNS"] == b"6"
        assert event.values[b"FCGI_MPXS_CONNS"] == b"0"


def _first_values(raw: Raw) -> GetValuesResult:
    while True:
        event = raw.client.next_event()
        if event is NEED_DATA:
            raw.client.receive_data(raw.sock.recv(65536))
            continue
        assert isinstance(event, GetValuesResult), event
        return event


def test_full_pool_answers_overloaded(app_file: Path, tmp_path: Path) -> None:
    args = ("--workers", "1", "--threads", "1", "--queue", "1")
    with fastcgi_server(app_file, tmp_path, *args) as server:
        server.wait_for("booted worker")
        with Raw(server) as busy:
            busy.begin(1, "/sleep?1.5", keep=False)
            busy.client.end_stdin(1)
            busy.flush()
            time.sleep(0.4)
            with Raw(server) as queued:
                queued.begin(1, "/", keep=False)
                queued.client.end_stdin(1)
                queued.flush()
                time.sleep(0.4)
                refused = get(server, "/")
                assert refused.protocol_status == OVERLOADED
                assert refused.status == 503
                assert stdout_of(busy.events(until_end=1)).endswith(b"slept")
                assert stdout_of(queued.events(until_end=1)).endswith(b"hello")


def test_sigterm_finishes_the_request_in_flight(app_file: Path, tmp_path: Path) -> None:
    with fastcgi_server(app_file, tmp_path, "--workers", "2") as server:
        server.wait_for("booted worker")
        with Raw(server) as raw:
            raw.begin(1, "/sleep?0.8", keep=False)
            raw.client.end_stdin(1)
            raw.flush()
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            assert stdout_of(raw.events(until_end=1)).endswith(b"slept")
        assert server.proc.wait(5) == 0


@pytest.mark.parametrize("bind", ["tcp", "unix"])
@pytest.mark.parametrize("threads", ["0", "2"])
def test_sigterm_with_keep_conn_closes_with_the_answer(
    app_file: Path, tmp_path: Path, threads: str, bind: str
) -> None:
    """A stopping worker must not close a kept connection the web server may reuse that very
    instant (nginx answers a POST on it with 502). The answer in flight leaves with the end of
    stream; an idle kept connection still serves a request sent just after the stop began.
    Requests are sent as nginx sends them: BEGIN_REQUEST, PARAMS and the empty STDIN in one
    write."""

    def send(raw: Raw, rid: int, target: str) -> None:
        raw.client.begin_request(rid, 1, keep_conn=True)
        raw.client.params(rid, http_params("GET", target))
        raw.client.end_stdin(rid)
        raw.flush()

    address = "127.0.0.1:0" if bind == "tcp" else f"unix:{tmp_path / 'fcgi.sock'}"
    argv = ("--workers", "0", "--threads", threads, "--bind", address)
    with fastcgi_server(app_file, tmp_path, *argv) as server:
        with Raw(server) as idle:
            send(idle, 1, "/")
            assert stdout_of(idle.events(until_end=1)).endswith(b"hello")
            with Raw(server) as busy:
                send(busy, 1, "/sleep?0.8")
                time.sleep(0.05)
                server.signal(signal.SIGTERM)
                time.sleep(0.05)
                send(idle, 2, "/pid")  # the web server reuses it as the stop begins
                events = idle.events(until_end=2)
                assert stdout_of(events).split(b"\r\n\r\n")[1].isdigit()
                assert idle.closed_by_peer(timeout=2)
                events = busy.events(until_end=1)
                assert stdout_of(events).endswith(b"slept")
                # The end of stream came with END_REQUEST, not 0.25 s later (when a rested
                # connection is closed). Over TCP it is in the same segment: nothing to wait
                # for. A unix socket has no such thing: a record follows END_REQUEST in the
                # same write (nginx then closes the connection instead of pooling it), then
                # the end of stream.
                if bind == "tcp":
                    busy.sock.settimeout(0.0)
                    assert busy.sock.recv(1) == b""
                else:
                    busy.sock.settimeout(0.1)
                    events = busy.events(timeout=1)
                    assert [type(e).__name__ for e in events] == ["UnknownType", "ConnectionClosed"]
        assert server.proc.wait(5) == 0


def test_unix_socket_and_serve_from_python(app_file: Path, tmp_path: Path) -> None:
    sock_path = tmp_path / "fcgi.sock"
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from fcgiapp import app; "
        "from wsgigate.fastcgi import serve; "
        "serve(app, bind='unix:' + sys.argv[2], workers=0, threads=2, socket_mode=0o660)"
    )
    argv = [sys.executable, "-c", code, str(app_file.parent), str(sock_path)]
    env = {"FCGI_TEST_MARKS": str(tmp_path / "marks")}
    with live_server(argv, tmp_path, env=env) as server:
        assert server.address == f"unix:{sock_path}"
        assert sock_path.stat().st_mode & 0o777 == 0o660
        assert request(server.address, http_params("GET", "/"), timeout=10).body == b"hello"
        assert server.stop() == 0
    assert not sock_path.exists()


def test_inherited_fd0_as_mod_fcgid_starts_it(app_file: Path, tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX)
    path = tmp_path / "fcgid.sock"
    listener.bind(str(path))
    listener.listen()
    argv = [sys.executable, "-m", "wsgigate", "run", f"{app_file}:app"]
    env = {"FCGI_TEST_MARKS": str(tmp_path / "marks")}
    with listener, live_server(argv, tmp_path, env=env, stdin=listener) as server:
        assert server.address == f"unix:{path}"
        assert request(server.address, http_params("GET", "/"), timeout=10).body == b"hello"
    assert path.exists()  # not ours to remove: the spawner owns it
    os.unlink(path)


def test_check_probe_runs_the_real_handler() -> None:
    from tests.support import EXAMPLES
    from wsgigate.check import ProbeRequest, check
    from wsgigate.loader import load_app

    hello = load_app(f"{EXAMPLES / 'hello.py'}:app")
    for request_ in (
        ProbeRequest("GET", "/caf\xc3\xa9", "a=1&a=", [("X-Big", "v" * 20000)]),
        ProbeRequest("POST", "/echo", "", [("Content-Type", "text/plain")], b"x" * 100000),
    ):
        rows = {row.gateway: row for row in check(hello, request_)}
        assert rows["fastcgi"].ok, (rows["fastcgi"].status, rows["fastcgi"].reason)
        assert rows["fastcgi"].status == "200 OK"


def test_filter_and_authorizer_roles(app_file: Path, tmp_path: Path) -> None:
    with fastcgi_server(app_file, tmp_path, "--workers", "0") as server, Raw(server) as raw:
        raw.begin(1, "/filter", keep=True, role=3, params={"FCGI_DATA_LENGTH": "11"})
        raw.client.end_stdin(1)
        raw.client.data(1, b"hello ")
        raw.client.data(1, b"world")
        raw.client.end_data(1)
        raw.flush()
        assert stdout_of(raw.events(until_end=1)).endswith(b"\r\n\r\nHELLO WORLD")
        raw.begin(2, "/env", keep=True, role=2)
        raw.client.end_stdin(2)
        raw.flush()
        env = json.loads(stdout_of(raw.events(until_end=2)).partition(b"\r\n\r\n")[2])
        assert env["FCGI_ROLE"] == "AUTHORIZER"


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.parametrize("with_length", [True, False])
def test_large_upload_memory_stays_flat(app_file: Path, tmp_path: Path, with_length: bool) -> None:
    """1 GiB through wsgi.input, with and without CONTENT_LENGTH: peak RSS grows < 32 MiB."""
    size = 1 << 30
    with fastcgi_server(app_file, tmp_path, "--workers", "0") as server, Raw(server) as raw:
        raw.begin(1, "/", keep=True)
        raw.client.end_stdin(1)
        raw.flush()
        raw.events(until_end=1)  # warm up: the app and the code paths are loaded
        before = _rss_kib(server.proc.pid, "VmRSS")
        length = {"CONTENT_LENGTH": str(size) if with_length else ""}
        raw.begin(2, "/echo-count", keep=True, method="POST", params=length)
        chunk = b"x" * 65535
        sent = 0
        while sent < size:
            part = chunk[: size - sent]
            raw.client.stdin(2, part)
            raw.sock.sendall(raw.client.data_to_send())
            sent += len(part)
        raw.client.end_stdin(2)
        raw.flush()
        body = stdout_of(raw.events(until_end=2, timeout=120)).partition(b"\r\n\r\n")[2]
        assert body == str(size).encode()
        peak = _rss_kib(server.proc.pid, "VmHWM")
        assert peak - before < 32 * 1024, (before, peak)


def test_unread_stdin_without_keep_conn_is_drained_not_reset(
    app_file: Path, tmp_path: Path
) -> None:
    """mod_proxy_fcgi keeps sending the body after END_REQUEST: closing early means resets."""
    size = 4_000_000
    with fastcgi_server(app_file, tmp_path, "--workers", "0") as server, Raw(server) as raw:
        raw.begin(1, "/", keep=False, method="POST", params={"CONTENT_LENGTH": str(size)})
        raw.client.stdin(1, b"y" * 65535)
        raw.flush()
        events = raw.events(until_end=1)  # answered without reading the body
        assert stdout_of(events).endswith(b"hello")
        time.sleep(0.2)
        sent = 65535
        while sent < size:  # the rest of the body, written raw: request 1 has ended for the codec
            part = min(65535, size - sent)
            raw.client.raw_record(STDIN, 1, b"y" * part)
            raw.sock.sendall(raw.client.data_to_send())  # must not fail with a reset
            sent += part
        raw.client.raw_record(STDIN, 1, b"")
        raw.flush()
        raw.sock.settimeout(5)
        assert raw.sock.recv(1) == b""  # a clean FIN, not ECONNRESET


def test_ipv6_loopback_bind(app_file: Path, tmp_path: Path) -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    with fastcgi_server(app_file, tmp_path, "--bind", "[::1]:0", "--workers", "0") as server:
        assert server.address.startswith("[::1]:")
        assert get(server, "/").body == b"hello"
        host, _, port = server.address.rpartition(":")
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5) as sock:
            assert sock.family == socket.AF_INET6


def test_socket_owner_and_access_log_format(app_file: Path, tmp_path: Path) -> None:
    import pwd

    sock_path = tmp_path / "owned.sock"
    args = ["--bind", f"unix:{sock_path}", "--workers", "0", "--socket-mode", "660"]
    args += ["--access-logformat", "ACCESS %(m)s %(U)s %(q)s %(s)s %(B)s %({x-trace}i)s %(D)s"]
    owner = None
    if os.geteuid() == 0:
        owner = pwd.getpwnam("nobody")
        args += ["--socket-owner", f"{owner.pw_name}:{owner.pw_gid}"]
    with fastcgi_server(app_file, tmp_path, *args) as server:
        info = sock_path.stat()
        assert info.st_mode & 0o777 == 0o660
        if owner is not None:
            assert (info.st_uid, info.st_gid) == (owner.pw_uid, owner.pw_gid)
        response = request(
            server.address, http_params("GET", "/env?a=1", [("X-Trace", "t-42")]), timeout=10
        )
        assert response.status == 200
        server.wait_for(r"ACCESS GET /env a=1 200 \d+ t-42 \d+")


def test_max_requests_jitter_spreads_the_limit() -> None:
    from wsgigate.server import ConnectionHandler, ServerConfig, Worker

    config = ServerConfig(workers=2, max_requests=100, max_requests_jitter=50)
    limits = {Worker([], ConnectionHandler(), config).max_requests for _ in range(40)}
    assert min(limits) >= 100 and max(limits) <= 150
    assert len(limits) > 5  # drawn per worker, so workers do not all recycle at once


def test_stalled_upload_is_cut_off_by_the_io_timeout(app_file: Path, tmp_path: Path) -> None:
    """--timeout is the socket's I/O timeout (SO_RCVTIMEO, inherited from the listener): a web
    server that stops sending in the middle of a body frees the thread after about that long
    (the app's read fails: 500, then close, as with the settimeout() it replaced), and the
    worker (its other thread idle, so no hung-worker kill) keeps serving."""
    args = ("--workers", "1", "--threads", "2", "--timeout", "2")
    with fastcgi_server(app_file, tmp_path, *args) as server:
        pid = get(server, "/pid").body  # type: ignore[attr-defined]
        with Raw(server) as raw:
            raw.begin(1, "/echo", keep=False, method="POST", params={"CONTENT_LENGTH": "10"})
            raw.client.stdin(1, b"ab")  # 2 of 10 bytes, then nothing
            raw.flush()
            started = time.monotonic()
            events = raw.events(timeout=10)  # until the server closes the connection
            waited = time.monotonic() - started
        assert isinstance(events[-1], ConnectionClosed)
        # the app's read failed after --timeout: a 500, then the connection closes
        assert stdout_of(events).startswith(b"Status: 500"), events
        assert 1.5 < waited < 7, waited
        assert get(server, "/pid").body == pid  # type: ignore[attr-defined]
        # what the app's read raised: the TimeoutError of a timed-out read, said plainly
        assert "TimeoutError: the web server sent no more of the request body" in server.text()
