"""Every AWS Powertools sample event through the handler, the environ checked field by field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.lambda_events import POWERTOOLS, parse_response, powertools, powertools_names
from wsgigate.aws_lambda import make_handler


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    seen = {key: value for key, value in environ.items() if isinstance(value, str)}
    seen["body"] = body.decode("latin-1")
    seen["has_event"] = environ["aws.event"] is not None
    seen["context"] = repr(environ["aws.context"])
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


API = "id.execute-api.us-east-1.amazonaws.com"
MULTI_Q = "parameter1=value1&parameter1=value2&parameter2=value"
ALB1 = "lambda-alb-123578498.us-east-2.elb.amazonaws.com"
ALB2 = "alb-c-LoadB-14POFKYCLBNSF-1815800096.eu-central-1.elb.amazonaws.com"
URL_E1 = "<url-id>.lambda-url.us-east-1.on.aws"
URL_W2 = "<url-id>.lambda-url.us-west-2.on.aws"
LAT1 = "test-lambda-service-3908sdf9u3u.dkfjd93.vpc-lattice-svcs.us-east-2.on.aws"
LAT2 = "lattice-svc-027b423199122da5f.7d67968.vpc-lattice-svcs.us-east-1.on.aws"
JSON_BODY = '{"message": "hello world", "username": "tom"}'
LAT_BODY = '{"message": "Hello from Lambda!"}'

# name: source, method, PATH_INFO, QUERY_STRING, REMOTE_ADDR, SERVER_NAME, port, scheme,
# HTTP_COOKIE, body
EXPECTED: dict[str, tuple[str, str, str, str, str | None, str, str, str, str | None, str]] = {
    "albEvent": (
        "alb",
        "GET",
        "/lambda",
        "query=1234ABCD",
        "72.12.164.125",
        ALB1,
        "80",
        "http",
        None,
        "Test",
    ),
    "albEventPathTrailingSlash": (
        "alb",
        "GET",
        "/lambda/",
        "query=1234ABCD",
        "72.12.164.125",
        ALB1,
        "80",
        "http",
        None,
        "Test",
    ),
    "albMultiValueHeadersEvent": (
        "alb",
        "GET",
        "/todos",
        "",
        "123.123.123.123",
        ALB2,
        "80",
        "http",
        None,
        "",
    ),
    "albMultiValueQueryStringEvent": (
        "alb",
        "GET",
        "/todos",
        MULTI_Q,
        "123.123.123.123",
        ALB2,
        "80",
        "http",
        None,
        "",
    ),
    "apiGatewayProxyEvent": (
        "rest",
        "GET",
        "/my/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        None,
        "Hello from Lambda!",
    ),
    "apiGatewayProxyEventNoOrigin": (
        "rest",
        "GET",
        "/my/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        None,
        "Hello from Lambda!",
    ),
    "apiGatewayProxyEventPrincipalId": (
        "rest",
        "POST",
        "/trip",
        "",
        None,
        "localhost",
        "443",
        "https",
        None,
        "",
    ),
    "apiGatewayProxyOtherEvent": (
        "rest",
        "GET",
        "/other/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        None,
        "Hello from Lambda!",
    ),
    "apiGatewayProxyV2Event": (
        "http_api",
        "POST",
        "/my/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        "cookie1; cookie2",
        JSON_BODY,
    ),
    "apiGatewayProxyV2EventPathTrailingSlash": (
        "http_api",
        "POST",
        "/my/path/",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        "cookie1; cookie2",
        JSON_BODY,
    ),
    "apiGatewayProxyV2Event_GET": (
        "http_api",
        "GET",
        "/my/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        "cookie1; cookie2",
        "",
    ),
    "apiGatewayProxyV2IamEvent": (
        "http_api",
        "GET",
        "/my/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        "cookie1; cookie2",
        '{\r\n\t"a": 1\r\n}',
    ),
    "apiGatewayProxyV2LambdaAuthorizerEvent": (
        "http_api",
        "GET",
        "/my/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        "cookie1; cookie2",
        '{\r\n\t"a": 1\r\n}',
    ),
    "apiGatewayProxyV2OtherGetEvent": (
        "http_api",
        "GET",
        "/other/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        "cookie1; cookie2",
        "",
    ),
    "apiGatewayProxyV2SchemaMiddlwareInvalidEvent": (
        "http_api",
        "POST",
        "/my/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        "cookie1; cookie2",
        '{"username": "lessa"}',
    ),
    "apiGatewayProxyV2SchemaMiddlwareValidEvent": (
        "http_api",
        "POST",
        "/my/path",
        MULTI_Q,
        "192.168.0.1",
        API,
        "443",
        "https",
        "cookie1; cookie2",
        '{"message": "hello world", "username": "lessa"}',
    ),
    "lambdaFunctionUrlEvent": (
        "function_url",
        "GET",
        "/",
        "",
        "123.123.123.123",
        URL_E1,
        "443",
        "https",
        None,
        "",
    ),
    "lambdaFunctionUrlEventPathTrailingSlash": (
        "function_url",
        "POST",
        "/my/path/",
        MULTI_Q,
        "123.123.123.123",
        URL_W2,
        "443",
        "https",
        "cookie1; cookie2",
        "Hello from client!",
    ),
    "lambdaFunctionUrlEventWithHeaders": (
        "function_url",
        "GET",
        "/",
        "",
        "123.123.123.123",
        URL_E1,
        "443",
        "https",
        None,
        "",
    ),
    "lambdaFunctionUrlIAMEvent": (
        "function_url",
        "POST",
        "/my/path",
        MULTI_Q,
        "123.123.123.123",
        URL_W2,
        "443",
        "https",
        "cookie1; cookie2",
        "Hello from client!",
    ),
    "vpcLatticeEvent": (
        "lattice",
        "GET",
        "/testpath",
        "order-id=1",
        "10.213.229.10",
        LAT1,
        "80",
        "http",
        None,
        '{"test": "event"}',
    ),
    "vpcLatticeEventPathTrailingSlash": (
        "lattice",
        "GET",
        "/testpath/",
        "order-id=1",
        "10.213.229.10",
        LAT1,
        "80",
        "http",
        None,
        '{"test": "event"}',
    ),
    "vpcLatticeEventV2PathTrailingSlash": (
        "lattice_v2",
        "GET",
        "/newpath/",
        "order-id=1",
        "10.213.229.10",
        LAT1,
        "80",
        "http",
        None,
        LAT_BODY,
    ),
    "vpcLatticeV2Event": (
        "lattice_v2",
        "GET",
        "/newpath",
        "order-id=1",
        "10.213.229.10",
        LAT1,
        "80",
        "http",
        None,
        LAT_BODY,
    ),
    "vpcLatticeV2EventWithHeaders": (
        "lattice_v2",
        "GET",
        "/newpath",
        MULTI_Q,
        "172.31.40.143",
        LAT2,
        "80",
        "http",
        None,
        LAT_BODY,
    ),
}

# These samples flag isBase64Encoded but carry "Hello from Lambda!", which is not base64.
NOT_BASE64 = {
    "apiGatewayProxyEventAnotherPath",
    "apiGatewayProxyEventPathTrailingSlash",
    "apiGatewayProxyEvent_noVersionAuth",
}


def test_every_sample_is_covered() -> None:
    assert (POWERTOOLS / "LICENSE").exists()
    assert set(powertools_names()) == set(EXPECTED) | NOT_BASE64


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_event_environ(name: str) -> None:
    source, method, path, query, remote, server, port, scheme, cookie, body = EXPECTED[name]
    event = powertools(name)
    answer = make_handler(echo_app)(event, "CTX")
    status, headers, raw = parse_response(source, answer)
    assert status == 200
    seen = json.loads(raw)
    assert seen["wsgigate.event_source"] == source
    assert seen["REQUEST_METHOD"] == method
    assert seen["SCRIPT_NAME"] == ""
    assert seen["PATH_INFO"] == path
    assert seen["QUERY_STRING"] == query
    assert seen.get("REMOTE_ADDR") == remote
    assert seen["SERVER_NAME"] == server
    assert seen["SERVER_PORT"] == port
    assert seen["wsgi.url_scheme"] == scheme
    assert seen.get("HTTP_COOKIE") == cookie
    assert seen["body"] == body
    assert seen.get("CONTENT_LENGTH") == (str(len(body.encode())) if body else None)
    assert seen["has_event"] is True
    assert seen["context"] == "'CTX'"
    assert seen["REQUEST_URI"] == path + ("?" + query if query else "")
    # No Host header: SERVER_NAME falls back to requestContext.domainName, else localhost.
    assert seen.get("HTTP_HOST", server) == server
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_sample_headers_are_joined_per_rfc9110() -> None:
    """Repeated request headers arrive comma-joined, whatever the event's header shape."""
    for name, key in [
        ("apiGatewayProxyEvent", "HTTP_HEADER2"),  # multiValueHeaders ["value1", "value2"]
        ("apiGatewayProxyV2Event", "HTTP_HEADER2"),  # already "value1,value2"
        ("vpcLatticeV2EventWithHeaders", "HTTP_HEADER2"),  # list in "headers"
        ("albMultiValueQueryStringEvent", "HTTP_HEADER2"),
    ]:
        answer = make_handler(echo_app)(powertools(name), None)
        seen = json.loads(parse_response("rest", answer)[2])
        assert seen[key].replace(" ", "") == "value1,value2", name
    seen = json.loads(
        parse_response("rest", make_handler(echo_app)(powertools("vpcLatticeEvent"), None))[2]
    )
    assert seen["HTTP_USER_AGENT"] == "curl/7.64.1"  # Lattice v1 writes user_agent


