"""`wsgigate fastcgi` behind real nginx (fastcgi_pass over TCP and a unix socket).

nginx runs deploy/nginx/fastcgi.conf: Debian's stock fastcgi_params (SCRIPT_NAME = the whole
path, no PATH_INFO), a keep-alive upstream pool with fastcgi_keep_conn, and
fastcgi_request_buffering off for chunked uploads. The app is tests/integration/cgi_probe.py,
which answers with the environ it saw.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import servers
from tests.support import DEPLOY, free_port
from tests.test_server_runtime import LiveServer, live_server

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
CONFIG = DEPLOY / "nginx" / "fastcgi.conf"


def backend(tmp: Path, bind: str, *args: str) -> Any:
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", f"{HERE / 'cgi_probe.py'}:app"]
    argv += ["--bind", bind, "--workers", "2", "--threads", "4", *args]
    argv += ["--status-path", "/status", "--ping-path", "/ping"]
    return live_server(argv, tmp)


@pytest.fixture(scope="module")
def tcp_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LiveServer]]:
    tmp = tmp_path_factory.mktemp("fcgi-nginx-tcp")
    address = f"127.0.0.1:{free_port()}"
    with backend(tmp, address) as app, servers.nginx(CONFIG, values={"BACKEND": address}) as web:
        yield web, app


@pytest.fixture(scope="module")
def unix_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LiveServer]]:
    tmp = tmp_path_factory.mktemp("fcgi-nginx-unix")
    public = servers.public_dir("wsgigate-fcgi-sock-")
    sock = public / "app.sock"
    with (
        backend(tmp, f"unix:{sock},666") as app,
        servers.nginx(CONFIG, values={"BACKEND": f"unix:{sock}"}) as web,
    ):
        yield web, app
    os.rmdir(public)  # the backend removed its socket file on exit


def environ_of(response: servers.Response) -> dict[str, Any]:
    assert response.status == 200, response
    data: dict[str, Any] = json.loads(response.body)
    return data


@pytest.mark.parametrize("stack", ["tcp_stack", "unix_stack"])
def test_environ_through_stock_fastcgi_params(stack: str, request: pytest.FixtureRequest) -> None:
    web, _ = request.getfixturevalue(stack)
    response = web.request("GET", "/caf%C3%A9/a%20b?x=1&x=&y", headers={"X-Custom": "v"})
    seen = environ_of(response)
    env = seen["environ"]
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/caf\xc3\xa9/a b"
    assert env["QUERY_STRING"] == "x=1&x=&y"
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_PORT"] == str(web.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_CUSTOM"] == "v"
    assert env["FCGI_ROLE"] == "RESPONDER"
    assert seen["body"]["length"] == 0


def test_split_path_info_sub_path_mount(tcp_stack: tuple[Any, LiveServer]) -> None:
    """location /sub/ with fastcgi_split_path_info: the app is mounted at /sub."""
    web, _ = tcp_stack
    env = environ_of(web.request("GET", "/sub/caf%C3%A9/x%20y?a=1&a="))["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/sub", "/caf\xc3\xa9/x y")
    assert env["QUERY_STRING"] == "a=1&a="
    env = environ_of(web.request("GET", "/sub/"))["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/sub", "/")


def test_large_response_headers(tcp_stack: tuple[Any, LiveServer]) -> None:
    """24 KiB of Set-Cookie headers pass (fastcgi_buffer_size 32k in the deploy config)."""
    web, _ = tcp_stack
    for prefix in ("/", "/keep/"):
        response = web.request("GET", f"{prefix}big", headers={"X-Probe": "big-headers"})
        assert response.status == 200, (response, web.log_tail())
        cookies = response.header_all("Set-Cookie")
        assert len(cookies) == 8 and all(len(c) > 3000 for c in cookies)
        assert response.body == b"big headers\n"


def test_status_and_ping_through_nginx(tcp_stack: tuple[Any, LiveServer]) -> None:
    """--status-path / --ping-path answered in front of the app, as nginx forwards them."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    web, _ = tcp_stack
    ping = web.request("GET", "/ping")
    assert (ping.status, ping.body) == (200, b"pong\n")
    status = json.loads(web.request("GET", "/status").body)
    assert status["server"] == "fastcgi" and status["workers"] == 2 and status["threads"] == 8
    metrics = web.request("GET", "/keep/status?openmetrics")  # not the status path: the app
    assert metrics.status == 200 and b"# EOF" not in metrics.body
    text = web.request("GET", "/status?openmetrics").body.decode()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"wsgigate_requests", "wsgigate_threads_busy", "wsgigate_workers"} <= names


