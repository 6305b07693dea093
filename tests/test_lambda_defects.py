"""Known field defects of the Lambda WSGI adapters in use today, each one a test we pass.

Where a peer (serverless-wsgi, Zappa, apig-wsgi, Mangum) gets it wrong, the test's docstring says
how; docs/comparison.md has the runnable reproducers and the peer versions they were seen with.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambda_events import (
    make_alb_event,
    make_edge_event,
    make_function_url_event,
    make_lattice_v2_event,
    make_v1_event,
    make_v2_event,
    parse_response,
    powertools,
)
from wsgigate.aws_lambda import make_handler
from wsgigate.errors import ProtocolError


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    seen = {key: value for key, value in environ.items() if isinstance(value, str)}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


def environ_of(event: dict[str, Any]) -> dict[str, str]:
    answer = make_handler(echo_app)(event, None)
    body = answer.get("body", "")
    seen: dict[str, str] = json.loads(body)
    return seen


def answer_of(app: Any, event: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = make_handler(app)(event, None)
    return answer


# --- serverless-wsgi -------------------------------------------------------------------------


def test_v2_stage_is_not_counted_twice() -> None:
    """serverless-wsgi: SCRIPT_NAME "/dev" and PATH_INFO "/dev/hello" on HTTP API v2."""
    seen = environ_of(make_v2_event(path="/hello", stage="dev"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/dev", "/hello")
    assert seen["REQUEST_URI"] == "/dev/hello"


def test_v1_stage_on_execute_api_domain_only() -> None:
    seen = environ_of(make_v1_event(path="/hello", stage="dev"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/dev", "/hello")
    seen = environ_of(make_v1_event(path="/hello", stage="dev", domain="api.example.com"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/hello")
    seen = environ_of(make_v2_event(path="/hello", stage="dev", domain="api.example.com"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/hello")


def test_alb_script_name_is_empty() -> None:
    """serverless-wsgi: SCRIPT_NAME "/" on ALB, so url_for() builds "//path"."""
    for event in (make_alb_event(path="/x"), make_alb_event(path="/x", multi_value=True)):
        seen = environ_of(event)
        assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/x")


def test_eventbridge_event_is_not_answered_with_an_empty_dict() -> None:
    """serverless-wsgi: every EventBridge event silently answered {}."""
    event = {
        "version": "0",
        "source": "aws.events",
        "detail-type": "Scheduled Event",
        "detail": {},
        "resources": [],
    }
    with pytest.raises(ProtocolError, match="not an HTTP event"):
        make_handler(echo_app)(event, None)


# --- Zappa -----------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [make_v2_event, make_function_url_event])
def test_default_stage_is_no_script_name(builder: Any) -> None:
    """Zappa: SCRIPT_NAME "/$default" on Function URLs and HTTP APIs (redirect loops)."""
    seen = environ_of(builder(path="/login"))
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("", "/login")


def test_repeated_v2_query_keys_are_kept() -> None:
    """Zappa: repeated v2 query keys lost (built from queryStringParameters)."""
    seen = environ_of(make_v2_event(query="tag=a&tag=b%2Cc&x=%20"))
    assert seen["QUERY_STRING"] == "tag=a&tag=b%2Cc&x=%20"


# --- apig-wsgi -------------------------------------------------------------------------------


@pytest.mark.parametrize("builder", [make_v1_event, make_v2_event, make_alb_event])
def test_non_utf8_body_without_binary_support(builder: Any) -> None:
    """apig-wsgi: UnicodeDecodeError on a non-UTF-8 body when binary support is off."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain; charset=latin-1")])
        return ["café".encode("latin-1")]

    answer = answer_of(app, builder())
    assert answer["statusCode"] == 200
    assert answer["isBase64Encoded"] is True
    assert parse_response("rest", answer)[2] == b"caf\xe9"


def test_v1_remote_addr_from_identity_source_ip() -> None:
    """apig-wsgi: ignores requestContext.identity.sourceIp on v1 (no REMOTE_ADDR)."""
    seen = environ_of(make_v1_event(source_ip="203.0.113.9"))
    assert seen["REMOTE_ADDR"] == "203.0.113.9"
    assert environ_of(powertools("apiGatewayProxyEvent"))["REMOTE_ADDR"] == "192.168.0.1"


def test_v2_repeated_non_cookie_headers_are_all_kept() -> None:
    """apig-wsgi: keeps only the last of repeated non-cookie headers on v2."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Link", "</a>; rel=preload"), ("Link", "</b>; rel=preload")])
        return [b""]

    answer = answer_of(app, make_v2_event())
    assert answer["headers"]["Link"] == "</a>; rel=preload, </b>; rel=preload"


# --- Mangum ----------------------------------------------------------------------------------


def test_lattice_v2_is_not_read_as_http_api() -> None:
    """Mangum: Lattice v2 ("version": "2.0") misread as HTTP API, KeyError 'http'."""
    for event in (powertools("vpcLatticeV2Event"), make_lattice_v2_event(path="/p", query="a=1")):
        seen = environ_of(event)
        assert seen["wsgigate.event_source"] == "lattice_v2"
        assert seen["REQUEST_METHOD"] == "GET"


def test_alb_remote_addr_is_one_address() -> None:
    """Mangum: ALB REMOTE_ADDR (scope client) = the whole X-Forwarded-For list."""
    event = make_alb_event(client_ip="198.51.100.1, 10.0.0.2")
    assert environ_of(event)["REMOTE_ADDR"] == "10.0.0.2"  # the hop the ALB saw
    event = make_alb_event(client_ip="198.51.100.1, 10.0.0.2", multi_value=True)
    assert environ_of(event)["REMOTE_ADDR"] == "10.0.0.2"


def test_edge_keeps_every_set_cookie() -> None:
    """Mangum: Lambda@Edge keeps one of two Set-Cookie headers."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        return [b""]

    answer = answer_of(app, make_edge_event())
    assert answer["headers"]["set-cookie"] == [
        {"key": "Set-Cookie", "value": "a=1"},
        {"key": "Set-Cookie", "value": "b=2"},
    ]


