"""flup's SCGI server (flup.server.scgi, 1.0.3) and wsgigate side by side, on the same requests.

Both serve tests/integration/tricky_app.py; each test sends the same bytes to both and asserts
where they differ (docs/comparison.md, "flup", records each difference with a reproducer):

- ``wsgi.input`` is flup's raw socket file: ``read()`` with no size waits for an end of stream
  nginx never sends, so the request hangs until a timeout. wsgigate's returns at CONTENT_LENGTH.
- flup trusts any netstring length and keeps reading; wsgigate answers 431 at the digits.
- flup serves a request without ``SCGI=1``; wsgigate answers 400.
- flup gives a bodyless request a text ``io.StringIO`` as ``wsgi.input`` (PEP 3333: bytes).
- flup puts REQUEST_URI's path, still percent-encoded, into PATH_INFO behind nginx's stock
  scgi_params; wsgigate decodes it (CGI's PATH_INFO is decoded).
- flup's allow-list (``allowedServers``) is never applied to IPv6 peers: a ``::1`` connection
  is served even when the list names no IPv6 address at all.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import servers, tricky
from tests.support import DEPLOY, free_port, require_module
from tests.test_server_runtime import live_server
from wsgigate.protocols.scgi import encode_request

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
ENV = {"X-Probe": "env"}  # answer with the environ, wsgi.input untouched
CONFIG = DEPLOY / "nginx" / "scgi.conf"
FLUP = """
import sys
sys.path.insert(0, {here!r})
from flup.server.scgi import WSGIServer
from tricky_app import app
host, port, allowed = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
bind = (host, port, 0, 0) if ":" in host else (host, port)
WSGIServer(app, bindAddress=bind, allowedServers=allowed or None).run()
"""


def _connect(host: str, port: int, timeout: float = 10) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@contextlib.contextmanager
def flup(host: str = "127.0.0.1", allowed: tuple[str, ...] = ()) -> Iterator[int]:
    """flup's threaded SCGI server in a process; yields its port once it accepts."""
    require_module("flup.server.scgi")
    port = free_port()
    argv = [sys.executable, "-c", FLUP.format(here=str(HERE)), host, str(port), *allowed]
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                _connect(host, port, 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("flup's SCGI server did not start") from None
                time.sleep(0.05)
        yield port
    finally:
        process.kill()
        process.wait()


def exchange(host: str, port: int, data: bytes, *, wait: float = 5) -> bytes | None:
    """Send ``data``; all that came back before the server closed, None if nothing in ``wait``."""
    with _connect(host, port, wait) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            return received or None
        except ConnectionResetError:  # closed with our bytes unread
            pass
    return received


@pytest.fixture(scope="module")
def sides(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Any, int]]]:
    """Each side's nginx (same config) and its backend's port: {"wsgigate": ..., "flup": ...}."""
    tmp = tmp_path_factory.mktemp("scgi-flup")
    ours = free_port()
    argv = [sys.executable, "-m", "wsgigate", "scgi", tricky.APP, "--bind", f"127.0.0.1:{ours}"]
    argv += ["--workers", "0", "--threads", "4", "--access-logfile", "none"]
    with (
        live_server(argv, tmp),
        flup() as theirs,
        servers.nginx(CONFIG, values={"BACKEND": f"127.0.0.1:{ours}"}) as web_ours,
        servers.nginx(CONFIG, values={"BACKEND": f"127.0.0.1:{theirs}"}) as web_theirs,
    ):
        yield {"wsgigate": (web_ours, ours), "flup": (web_theirs, theirs)}


def test_read_without_size_hangs_on_flup_only(sides: dict[str, tuple[Any, int]]) -> None:
    """The reported field defect: behind nginx, the request times out on flup."""
    web, _ = sides["wsgigate"]
    started = time.monotonic()
    tricky.check_read_all(web, timeout=3)
    assert time.monotonic() - started < 2
    web, _ = sides["flup"]
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        web.request("POST", "/all", body=b"x" * 1000, headers={"X-Probe": "read-all"}, timeout=3)
    assert time.monotonic() - started >= 3