def test_post_bodies(tcp_stack: tuple[Any, LiveServer]) -> None:
    web, _ = tcp_stack
    for size in (0, 1 << 20):
        body = os.urandom(size)
        seen = environ_of(web.request("POST", "/upload", body=body))
        assert seen["environ"]["CONTENT_LENGTH" if size else "REQUEST_METHOD"] in (
            str(size),
            "POST",
        )
        assert seen["body"]["length"] == size
        assert seen["body"]["sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_upload_without_request_buffering(tcp_stack: tuple[Any, LiveServer]) -> None:
    web, _ = tcp_stack
    parts = [os.urandom(70000) for _ in range(5)]
    connection = http.client.HTTPConnection(web.host, web.port, timeout=30)
    try:
        connection.request("POST", "/stream/up", body=iter(parts), encode_chunked=True)
        reply = connection.getresponse()
        seen = json.loads(reply.read())
    finally:
        connection.close()
    assert reply.status == 200
    assert "CONTENT_LENGTH" not in seen["environ"]
    assert seen["body"]["length"] == 350000
    assert seen["body"]["sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()


def test_keep_conn_pool(tcp_stack: tuple[Any, LiveServer]) -> None:
    web, app = tcp_stack
    mark = len(app.text())
    for i in range(20):
        seen = environ_of(web.request("GET", f"/keep/n{i}"))
        assert seen["environ"]["PATH_INFO"] == f"/keep/n{i}"
    # Unread bodies on kept connections are discarded before the next request.
    response = web.request("POST", "/keep/x", body=b"z" * 100000, headers={"X-Probe": "cookies"})
    assert response.status == 200 and len(response.header_all("Set-Cookie")) == 3
    assert environ_of(web.request("GET", "/keep/after"))["environ"]["PATH_INFO"] == "/keep/after"
    assert "lost" not in app.text()[mark:] and "closing the connection" not in app.text()[mark:]


def test_head_streaming_errors_and_a_client_that_leaves(tcp_stack: tuple[Any, LiveServer]) -> None:
    web, app = tcp_stack
    head = web.request("HEAD", "/h", headers={"X-Probe": "binary"})
    assert head.status == 200 and head.body == b""
    stream = web.request("GET", "/s", headers={"X-Probe": "stream"})
    assert stream.status == 200 and stream.body.count(b"chunk ") == 200
    binary = web.request("GET", "/b", headers={"X-Probe": "binary"})
    assert (
        hashlib.sha256(binary.body).hexdigest()
        == hashlib.sha256(bytes(range(256)) * 4096).hexdigest()
    )
    assert web.request("GET", "/boom", headers={"X-Probe": "boom"}).status == 500
    # A client that leaves mid-stream: the app's iterator is closed, the server goes on.
    connection = http.client.HTTPConnection(web.host, web.port, timeout=10)
    connection.request("GET", "/slow", headers={"X-Probe": "slow-stream"})
    reply = connection.getresponse()
    assert reply.read(20000)
    connection.close()
    for _ in range(5):
        assert environ_of(web.request("GET", "/after"))["environ"]["PATH_INFO"] == "/after"
    nginx_log = web.log_text()
    assert "upstream prematurely closed" not in nginx_log, nginx_log[-3000:]


@pytest.mark.parametrize("stack", ["tcp_stack", "unix_stack"])
@pytest.mark.parametrize(
    ("method", "prefix"), [("GET", "/"), ("GET", "/keep/"), ("POST", "/keep/")]
)
def test_sighup_under_load_drops_nothing(
    stack: str, method: str, prefix: str, request: pytest.FixtureRequest
) -> None:
    """SIGHUP three times under load: no request fails, and nginx never finds a kept-alive
    connection closed under it. A stopping worker sends the FIN with its last END_REQUEST and
    closes idle kept connections only once they have rested; otherwise nginx can take one from
    its pool just as it closes, retry a GET on another connection (logging "upstream
    prematurely closed") and answer a POST with 502, since a POST is not retried. The GETs go
    to an answer that does not read the (empty) body, as most apps do; the POSTs' app reads
    it. Over a unix socket, where the FIN cannot travel with the answer, a record after the last
    END_REQUEST tells nginx not to pool the connection."""
    web, app = request.getfixturevalue(stack)
    body = b"x" * 100 if method == "POST" else None
    headers = {} if method == "POST" else {"X-Probe": "cookies"}
    mark = web.log_mark()
    app_mark = len(app.text())
    reload = servers.reload_three_times(app)
    statuses, errors = web.under_load(method, f"{prefix}hup", reload, body, headers)
    assert not errors, (errors[:5], web.log_tail())
    assert len(statuses) > 20 and set(statuses) == {200}, (sorted(set(statuses)), web.log_tail())
    assert "graceful timeout" not in app.text()[app_mark:]
    assert "upstream prematurely closed" not in web.log_text(mark), web.log_tail()


def test_max_requests_recycling_under_keep_alive_posts(tmp_path: Path) -> None:
    """--max-requests recycles workers (a stop from inside a request) while nginx keeps
    reusing their connections: no POST is answered 502, nothing is retried."""
    address = f"127.0.0.1:{free_port()}"
    recycle = ("--max-requests", "40", "--max-requests-jitter", "20")
    with (
        backend(tmp_path, address, *recycle) as app,
        servers.nginx(CONFIG, values={"BACKEND": address}) as web,
    ):
        statuses, errors = web.under_load("POST", "/keep/r", lambda: time.sleep(3), b"x" * 100)
        assert app.text().count("(--max-requests), recycling") >= 4  # workers were recycled
        assert not errors and len(statuses) > 100
        assert set(statuses) == {200}, sorted(set(statuses))
        assert "upstream prematurely closed" not in web.log_text(), web.log_tail()