def test_alb_without_multi_value_headers_keeps_every_set_cookie() -> None:
    """apig-wsgi: ALB without multi-value headers drops all Set-Cookie but one."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Set-Cookie", f"c{i}=v") for i in range(5)])
        return [b""]

    headers = answer_of(app, make_alb_event())["headers"]
    cookies = sorted(v for k, v in headers.items() if k.lower() == "set-cookie")
    assert cookies == [f"c{i}=v" for i in range(5)]
    assert len({k for k in headers if k.lower() == "set-cookie"}) == 5


# --- path decoding, stages, odd shapes --------------------------------------------------------


def test_path_decoding_per_source() -> None:
    """HTTP APIs pass the path decoded; REST, Function URLs and ALB keep the encoding."""
    encoded = "/a%2Fb/caf%C3%A9%20x"
    for event in (
        make_v1_event(path=encoded),
        make_function_url_event(path=encoded),
        make_alb_event(path=encoded),
        make_edge_event(path=encoded),
    ):
        seen = environ_of(event)
        assert seen["PATH_INFO"] == "/a/b/caf\xc3\xa9 x"
        assert seen["REQUEST_URI"] == encoded  # %2F survives where the event kept it
    event = make_v2_event(path=encoded)
    assert event["rawPath"] == "/a/b/café x"  # API Gateway decoded it already
    seen = environ_of(event)
    assert seen["PATH_INFO"] == "/a/b/caf\xc3\xa9 x"
    assert seen["REQUEST_URI"] == "/a/b/caf%C3%A9%20x"
    # A literal % in a decoded HTTP API path is not decoded a second time.
    assert environ_of(make_v2_event(path="/100%2541"))["PATH_INFO"] == "/100%41"


def test_v2_trailing_slash_from_raw_path() -> None:
    """requestContext.http.path drops trailing slashes; rawPath does not."""
    event = powertools("apiGatewayProxyV2EventPathTrailingSlash")
    assert event["requestContext"]["http"]["path"] != event["rawPath"]
    assert environ_of(event)["PATH_INFO"] == "/my/path/"
    assert environ_of(make_v2_event(path="/dir/"))["PATH_INFO"] == "/dir/"


def test_alb_health_check_without_host() -> None:
    seen = environ_of(make_alb_event(host="", path="/health", proto="http"))
    assert seen["SERVER_NAME"] == "localhost"
    assert seen["SERVER_PORT"] == "80"
    assert "HTTP_HOST" not in seen


@pytest.mark.parametrize("field", ["requestContext", "headers", "multiValueHeaders"])
def test_null_fields(field: str) -> None:
    for event in (make_v1_event(), make_alb_event(), make_alb_event(multi_value=True)):
        if field == "requestContext" and "elb" in (event.get("requestContext") or {}):
            continue
        event[field] = None
        seen = environ_of(event)
        assert seen["PATH_INFO"] == "/"
    event = make_v2_event()
    event[field] = None
    assert environ_of(event)["PATH_INFO"] == "/"


def test_binary_decision_order() -> None:
    """Content-Encoding first, then the type, the UTF-8 check last, an override above all."""
    from wsgigate.aws_lambda import default_is_binary

    assert default_is_binary([("Content-Type", "text/plain"), ("Content-Encoding", "gzip")])
    assert not default_is_binary([("Content-Encoding", "identity"), ("Content-Type", "text/x")])
    for text in (
        "text/csv",
        "application/json",
        "application/ld+json",
        "image/svg+xml",
        "application/javascript",
        "application/x-yaml",
        "application/xml",
    ):
        assert default_is_binary([("Content-Type", text)]) is False, text
    for binary in ("image/png", "application/pdf", "font/woff2", "application/octet-stream"):
        assert default_is_binary([("Content-Type", binary)]) is True, binary
    assert default_is_binary([]) is None  # no type: the UTF-8 check decides


@pytest.mark.parametrize(
    "fields",
    [
        {"headers": {"X-Num": 5}, "multiValueHeaders": None},
        {"multiValueHeaders": {"X-List": [None, "a"]}},
        {"httpMethod": None},
        {"httpMethod": "GET /x"},
        {"path": 17},
        {"multiValueQueryStringParameters": {"a": [3]}},
        {"requestContext": {"identity": "not a dict"}},
    ],
)
def test_malformed_event_is_a_400_and_the_handler_keeps_serving(
    fields: dict[str, Any], error_log: pytest.LogCaptureFixture
) -> None:
    handler = make_handler(echo_app)
    event = make_v1_event()
    event.update(fields)
    answer = handler(event, None)
    assert answer["statusCode"] == 400
    assert "Traceback" not in answer["body"]
    assert "malformed rest event" in error_log.text or "invalid request method" in error_log.text
    assert handler(make_v1_event(), None)["statusCode"] == 200
