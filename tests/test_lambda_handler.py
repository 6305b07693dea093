"""The Lambda handler across every event source: cookies, binary bodies, HEAD, 204/304,
unicode paths, repeated headers, errors, size limit, options and custom sources."""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import pytest

from tests.lambda_events import (
    BUILDERS,
    make_alb_event,
    make_v1_event,
    make_v2_event,
    parse_response,
)
from tests.support import require_module
from wsgigate.aws_lambda import Options, is_asgi, make_handler
from wsgigate.aws_lambda import rest as rest_source
from wsgigate.errors import ProtocolError

SOURCES = sorted(BUILDERS)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"


def response_app(status: str, headers: list[tuple[str, str]], body: bytes) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, list(headers))
        return [body]

    return app


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    seen = {key: value for key, value in environ.items() if isinstance(value, str)}
    seen["body"] = environ["wsgi.input"].read().decode("latin-1")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


def call(source: str, app: Any, **request: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    answer = make_handler(app)(BUILDERS[source](**request), None)
    json.dumps(answer)  # what Lambda does with it: must be plain JSON
    return parse_response(source, answer)


def echo(source: str, **request: Any) -> dict[str, str]:
    status, _, body = call(source, echo_app, **request)
    assert status == 200
    seen: dict[str, str] = json.loads(body)
    return seen


@pytest.mark.parametrize("source", SOURCES)
def test_several_set_cookie_headers_all_arrive(source: str) -> None:
    cookies = ["a=1; Path=/", "b=2; HttpOnly", "c=3; Secure"]
    app = response_app(
        "200 OK", [("Content-Type", "text/plain")] + [("Set-Cookie", c) for c in cookies], b"ok"
    )
    status, headers, body = call(source, app)
    assert (status, body) == (200, b"ok")
    assert sorted(v for k, v in headers if k.lower() == "set-cookie") == sorted(cookies)


@pytest.mark.parametrize("source", SOURCES)
def test_repeated_headers_are_kept(source: str) -> None:
    app = response_app("200 OK", [("Vary", "Accept"), ("Vary", "Cookie")], b"")
    _, headers, _ = call(source, app)
    values = [v for k, v in headers if k.lower() == "vary"]
    assert ", ".join(values) == "Accept, Cookie"


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    ("content_type", "encoding", "body"),
    [
        ("image/png", None, PNG),
        ("text/plain", "gzip", gzip.compress(b"hello " * 10)),
        ("application/json", "br", b"\x8b\x02\x80hello\x03"),
        ("application/octet-stream", None, b"\x00\x01\x02\xff"),
        ("text/html; charset=latin-1", None, "caf\xe9".encode("latin-1")),  # not UTF-8
    ],
)
def test_binary_bodies_round_trip(
    source: str, content_type: str, encoding: str | None, body: bytes
) -> None:
    headers = [("Content-Type", content_type)]
    if encoding:
        headers.append(("Content-Encoding", encoding))
    answer = make_handler(response_app("200 OK", headers, body))(BUILDERS[source](), None)
    flag = answer.get("isBase64Encoded", answer.get("bodyEncoding") == "base64")
    assert flag is True
    assert parse_response(source, answer)[2] == body


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/html; charset=utf-8",
        "application/json",
        "application/vnd.api+json",
        "application/atom+xml",
        "application/javascript",
        "application/yaml",
        None,
    ],
)
def test_text_bodies_stay_text(source: str, content_type: str | None) -> None:
    headers = [("Content-Type", content_type)] if content_type else []
    body = "héllo ✓".encode()
    answer = make_handler(response_app("200 OK", headers, body))(BUILDERS[source](), None)
    assert answer.get("isBase64Encoded", answer.get("bodyEncoding") == "base64") is False
    assert answer["body"] == "héllo ✓"


def test_binary_override() -> None:
    app = response_app("200 OK", [("Content-Type", "text/plain")], b"plain")
    answer = make_handler(app, binary=lambda headers: True)(make_v2_event(), None)
    assert answer["isBase64Encoded"] is True
    assert parse_response("http_api", answer)[2] == b"plain"
    png = response_app("200 OK", [("Content-Type", "image/svg")], b"<svg/>")
    answer = make_handler(png, binary=lambda headers: False)(make_v2_event(), None)
    assert answer == {
        "statusCode": 200,
        "headers": {"Content-Type": "image/svg"},
        "body": "<svg/>",
        "isBase64Encoded": False,
    }


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("status", ["204 No Content", "304 Not Modified"])
def test_no_body_statuses(source: str, status: str) -> None:
    app = response_app(status, [("ETag", '"x"')], b"")
    code, headers, body = call(source, app)
    assert (code, body) == (int(status[:3]), b"")
    assert ("ETag", '"x"') in headers


