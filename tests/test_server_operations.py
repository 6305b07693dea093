"""Operations on the shared runtime, live through `wsgigate fastcgi`: the status page (JSON and
OpenMetrics, read back with prometheus_client's parser), the ping path, the separate status bind,
the slow-request log with the thread's stack, and --request-timeout."""

from __future__ import annotations

import http.client
import json
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.test_server_runtime import LiveServer, live_server
from wsgigate.fastcgi.client import http_params, request

APP = textwrap.dedent(
    """
    import time

    def busy_loop(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/sleep":
            time.sleep(float(environ["QUERY_STRING"]))
        elif path == "/spin":
            busy_loop(float(environ["QUERY_STRING"]))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app " + path.encode()]
    """
)


def server(tmp_path: Path, *args: str) -> Any:
    app = tmp_path / "opsapp.py"
    app.write_text(APP)
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", f"{app}:app", "--bind", "127.0.0.1:0"]
    return live_server([*argv, *args], tmp_path)


def get(live: LiveServer, target: str, headers: list[tuple[str, str]] | None = None) -> Any:
    return request(live.address, http_params("GET", target, headers or []), timeout=10)


def status(live: LiveServer) -> dict[str, Any]:
    response = get(live, "/status")
    assert response.status == 200, response.body
    assert dict(response.headers)["Content-Type"] == "application/json"
    data: dict[str, Any] = json.loads(response.body)
    return data


