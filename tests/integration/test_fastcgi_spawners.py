"""`wsgigate run` started by spawn-fcgi (socket on fd 0), and Debian's cgi-fcgi as the client.

spawn-fcgi binds the socket and execs the backend with it as stdin, as Apache mod_fcgid and
lighttpd ``bin-path`` do; ``wsgigate run`` must notice and serve FastCGI on it. cgi-fcgi
(libfcgi-bin) writes PARAMS in 8 KiB records: a 20,000-byte header must arrive whole (flup
truncates it to 8,064 bytes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import free_port, require_binary
from tests.test_server_runtime import live_server

pytestmark = pytest.mark.integration

PROBE = Path(__file__).resolve().parent / "cgi_probe.py"


def cgi_fcgi(address: str, env: dict[str, str], body: bytes = b"") -> bytes:
    binary = require_binary("cgi-fcgi", "/usr/bin/cgi-fcgi")
    meta = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "POST" if body else "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/x",
        "QUERY_STRING": "",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        **({"CONTENT_LENGTH": str(len(body))} if body else {}),
        **env,
    }
    result = subprocess.run(
        [binary, "-bind", "-connect", address],
        input=body,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **meta},
        capture_output=True,
        timeout=30,
        check=True,
    )
    return result.stdout


def test_spawn_fcgi_starts_wsgigate_run_and_cgi_fcgi_sends_big_params(tmp_path: Path) -> None:
    binary = require_binary("spawn-fcgi", "/usr/bin/spawn-fcgi")
    port = free_port()
    argv = [binary, "-n", "-a", "127.0.0.1", "-p", str(port), "--"]
    argv += [sys.executable, "-m", "wsgigate", "run", f"{PROBE}:app"]
    with live_server(argv, tmp_path) as server:
        assert server.address == f"127.0.0.1:{port}"
        out = cgi_fcgi(server.address, {"HTTP_X_BIG": "v" * 20000})
        head, _, body = out.partition(b"\r\n\r\n")
        assert head.startswith(b"Status: 200 OK"), out[:300]
        seen = json.loads(body)["environ"]
        assert seen["HTTP_X_BIG"] == "v" * 20000
        assert seen["PATH_INFO"] == "/x" and seen["FCGI_ROLE"] == "RESPONDER"
        upload = os.urandom(200000)
        out = cgi_fcgi(server.address, {}, upload)
        body = out.partition(b"\r\n\r\n")[2]
        assert json.loads(body)["body"]["length"] == len(upload)