def test_path_info_is_decoded_by_wsgigate_only(sides: dict[str, tuple[Any, int]]) -> None:
    seen = {
        side: json.loads(web.request("GET", "/caf%C3%A9/a%20b?q=1", headers=ENV).body)
        for side, (web, _) in sides.items()
    }
    assert seen["wsgigate"]["PATH_INFO"] == "/caf\xc3\xa9/a b"
    assert seen["flup"]["PATH_INFO"] == "/caf%C3%A9/a%20b"  # REQUEST_URI's path, undecoded
    for env in seen.values():
        assert (env["SCRIPT_NAME"], env["QUERY_STRING"]) == ("", "q=1")


def test_request_without_scgi_1(sides: dict[str, tuple[Any, int]]) -> None:
    block = b"CONTENT_LENGTH\x000\x00REQUEST_METHOD\x00GET\x00HTTP_X_PROBE\x00env\x00"
    wire = b"%d:%s," % (len(block), block)
    answers = {side: exchange("127.0.0.1", port, wire) or b"" for side, (_, port) in sides.items()}
    assert answers["wsgigate"].startswith(b"Status: 400 Bad Request\r\n")
    assert answers["flup"].startswith(b"Status: 200 OK\r\n")


def test_absurd_netstring_length(sides: dict[str, tuple[Any, int]]) -> None:
    """10^9 declared, 2 MiB sent: wsgigate refuses at the digits, flup keeps reading."""
    wire = b"1000000000:CONTENT_LENGTH\x000\x00" + b"h" * (2 << 20)
    _, ours = sides["wsgigate"]
    _, theirs = sides["flup"]
    answer = exchange("127.0.0.1", ours, wire, wait=5) or b""
    assert answer.startswith(b"Status: 431 Request Header Fields Too Large\r\n")
    assert exchange("127.0.0.1", theirs, wire, wait=1) is None  # took it all, waits for more


def test_flup_allow_list_does_not_apply_to_ipv6() -> None:
    """allowedServers=["127.0.0.1"] (flup's Paste default) or a list with no IPv6 address at
    all: a connection from ::1 is served anyway (flup checks only 2-tuple peer addresses)."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    wire = encode_request({"REQUEST_METHOD": "GET", "REQUEST_URI": "/v6", "HTTP_X_PROBE": "env"})
    for allowed in (("127.0.0.1",), ("192.0.2.1",)):
        with flup("::1", allowed) as port:
            answer = exchange("::1", port, wire) or b""
        assert answer.startswith(b"Status: 200 OK\r\n"), (allowed, answer[:100])
    with flup("127.0.0.1", ("192.0.2.1",)) as port:  # an IPv4 peer is refused: closed, no answer
        assert exchange("127.0.0.1", port, wire) == b""


def test_same_answers_where_both_work(sides: dict[str, tuple[Any, int]]) -> None:
    """The ordinary requests (the body left unread): both serve the same status and body."""
    for probe in ("stream", "binary", "cookies", "big-header"):
        answers = {
            side: web.request("GET", "/p", headers={"X-Probe": probe})
            for side, (web, _) in sides.items()
        }
        assert answers["wsgigate"].status == answers["flup"].status == 200
        assert answers["wsgigate"].body == answers["flup"].body


def test_bodyless_wsgi_input_is_text_on_flup(sides: dict[str, tuple[Any, int]]) -> None:
    """Without a body flup hands the app io.StringIO(): read() gives str, and an app that
    hashes or joins the bytes fails (500). With a body, reading one byte past CONTENT_LENGTH
    waits on the socket (PEP 3333: the server should simulate end of file there)."""
    web, _ = sides["wsgigate"]
    seen = json.loads(web.request("GET", "/nobody").body)["body"]
    assert (seen["length"], seen["after"]) == (0, 0)
    web, _ = sides["flup"]
    response = web.request("GET", "/nobody")
    assert response.status == 500 and b"Unhandled Exception" in response.body
