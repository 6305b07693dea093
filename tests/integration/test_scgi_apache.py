"""`wsgigate scgi` behind real Apache httpd mod_proxy_scgi (deploy/apache/scgi.conf), with and
without ``proxy-scgi-pathinfo`` (``-DPATHINFO``).

Without it Apache sends SCRIPT_NAME = the whole decoded path and no PATH_INFO; with it, PATH_INFO
= the path still percent-encoded and SCRIPT_NAME cut by that encoded length. The app sees
SCRIPT_NAME "" and PATH_INFO = the decoded path either way.
"""

from __future__ import annotations

import http.client
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration import servers, tricky
from tests.support import DEPLOY, free_port
from tests.test_server_runtime import LiveServer, live_server

pytestmark = pytest.mark.integration

CONFIG = DEPLOY / "apache" / "scgi.conf"


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, LiveServer]]:
    tmp = tmp_path_factory.mktemp("scgi-apache")
    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "wsgigate", "scgi", tricky.APP, "--bind", address]
    argv += ["--workers", "1", "--threads", "4", "--access-logfile", "none"]
    with live_server(argv, tmp) as app:
        yield address, app


@pytest.fixture(scope="module", params=[[], ["PATHINFO"]], ids=["plain", "proxy-scgi-pathinfo"])
def web(request: pytest.FixtureRequest, backend: tuple[str, LiveServer]) -> Iterator[Any]:
    address, _ = backend
    with servers.apache(CONFIG, env={"WSGIGATE_BACKEND": address}, defines=request.param) as web:
        yield web


def test_paths_queries_and_headers(web: Any) -> None:
    # Apache refuses an encoded slash (%2F) itself, with 404 (AllowEncodedSlashes Off).
    env = tricky.check_paths(web, encoded_slash=False)
    pathinfo = "PATHINFO" in web.name
    assert ("proxy-scgi-pathinfo" in env) == pathinfo
    for path, expected in [("/x%20y/z", "/x y/z"), ("/a/b/c", "/a/b/c"), ("/caf%C3%A9/", None)]:
        seen = tricky.environ_of(web.request("GET", path))
        assert seen["SCRIPT_NAME"] == ""
        assert seen["PATH_INFO"] == (expected or "/caf\xc3\xa9/")
    tricky.check_repeated_headers(web, cookie="a=1, b=2")  # Apache joins them itself


def test_bodies_and_responses(web: Any, backend: tuple[str, LiveServer]) -> None:
    tricky.check_posts(web)
    tricky.check_read_all(web)
    # mod_proxy_scgi answers a chunked upload itself with 411: SCGI needs CONTENT_LENGTH up
    # front and Apache does not buffer the body to count it (nginx does: tested there).
    connection = http.client.HTTPConnection(web.host, web.port, timeout=30)
    try:
        connection.request("POST", "/chunked", body=iter([b"x" * 1000]), encode_chunked=True)
        assert connection.getresponse().status == 411
    finally:
        connection.close()
    tricky.check_head_and_responses(web, head_length=False, big=8000)  # Apache's limits
    log = web.log_text()
    assert "AH0" not in log.replace("AH00489", "").replace("AH00094", ""), log[-3000:]
    assert "error serving a connection" not in backend[1].text()
