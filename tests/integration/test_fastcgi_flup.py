"""flup's FastCGI server (flup.server.fcgi.WSGIServer, threaded, 1.0.3) and wsgigate side by side.

Both serve the same app; each test sends the same records to both (with wsgigate's client, the
way a web server sends them) and asserts where they differ (docs/comparison.md, "flup"):

- nginx's stock fastcgi_params (SCRIPT_NAME = the whole path, no PATH_INFO): flup hands the app
  PATH_INFO ``''``, so an app mounted at / sees every URL as its root; wsgigate gives it the path.
- a 20,000-byte header in 8 KiB PARAMS records (Debian's cgi-fcgi writes them so): flup keeps
  only what arrived in the first record (7,928 bytes of it here); wsgigate gets all of it.
- FCGI_KEEP_CONN: flup answers every request after the first on a kept connection about 40 ms
  late (its small writes wait for a delayed ACK: no TCP_NODELAY); wsgigate answers at once.
  Behind nginx with ``fastcgi_keep_conn on`` that caps flup at ~25 requests/s per connection.
"""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import free_port, wait_for_port
from tests.test_server_runtime import LiveServer, live_server
from wsgigate.fastcgi.client import http_params, request
from wsgigate.protocols import NEED_DATA
from wsgigate.protocols.fastcgi import EndRequest, FastCGIClientConnection

pytestmark = pytest.mark.integration

APP = textwrap.dedent(
    """
    import json

    def app(environ, start_response):
        keys = ("SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "HTTP_X_BIG")
        body = json.dumps({k: environ.get(k) for k in keys}).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    """
)
FLUP = (
    "import sys; sys.path.insert(0, sys.argv[1]); from flup.server.fcgi import WSGIServer; "
    "from envapp import app; WSGIServer(app, bindAddress=('127.0.0.1', int(sys.argv[2]))).run()"
)


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("fcgi-flup")
    (tmp / "envapp.py").write_text(APP)
    port = free_port()
    flup_argv = [sys.executable, "-c", FLUP, str(tmp), str(port)]
    ours = [sys.executable, "-m", "wsgigate", "fastcgi", f"{tmp / 'envapp.py'}:app"]
    ours += ["--bind", "127.0.0.1:0", "--workers", "0", "--threads", "4"]
    with (
        live_server(flup_argv, tmp, wait=False) as flup,
        live_server(ours, tmp) as wsgigate,
    ):
        _wait(flup, port)
        yield {"flup": f"127.0.0.1:{port}", "wsgigate": wsgigate.address}


def _wait(server: LiveServer, port: int) -> None:
    wait_for_port(port, process=server.proc)  # type: ignore[arg-type]


def environ(address: str, params: dict[str, str], **kw: Any) -> dict[str, Any]:
    response = request(address, params, timeout=10, **kw)
    assert response.status == 200, response.body
    data: dict[str, Any] = json.loads(response.body)
    return data


def test_stock_nginx_params_path_info(both: dict[str, str]) -> None:
    params = http_params("GET", "/a/b?q=1")
    params["SCRIPT_NAME"] = "/a/b"  # nginx: SCRIPT_NAME $fastcgi_script_name, no PATH_INFO
    params.pop("PATH_INFO", None)
    flup = environ(both["flup"], params)
    ours = environ(both["wsgigate"], params)
    assert (flup["SCRIPT_NAME"], flup["PATH_INFO"]) == ("/a/b", "")
    assert (ours["SCRIPT_NAME"], ours["PATH_INFO"]) == ("", "/a/b")


def test_20000_byte_header_in_8k_records(both: dict[str, str]) -> None:
    params = http_params("GET", "/env", [("X-Big", "v" * 20000)])
    flup = environ(both["flup"], params, record_size=8192)
    ours = environ(both["wsgigate"], params, record_size=8192)
    assert ours["HTTP_X_BIG"] == "v" * 20000
    assert 0 < len(flup["HTTP_X_BIG"]) < 8192  # truncated, silently: the app gets a 200


def _kept_connection_delays(address: str, count: int = 4) -> list[float]:
    host, _, port = address.rpartition(":")
    client = FastCGIClientConnection()
    delays = []
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        for rid in range(1, count + 1):
            started = time.monotonic()
            client.begin_request(rid, 1, keep_conn=True)
            client.params(rid, http_params("GET", "/x"))
            client.end_stdin(rid)
            sock.sendall(client.data_to_send())
            while True:
                event = client.next_event()
                if event is NEED_DATA:
                    client.receive_data(sock.recv(65536))
                elif isinstance(event, EndRequest):
                    break
            delays.append(time.monotonic() - started)
    return delays


def test_kept_connection_answers_without_delay(both: dict[str, str]) -> None:
    flup = _kept_connection_delays(both["flup"])
    ours = _kept_connection_delays(both["wsgigate"], count=7)
    assert min(flup[1:]) > 0.030, flup  # the delayed-ACK stall, on every request after the first
    assert sorted(ours[1:])[3] < 0.015, ours  # the median: a loaded machine may delay one
