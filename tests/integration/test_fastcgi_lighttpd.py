"""`wsgigate fastcgi` behind real lighttpd mod_fastcgi (deploy/lighttpd/fastcgi.conf).

lighttpd connects to a running wsgigate over a unix socket, the app mounted at "/" without
fix-root-scriptname: SCRIPT_NAME arrives as the whole path, no PATH_INFO.
"""

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
from tests.support import DEPLOY
from tests.test_server_runtime import LiveServer, live_server

pytestmark = pytest.mark.integration

PROBE = Path(__file__).resolve().parent / "cgi_probe.py"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LiveServer]]:
    tmp = tmp_path_factory.mktemp("fcgi-lighttpd")
    public = servers.public_dir("wsgigate-fcgi-lighttpd-")
    sock = public / "app.sock"
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", f"{PROBE}:app"]
    argv += ["--bind", f"unix:{sock},666", "--workers", "1", "--threads", "4"]
    config = DEPLOY / "lighttpd" / "fastcgi.conf"
    with (
        live_server(argv, tmp) as app,
        servers.lighttpd(config, env={"WSGIGATE_BACKEND": str(sock)}) as web,
    ):
        yield web, app
    os.rmdir(public)


def test_environ_path_and_query(stack: tuple[Any, LiveServer]) -> None:
    web, _ = stack
    response = web.request("GET", "/caf%C3%A9/x?a=1&a=&b", headers={"X-Custom": "v"})
    assert response.status == 200, response
    env = json.loads(response.body)["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("", "/caf\xc3\xa9/x")
    assert env["QUERY_STRING"] == "a=1&a=&b"
    assert env["HTTP_X_CUSTOM"] == "v" and env["SERVER_PORT"] == str(web.port)


def test_bodies_and_streaming(stack: tuple[Any, LiveServer]) -> None:
    web, _ = stack
    body = os.urandom(1 << 20)
    response = web.request("POST", "/up", body=body)
    assert response.status == 200, (response, web.log_tail())
    seen = json.loads(response.body)
    assert seen["body"]["sha256"] == hashlib.sha256(body).hexdigest()
    # (A chunked upload is refused by lighttpd 1.4 itself with 411 when it streams request
    # bodies to mod_fastcgi; the chunked case is covered behind nginx.)
    stream = web.request("GET", "/s", headers={"X-Probe": "stream"})
    assert stream.status == 200 and stream.body.count(b"chunk ") == 200
    assert web.request("GET", "/b", headers={"X-Probe": "boom"}).status == 500