def eventually(live: LiveServer, check: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 3
    while True:
        data = status(live)
        if check(data) or time.monotonic() > deadline:
            assert check(data), data
            return data
        time.sleep(0.05)


def metrics(text: str) -> dict[str, float]:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    return {
        sample.name + (f"[{sample.labels['pid']}]" if "pid" in sample.labels else ""): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_status_and_ping_paths(tmp_path: Path) -> None:
    args = ("--workers", "2", "--threads", "2", "--status-path", "/status", "--ping-path", "/ping")
    with server(tmp_path, *args) as live:
        live.wait_for(r"booted worker \d+(?:.*\n)+.*booted worker \d+")
        ping = get(live, "/ping")
        assert (ping.status, ping.body) == (200, b"pong\n")
        assert get(live, "/other").body == b"app /other"  # other paths reach the app
        for _ in range(5):
            get(live, "/")
        # ping + /other + 5, whichever worker answered them (a request is counted once its
        # answer is out, so the last one may need a moment)
        first = eventually(live, lambda data: data["requests"] >= 7)
        assert first["server"] == "fastcgi" and first["workers"] == 2 and first["threads"] == 4
        assert len(first["per_worker"]) == 2
        assert first["listen_queue"] == 0
        # A request in flight shows as a busy thread; the worker answering is busy too.
        done = threading.Event()
        threading.Thread(target=lambda: (get(live, "/sleep?1.2"), done.set())).start()
        time.sleep(0.4)
        during = status(live)
        assert during["busy_threads"] == 2 and during["idle_threads"] == 2, during
        assert done.wait(5)
        # OpenMetrics, by query or Accept header, read with prometheus_client's parser.
        text = get(live, "/status?openmetrics")
        assert dict(text.headers)["Content-Type"].startswith("application/openmetrics-text")
        values = metrics(text.body.decode())
        assert values["wsgigate_workers"] == 2
        assert values["wsgigate_requests_total"] >= first["requests"] + 1
        assert (
            sum(v for k, v in values.items() if k.startswith("wsgigate_worker_requests"))
            == (values["wsgigate_requests_total"])
        )
        accept = [("Accept", "application/openmetrics-text; version=1.0.0")]
        assert b"# EOF" in get(live, "/status", accept).body


def test_status_bind_drops_a_client_that_trickles_its_head(tmp_path: Path) -> None:
    """The arbiter answers the status bind itself: a client sending one byte now and then is
    cut off after a second in all (not a second per byte), and the next client is answered."""
    import socket

    with server(tmp_path, "--workers", "1", "--status-bind", "127.0.0.1:0") as live:
        address = live.wait_for(r"status listening on http://(\S+)/").group(1)
        host, _, port = address.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=5) as slow:
            started = time.monotonic()
            closed_after = None
            for byte in b"GET /status HTTP/1.0\r\n":
                try:
                    slow.sendall(bytes([byte]))
                except OSError:  # reset: the server gave up on it
                    closed_after = time.monotonic() - started
                    break
                time.sleep(0.2)
            if closed_after is None:
                slow.settimeout(5)
                assert slow.recv(100) == b""
                closed_after = time.monotonic() - started
        assert closed_after < 2.5, closed_after
        connection = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            connection.request("GET", "/ping")
            assert connection.getresponse().read() == b"pong\n"
        finally:
            connection.close()


def test_separate_status_bind_counts_survive_recycling(tmp_path: Path) -> None:
    args = ("--workers", "1", "--max-requests", "3", "--status-bind", "127.0.0.1:0")
    with server(tmp_path, *args) as live:
        address = live.wait_for(r"status listening on http://(\S+)/").group(1)
        host, _, port = address.rpartition(":")
        for _ in range(6):
            assert get(live, "/").status == 200
        live.wait_for(r"exiting after \d+ requests")

        def http_get(path: str) -> tuple[int, str, bytes]:
            connection = http.client.HTTPConnection(host, int(port), timeout=5)
            try:
                connection.request("GET", path)
                reply = connection.getresponse()
                return reply.status, reply.getheader("Content-Type", ""), reply.read()
            finally:
                connection.close()

        # A request is counted once its answer is out: the last one may need a moment.
        deadline = time.monotonic() + 3
        while True:
            code, kind, body = http_get("/")
            assert code == 200 and kind == "application/json"
            data = json.loads(body)
            if data["requests"] >= 6 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert data["requests"] == 6  # recycled workers' requests are kept in the totals
        assert data["pid"] == live.proc.pid  # the arbiter answered
        code, kind, body = http_get("/metrics?openmetrics")
        assert metrics(body.decode())["wsgigate_requests_total"] == 6
        assert http_get("/ping")[2] == b"pong\n"
        # The FastCGI socket does not answer /status: no --status-path.
        assert get(live, "/status").body == b"app /status"


@pytest.mark.parametrize("threads", ["2", "0"])
def test_slow_log_has_the_stack_and_request_timeout_stops_a_request(
    tmp_path: Path, threads: str
) -> None:
    """With a pool, and with --threads 0 (the main thread serves; a watchdog thread watches)."""
    args = ("--workers", "0", "--threads", threads, "--status-path", "/status")
    args += ("--slow-request-timeout", "0.3", "--request-timeout", "1")
    with server(tmp_path, *args) as live:
        assert get(live, "/sleep?0.6").body == b"app /sleep"  # slow, but not stopped
        match = live.wait_for(r"slow request \(over 0.3s.*GET /sleep\?0.6 running for")
        tail = live.text()[match.start() :]
        assert "in busy_loop" not in tail and "time.sleep(float(" in tail, tail[:3000]
        started = time.monotonic()
        stopped = get(live, "/spin?30")  # pure Python: the timeout interrupts it
        assert stopped.status == 500 and time.monotonic() - started < 5
        live.wait_for(r"request timeout \(--request-timeout 1\): GET /spin\?30 running")
        assert "in busy_loop" in live.text()
        assert get(live, "/").body == b"app /"  # the thread serves on
        data = eventually(live, lambda data: data["busy_threads"] == 1)  # this request only
        assert data["slow_requests"] == 2 and data["timed_out_requests"] == 1
        assert live.stop() == 0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--status-path", "status", "must start with /"),
        ("--request-timeout", "-1", "must not be negative"),
        ("--status-bind", "nowhere", "bind"),
    ],
)
def test_bad_operations_options(tmp_path: Path, option: str, value: str, message: str) -> None:
    import subprocess

    app = tmp_path / "opsapp.py"
    app.write_text(APP)
    done = subprocess.run(
        [sys.executable, "-m", "wsgigate", "fastcgi", f"{app}:app", option, value],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and message in done.stderr, done.stderr
