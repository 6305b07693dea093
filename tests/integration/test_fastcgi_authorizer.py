"""The FastCGI AUTHORIZER role with Apache mod_authnz_fcgi (deploy/apache/authnz-fcgi.conf).

The same wsgigate backend authorizes (``FCGI_ROLE=AUTHORIZER``: 200 with ``Variable-*`` headers,
or 401) and then serves the request through mod_proxy_fcgi, where the variables show up.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import servers
from tests.support import DEPLOY, free_port
from tests.test_server_runtime import LiveServer, live_server

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent

AUTH_APP = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
from cgi_probe import app as probe

def app(environ, start_response):
    if environ.get("FCGI_ROLE") != "AUTHORIZER":
        return probe(environ, start_response)
    if environ.get("HTTP_X_TOKEN") == "good":
        start_response("200 OK", [
            ("Variable-REMOTE_USER", "alice"),
            ("Variable-AUTH_LEVEL", "admin"),
        ])
        return [b""]
    body = b"no token\\n"
    start_response("401 Unauthorized", [
        ("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
    ])
    return [body]
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LiveServer]]:
    tmp = tmp_path_factory.mktemp("fcgi-authz")
    app_file = tmp / "authapp.py"
    app_file.write_text(AUTH_APP)
    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", f"{app_file}:app"]
    argv += ["--bind", address, "--workers", "1", "--threads", "4"]
    config = DEPLOY / "apache" / "authnz-fcgi.conf"
    with (
        live_server(argv, tmp) as app,
        servers.apache(config, env={"WSGIGATE_BACKEND": address}) as web,
    ):
        yield web, app


def test_authorizer_allows_with_variables(stack: tuple[Any, LiveServer]) -> None:
    web, app = stack
    response = web.request("GET", "/protected/page?x=1", headers={"X-Token": "good"})
    assert response.status == 200, (response, web.log_tail(), app.text()[-2000:])
    env = json.loads(response.body)["environ"]
    assert env["REMOTE_USER"] == "alice"
    assert env["AUTH_LEVEL"] == "admin"  # from the authorizer's Variable-AUTH_LEVEL
    assert env["PATH_INFO"] == "/protected/page" and env["FCGI_ROLE"] == "RESPONDER"


def test_authorizer_refuses(stack: tuple[Any, LiveServer]) -> None:
    web, _ = stack
    response = web.request("GET", "/protected/page", headers={"X-Token": "bad"})
    assert response.status == 401, (response, web.log_tail())
