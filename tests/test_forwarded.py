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
        ("10.0.0.5", {**PROXY, "HTTP_X_FORWARDED_PROTO": "HTTPS, http"}, "https"),
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
