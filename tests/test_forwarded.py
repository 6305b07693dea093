"""X-Forwarded-Proto is believed from the configured proxies only."""

from __future__ import annotations

import io
from typing import Any

import pytest

from wsgigate import cgi
from wsgigate.forwarded import ForwardedScheme

PROXY = {"HTTP_X_FORWARDED_PROTO": "https", "REMOTE_ADDR": "10.0.0.5"}


@pytest.mark.parametrize(
    ("allow", "meta", "expected"),
    [
        ("10.0.0.5", PROXY, "https"),
        ("10.0.0.0/8", PROXY, "https"),
        (" 192.0.2.1 , 10.0.0.5 ", PROXY, "https"),
        (["10.0.0.5"], PROXY, "https"),
        ("*", {**PROXY, "REMOTE_ADDR": "203.0.113.9"}, "https"),
        ("10.0.0.5", {**PROXY, "HTTP_X_FORWARDED_PROTO": "http"}, "http"),
        ("10.0.0.5", {**PROXY, "HTTP_X_FORWARDED_PROTO": "http, HTTPS"}, "https"),
        # a proxy appending to what the client sent: its own value, the last, counts
        ("10.0.0.5", {**PROXY, "HTTP_X_FORWARDED_PROTO": "https, http"}, "http"),
        # not from a trusted proxy: any client could have sent it
        ("10.0.0.6", PROXY, None),
        ("10.0.1.0/24", PROXY, None),
        ("::1", PROXY, None),
        # a value that is no scheme, an empty one, none at all, a peer that is no IP
        ("10.0.0.5", {**PROXY, "HTTP_X_FORWARDED_PROTO": "javascript"}, None),
        ("10.0.0.5", {**PROXY, "HTTP_X_FORWARDED_PROTO": ""}, None),
        ("10.0.0.5", {"REMOTE_ADDR": "10.0.0.5"}, None),
        ("10.0.0.5", {**PROXY, "REMOTE_ADDR": ""}, None),
        ("10.0.0.5", {**PROXY, "REMOTE_ADDR": "/run/nginx.sock"}, None),
        # IPv6 and IPv4-mapped peers
        ("::1", {**PROXY, "REMOTE_ADDR": "::1"}, "https"),
        ("10.0.0.5", {**PROXY, "REMOTE_ADDR": "::ffff:10.0.0.5"}, "https"),
        ("2001:db8::/32", {**PROXY, "REMOTE_ADDR": "2001:db8::7"}, "https"),
    ],
)
def test_scheme(allow: Any, meta: dict[str, str], expected: str | None) -> None:
    forwarded = ForwardedScheme(allow)
    assert forwarded(meta) == expected
    assert forwarded(meta) == expected  # the second answer comes from the peer cache


@pytest.mark.parametrize("allow", ["", " , ", "10.0.0.300", "proxy.example"])
def test_bad_configuration_is_one_clear_error(allow: str) -> None:
    with pytest.raises(ValueError, match="--forwarded-allow-ips"):
        ForwardedScheme(allow)


def _cgi_scheme(meta: dict[str, str], **options: Any) -> str:
    seen: list[str] = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        seen.append(environ["wsgi.url_scheme"])
        start_response("204 No Content", [])
        return []

    base = {"REQUEST_METHOD": "GET", "SERVER_NAME": "h", "SERVER_PORT": "80"}
    cgi.run(app, environ={**base, **meta}, stdin=io.BytesIO(), stdout=io.BytesIO(), **options)
    return seen[0]


def test_cgi_believes_the_header_only_when_asked() -> None:
    assert _cgi_scheme(PROXY) == "http"
    assert _cgi_scheme(PROXY, forwarded_allow_ips="10.0.0.5") == "https"
    assert _cgi_scheme(PROXY, forwarded_allow_ips="10.9.9.9") == "http"
    # The web server's own word (HTTPS=on) stands when the header is not believed.
    assert _cgi_scheme({**PROXY, "HTTPS": "on"}, forwarded_allow_ips="10.9.9.9") == "https"


def _scgi_scheme(meta: dict[str, str], allow: str | None) -> str:
    import json
    import socket
    import threading

    from wsgigate.protocols.scgi import encode_request
    from wsgigate.scgi.server import SCGIHandler
    from wsgigate.server import BindSpec, Connection, Listener, ServerConfig, Worker

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(environ["wsgi.url_scheme"]).encode()]

    config = ServerConfig(workers=1, threads=2, forwarded_allow_ips=allow)
    handler = SCGIHandler(app, config)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.settimeout(10)
        listener = Listener(ours, BindSpec("fd"), "test")
        conn = Connection(ours, "", listener, Worker([], handler, config))
        thread = threading.Thread(target=handler.handle, args=(conn,))
        thread.start()
        base = {"REQUEST_METHOD": "GET", "REQUEST_URI": "/", "SERVER_NAME": "h"}
        theirs.sendall(encode_request({**base, "SERVER_PORT": "80", **meta}))
        thread.join(10)
        ours.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := theirs.recv(65536):
            data += chunk
    return str(json.loads(data.partition(b"\r\n\r\n")[2]))


def test_scgi_handler_believes_the_configured_proxies() -> None:
    assert _scgi_scheme(PROXY, None) == "http"
    assert _scgi_scheme(PROXY, "10.0.0.5") == "https"
    assert _scgi_scheme(PROXY, "10.0.0.6") == "http"


def test_fastcgi_server_option_end_to_end(tmp_path: Any) -> None:
    import subprocess
    import sys

    from tests.test_server_runtime import live_server
    from wsgigate.fastcgi.client import http_params, request

    app = tmp_path / "scheme_app.py"
    app.write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [environ['wsgi.url_scheme'].encode()]\n"
    )
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", f"{app}:app", "--workers", "0"]
    argv += ["--bind", "127.0.0.1:0", "--forwarded-allow-ips", "10.0.0.0/8, ::1"]
    with live_server(argv, tmp_path) as server:
        for peer, expected in (("10.0.0.5", b"https"), ("192.0.2.7", b"http")):
            params = http_params("GET", "/")
            params |= {"REMOTE_ADDR": peer, "HTTP_X_FORWARDED_PROTO": "https"}
            assert request(server.address, params, timeout=10).body == expected
    bad = subprocess.run(
        [*argv[:-1], "10.0.0.0/33"], capture_output=True, text=True, timeout=60, check=False
    )
    assert bad.returncode == 2
    assert "--forwarded-allow-ips: '10.0.0.0/33' is not an IP address or network" in bad.stderr
