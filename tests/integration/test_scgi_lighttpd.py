"""`wsgigate scgi` behind real lighttpd mod_scgi (deploy/lighttpd/scgi.conf, unix socket,
``fix-root-scriptname``), and a 1 GiB upload streamed through it with flat backend memory.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration import servers, tricky
from tests.support import DEPLOY
from tests.test_server_runtime import LiveServer, live_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, LiveServer]]:
    tmp = tmp_path_factory.mktemp("scgi-lighttpd")
    public = servers.public_dir("wsgigate-scgi-lighttpd-")
    sock = public / "app.sock"
    argv = [sys.executable, "-m", "wsgigate", "scgi", tricky.APP, "--bind", f"unix:{sock},666"]
    argv += ["--workers", "1", "--threads", "4", "--access-logfile", "none"]
    config = DEPLOY / "lighttpd" / "scgi.conf"
    with (
        live_server(argv, tmp) as app,
        servers.lighttpd(config, env={"WSGIGATE_BACKEND": str(sock)}) as web,
    ):
        yield web, app
    os.rmdir(public)


def test_paths_queries_and_headers(stack: tuple[Any, LiveServer]) -> None:
    web, _ = stack
    env = tricky.check_paths(web, invalid_utf8=False)  # lighttpd answers %FF with 400 itself
    assert env["SCGI"] == "1" and env["GATEWAY_INTERFACE"] == "CGI/1.1"
    tricky.check_repeated_headers(web)


def test_bodies_and_responses(stack: tuple[Any, LiveServer]) -> None:
    web, app = stack
    tricky.check_posts(web)
    tricky.check_read_all(web)
    tricky.check_head_and_responses(web)
    tricky.check_streaming_is_incremental(web, "/slow")
    # lighttpd 1.4 itself answers a chunked upload with 411 when it streams request bodies
    # (server.stream-request-body = 2); the chunked case is covered behind nginx and Apache.
    assert "error serving a connection" not in app.text()


def test_upload_1gib_with_flat_memory(stack: tuple[Any, LiveServer]) -> None:
    web, app = stack
    started = time.monotonic()
    grew = tricky.check_upload_1gib_flat(web, app.proc.pid, "/gib")
    print(f"1 GiB through lighttpd in {time.monotonic() - started:.1f} s, grew {grew >> 20} MiB")