@pytest.mark.parametrize("name", sorted(NOT_BASE64))
def test_sample_with_bad_base64_body_is_a_clear_400(
    name: str, error_log: pytest.LogCaptureFixture
) -> None:
    handler = make_handler(echo_app)
    answer = handler(powertools(name), None)
    assert answer["statusCode"] == 400
    assert "not base64" in answer["body"]
    assert "not base64" in error_log.text
    # The handler keeps serving.
    assert handler(powertools("apiGatewayProxyEvent"), None)["statusCode"] == 200


@pytest.mark.parametrize(
    ("name", "proto", "port", "expected"),
    [
        # API Gateway speaks HTTPS only: no X-Forwarded-Proto means HTTPS
        ("apiGatewayProxyEvent", None, None, ("https", "443")),
        ("apiGatewayProxyV2Event", None, None, ("https", "443")),
        # the last entry is what the AWS front end saw; an empty one falls back to the scheme's
        ("apiGatewayProxyV2Event", "http, https", "8080, 443", ("https", "443")),
        ("apiGatewayProxyV2Event", "https", "443, ", ("https", "443")),
        ("apiGatewayProxyEvent", "http", None, ("http", "80")),
        # an ALB listener can be plain HTTP: no header means HTTP
        ("albEvent", None, None, ("http", "80")),
        ("albEvent", "https", "8443", ("https", "8443")),
    ],
)
def test_scheme_and_port_from_the_forwarded_headers(
    name: str, proto: str | None, port: str | None, expected: tuple[str, str]
) -> None:
    event = powertools(name)
    headers = {
        key: value
        for key, value in (event.get("headers") or {}).items()
        if key.lower() not in ("x-forwarded-proto", "x-forwarded-port")
    }
    event.pop("multiValueHeaders", None)
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    if port is not None:
        headers["X-Forwarded-Port"] = port
    event["headers"] = headers
    seen = json.loads(parse_response("rest", make_handler(echo_app)(event, None))[2])
    assert (seen["wsgi.url_scheme"], seen["SERVER_PORT"]) == expected
