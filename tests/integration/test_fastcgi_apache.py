"""`wsgigate fastcgi` behind real Apache httpd mod_proxy_fcgi (deploy/apache/fastcgi.conf)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import servers
from tests.integration.test_fastcgi_lighttpd import PROBE
from tests.support import DEPLOY, free_port
from tests.test_server_runtime import LiveServer, live_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LiveServer]]:
    tmp = tmp_path_factory.mktemp("fcgi-apache")
    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", f"{PROBE}:app"]
    argv += ["--bind", address, "--workers", "1", "--threads", "4"]
    config = DEPLOY / "apache" / "fastcgi.conf"
    with (
        live_server(argv, tmp) as app,
        servers.apache(config, env={"WSGIGATE_BACKEND": address}) as web,
    ):
        yield web, app


def test_environ_path_and_query(stack: tuple[Any, LiveServer]) -> None:
    web, _ = stack
    response = web.request("GET", "/caf%C3%A9/x?a=1&a=&b", headers={"X-Custom": "v"})
    assert response.status == 200, (response, web.log_tail())
    env = json.loads(response.body)["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/caf\xc3\xa9/x")
    assert env["QUERY_STRING"] == "a=1&a=&b"
    assert env["HTTP_X_CUSTOM"] == "v" and env["SERVER_PORT"] == str(web.port)


def test_bodies_streaming_and_reuse(stack: tuple[Any, LiveServer]) -> None:
    web, app = stack
    body = os.urandom(1 << 20)
    response = web.request("POST", "/up", body=body)
    assert response.status == 200, (response, web.log_tail())
    assert json.loads(response.body)["body"]["sha256"] == hashlib.sha256(body).hexdigest()
    stream = web.request("GET", "/s", headers={"X-Probe": "stream"})
    assert stream.status == 200 and stream.body.count(b"chunk ") == 200
    assert web.request("GET", "/b", headers={"X-Probe": "boom"}).status == 500
    for i in range(10):
        env = json.loads(web.request("GET", f"/n{i}").body)["environ"]
        assert env["PATH_INFO"] == f"/n{i}"
    log = web.log_text()
    assert "AH01075" not in log and "reset by peer" not in log, log[-3000:]


def test_sethandler_form(tmp_path: Path) -> None:
    """SetHandler "proxy:fcgi://..." (-DSETHANDLER): Apache maps the URL to a file first and, for
    a path that is no file, splits it after the first segment (/a/b/c -> SCRIPT_NAME=/a,
    PATH_INFO=/b/c). A backend started with --script-name / re-joins it."""
    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", f"{PROBE}:app", "--script-name", "/"]
    argv += ["--bind", address, "--workers", "0"]
    config = DEPLOY / "apache" / "fastcgi.conf"
    with (
        live_server(argv, tmp_path),
        servers.apache(config, env={"WSGIGATE_BACKEND": address}, defines=["SETHANDLER"]) as web,
    ):
        for target, path in (("/caf%C3%A9/x?a=1&a=", "/caf\xc3\xa9/x"), ("/a/b/c", "/a/b/c")):
            response = web.request("GET", target, headers={"X-Custom": "v"})
            assert response.status == 200, (response, web.log_tail())
            env = json.loads(response.body)["environ"]
            assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", path)
            assert env["HTTP_X_CUSTOM"] == "v"
        assert env["QUERY_STRING"] == ""
        body = os.urandom(100000)
        seen = json.loads(web.request("POST", "/up", body=body).body)
        assert seen["body"]["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sighup_under_load_with_reused_connections(
    stack: tuple[Any, LiveServer], method: str
) -> None:
    """deploy/apache/fastcgi.conf reuses backend connections (enablereuse=on), and Apache
    retries nothing: a worker stopping under load must not close one Apache is about to reuse.
    Over TCP the end of stream leaves with the last answer, so Apache's check before reuse sees
    it. Three SIGHUPs under four clients: every request answered 200, no proxy_fcgi error."""
    web, app = stack
    body = b"x" * 100 if method == "POST" else None
    headers = {} if method == "POST" else {"X-Probe": "cookies"}
    mark = web.log_mark()
    reload = servers.reload_three_times(app)
    statuses, errors = web.under_load(method, "/hup", reload, body, headers)
    assert not errors and len(statuses) > 100
    assert set(statuses) == {200}, sorted(set(statuses))
    assert "proxy_fcgi:error" not in web.log_text(mark), web.log_tail()
