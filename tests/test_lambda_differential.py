"""Differential: each event through make_handler(app) and through Mangum(WSGIApp(app)).

The same WSGI app, reached two ways: wsgigate's Lambda gateway directly, and Mangum (the ASGI
adapter for Lambda) in front of wsgigate's own WSGI-to-ASGI bridge. Status, body, cookies and the
other headers must agree for every event source Mangum knows (API Gateway v1 and v2, Function
URLs, ALB with and without multi-value headers, Lambda@Edge).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.lambda_events import BUILDERS, parse_response
from tests.support import require_module
from wsgigate.aws_lambda import make_handler

mangum = require_module("mangum")
asgi = require_module("wsgigate.asgi")

SOURCES = ["rest", "http_api", "function_url", "alb", "alb_multi", "edge"]
REQUESTS = [
    {"path": "/hello"},
    {"path": "/caf%C3%A9/x", "query": "a=1&a=2&b=%20"},
    {
        "method": "POST",
        "path": "/echo",
        "body": b"posted",
        "headers": [("Content-Type", "text/plain")],
    },
    {"path": "/cookies"},
    {"path": "/png"},
    {"path": "/empty"},
]


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ["PATH_INFO"]
    if path == "/cookies":
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/plain"),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; HttpOnly"),
            ],
        )
        return [b"cookies"]
    if path == "/png":
        start_response("200 OK", [("Content-Type", "image/png")])
        return [b"\x89PNG\r\n\x1a\n\x00\xff"]
    if path == "/empty":
        start_response("204 No Content", [("X-Empty", "yes")])
        return []
    length = int(environ.get("CONTENT_LENGTH") or 0)
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": path.encode("latin-1").decode("utf-8"),
        "query": environ["QUERY_STRING"],
        "body": environ["wsgi.input"].read(length).decode(),
    }
    start_response("200 OK", [("Content-Type", "application/json"), ("X-Seen", "1")])
    return [json.dumps(seen, sort_keys=True).encode()]


class _Context:
    function_name = "diff"
    aws_request_id = "diff"


@pytest.fixture
def loop() -> Iterator[None]:
    """Mangum runs on asyncio.get_event_loop() and never closes it: give it one we close."""
    event_loop = asyncio.new_event_loop()
    asyncio.set_event_loop(event_loop)
    yield
    asyncio.set_event_loop(None)
    event_loop.close()


# Where Mangum (0.22) answers differently, and why it is Mangum's defect (docs/comparison.md).
MANGUM_DEFECTS = {
    ("edge", "/caf%C3%A9/x"): "Mangum leaves the Lambda@Edge uri percent-encoded in the path",
    ("edge", "/cookies"): "Mangum keeps one of two Set-Cookie on Lambda@Edge",
    ("edge", "/png"): "Mangum flags binary Lambda@Edge bodies isBase64Encoded, not bodyEncoding",
    ("http_api", "/empty"): "Mangum adds Content-Type: application/json to a 204 on v2",
    ("function_url", "/empty"): "Mangum adds Content-Type: application/json to a 204 on v2",
}


def _normal(source: str, answer: dict[str, Any]) -> tuple[int, bytes, list[str], dict[str, str]]:
    status, headers, body = parse_response(source, answer)
    if body.startswith(b"{"):  # the echo: compare the query parsed (%20 and + are both a space)
        seen = json.loads(body)
        seen["query"] = parse_qsl(seen["query"], keep_blank_values=True)
        body = json.dumps(seen, sort_keys=True).encode()
    cookies = sorted(v for k, v in headers if k.lower() == "set-cookie")
    others: dict[str, str] = {}
    for name, value in headers:
        if name.lower() not in ("set-cookie", "content-length"):
            key = name.lower()
            others[key] = f"{others[key]}, {value}" if key in others else value
    return status, body, cookies, others


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("request_", REQUESTS, ids=lambda r: r.get("method", "GET") + r["path"])
def test_same_answer_as_mangum_over_the_asgi_bridge(
    source: str, request_: dict[str, Any], loop: None, request: pytest.FixtureRequest
) -> None:
    defect = MANGUM_DEFECTS.get((source, request_["path"]))
    if defect:
        request.applymarker(pytest.mark.xfail(reason=defect, strict=True))
    event = BUILDERS[source](**request_)
    ours = _normal(source, make_handler(app)(json.loads(json.dumps(event)), _Context()))
    bridged = mangum.Mangum(asgi.WSGIApp(app), lifespan="off")
    theirs = _normal(source, bridged(json.loads(json.dumps(event)), _Context()))
    assert ours == theirs
    assert ours[0] in (200, 204)