@pytest.mark.parametrize("source", SOURCES)
def test_head_sends_headers_without_body(source: str) -> None:
    app = response_app(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")], b"hello"
    )
    code, headers, body = call(source, app, method="HEAD")
    assert (code, body) == (200, b"")
    assert ("Content-Length", "5") in [(k.title(), v) for k, v in headers]


@pytest.mark.parametrize("source", SOURCES)
def test_unicode_path_and_query(source: str) -> None:
    seen = echo(source, path="/caf%C3%A9/%E2%9C%93", query="q=%C3%A9t%C3%A9&q=2")
    assert seen["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/✓"
    if source != "alb":  # single-value ALB events carry only the last of repeated keys
        assert seen["QUERY_STRING"] == "q=%C3%A9t%C3%A9&q=2"


@pytest.mark.parametrize("source", SOURCES)
def test_post_body_and_request_headers(source: str) -> None:
    seen = echo(
        source,
        method="POST",
        path="/echo",
        headers=[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("X-Multi", "a"),
            ("X-Multi", "b"),
            ("Cookie", "s=1; t=2"),
        ],
        body=b"a=1&b=%C3%A9",
    )
    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["body"] == "a=1&b=%C3%A9"
    assert seen["CONTENT_LENGTH"] == "12"
    assert seen["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert "HTTP_CONTENT_TYPE" not in seen
    assert seen["HTTP_X_MULTI"].replace(" ", "") == "a,b"
    assert seen["HTTP_COOKIE"] == "s=1; t=2"


@pytest.mark.parametrize("source", SOURCES)
def test_binary_request_body(source: str) -> None:
    seen = echo(source, method="PUT", body=PNG, headers=[("Content-Type", "image/png")])
    assert seen["body"].encode("latin-1") == PNG


@pytest.mark.parametrize("source", SOURCES)
def test_app_exception_is_a_500(source: str, error_log: pytest.LogCaptureFixture) -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    code, _, body = call(source, broken)
    assert code == 500
    assert b"boom" not in body  # no traceback to clients unless debug
    assert "boom" in error_log.text


def test_debug_shows_traceback() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    answer = make_handler(broken, debug=True)(make_v2_event(), None)
    assert answer["statusCode"] == 500
    assert "RuntimeError: boom" in answer["body"]


@pytest.mark.parametrize("source", SOURCES)
def test_response_over_the_lambda_limit_is_a_clear_500(
    source: str, error_log: pytest.LogCaptureFixture
) -> None:
    app = response_app("200 OK", [("Content-Type", "application/octet-stream")], b"x" * 2000)
    handler = make_handler(app, max_response_bytes=1000)
    code, _, body = parse_response(source, handler(BUILDERS[source](), None))
    assert code == 500
    assert b"too large" in body
    assert "over the AWS Lambda limit" in error_log.text


def test_default_limit_is_lambdas_6_mb() -> None:
    big = b"x" * (6 * 1024 * 1024)
    answer = make_handler(response_app("200 OK", [("Content-Type", "text/plain")], big))(
        make_v2_event(), None
    )
    assert answer["statusCode"] == 500
    small = b"x" * (5 * 1024 * 1024)
    answer = make_handler(response_app("200 OK", [("Content-Type", "text/plain")], small))(
        make_v2_event(), None
    )
    assert answer["statusCode"] == 200
    assert len(answer["body"]) == len(small)


def test_non_http_event_raises_one_clear_error() -> None:
    handler = make_handler(echo_app)
    with pytest.raises(ProtocolError, match="not an HTTP event.*Records.*on_event"):
        handler({"Records": [{"eventSource": "aws:sqs", "body": "x"}]}, None)
    with pytest.raises(ProtocolError, match="not an HTTP event"):
        handler("warm-up", None)


def test_non_http_event_goes_to_on_event() -> None:
    seen = []

    def on_event(event: dict[str, Any], context: Any) -> dict[str, str]:
        seen.append((event, context))
        return {"done": "yes"}

    handler = make_handler(echo_app, on_event=on_event)
    schedule = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    assert handler(schedule, "ctx") == {"done": "yes"}
    assert seen == [(schedule, "ctx")]
    assert handler(make_v2_event(), None)["statusCode"] == 200  # HTTP still goes to the app


def test_event_and_context_in_environ() -> None:
    captured = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        captured.update(environ)
        start_response("200 OK", [])
        return []

    event = make_v1_event()
    make_handler(app)(event, "the-context")
    assert captured["aws.event"] is event
    assert captured["aws.context"] == "the-context"
    assert captured["wsgigate.event_source"] == "rest"
    assert captured["wsgi.run_once"] is False
    assert captured["wsgi.input"].read() == b""


@pytest.mark.parametrize("source", ["rest", "http_api", "function_url", "alb"])
def test_base_path_for_custom_domains(source: str) -> None:
    event = (
        BUILDERS[source](path="/api/v1/users", domain="api.example.com")
        if source in ("rest", "http_api", "function_url")
        else BUILDERS[source](path="/api/v1/users")
    )
    if source == "function_url":
        event["requestContext"]["domainName"] = "abc.lambda-url.us-east-1.on.aws"
    answer = make_handler(echo_app, base_path="/api/")(event, None)
    seen = json.loads(parse_response(source, answer)[2])
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/api", "/v1/users")
    # A prefix that does not end a path segment is not split off.
    event = BUILDERS[source](path="/apiary")
    seen = json.loads(
        parse_response(source, make_handler(echo_app, base_path="/api")(event, None))[2]
    )
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/apiary")


def test_custom_event_source_can_be_registered() -> None:
    class Echo:
        name = "custom"

        @staticmethod
        def infer(event: dict[str, Any]) -> bool:
            return "custom_path" in event

        @staticmethod
        def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
            return {"REQUEST_METHOD": "GET", "PATH_INFO": event["custom_path"]}, b""

        @staticmethod
        def response(
            status: str, headers: list[tuple[str, str]], body: bytes, event: Any, options: Options
        ) -> dict[str, Any]:
            return {"status": status, "body": body.decode()}

    from wsgigate import aws_lambda

    handler = make_handler(echo_app, sources=[Echo(), *aws_lambda.SOURCES])
    answer = handler({"custom_path": "/x"}, None)
    assert answer["status"] == "200 OK"
    assert json.loads(answer["body"])["PATH_INFO"] == "/x"
    assert handler(make_v1_event(path="/y"), None)["statusCode"] == 200
    before = list(aws_lambda.SOURCES)
    try:
        aws_lambda.register(Echo())
        assert make_handler(echo_app)({"custom_path": "/z"}, None)["status"] == "200 OK"
    finally:
        aws_lambda.SOURCES[:] = before


def test_source_detection_follows_the_last_match() -> None:
    handler = make_handler(echo_app)
    for source in SOURCES * 2:
        answer = handler(BUILDERS[source](), None)
        assert parse_response(source, answer)[0] == 200
        seen = json.loads(parse_response(source, answer)[2])
        assert seen["wsgigate.event_source"] == source.removesuffix("_multi")


def test_asgi_app_goes_to_mangum() -> None:
    require_module("mangum")

    async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    class AsgiClass:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await asgi_app(scope, receive, send)

    assert is_asgi(asgi_app) and is_asgi(AsgiClass()) and not is_asgi(echo_app)
    # Mangum sets up asyncio.get_event_loop() when made and never closes it: give it one we close.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        handler = make_handler(asgi_app)
        assert type(handler).__name__ == "Mangum"
        answer = handler(make_v2_event(path="/hi"), _Context())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert (answer["statusCode"], answer["body"]) == (200, "/hi")


class _Context:
    function_name = "f"
    aws_request_id = "r"


def test_rest_source_module_has_the_source_interface() -> None:
    for member in ("name", "infer", "environ", "response"):
        assert hasattr(rest_source, member)


def test_alb_answers_in_the_request_style() -> None:
    app = response_app("200 OK", [("X-A", "1")], b"")
    single = make_handler(app)(make_alb_event(), None)
    multi = make_handler(app)(make_alb_event(multi_value=True), None)
    assert single["headers"] == {"X-A": "1"} and "multiValueHeaders" not in single
    assert multi["multiValueHeaders"] == {"X-A": ["1"]} and "headers" not in multi
    assert single["statusDescription"] == "200 OK"
