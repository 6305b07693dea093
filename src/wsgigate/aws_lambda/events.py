"""Keyword builders for Lambda HTTP events, one per event source.

``make_v1_event(method="POST", path="/a%20b", query="x=1&x=2", headers=[...], body=b"...")``
returns the event API Gateway would send for that request, in the shape of the real payloads
(see the AWS samples under ``shared/events/``). ``path`` and ``query`` are given as on the wire
(percent-encoded); each builder decodes them where its front end does. Used by the tests,
``wsgigate lambda invoke --method/--path`` and ``wsgigate check``.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    HeaderItems = Iterable[tuple[str, str]]

_BINARY_TYPES = ("image/", "audio/", "video/", "application/octet-stream", "application/zip")


def _body(
    body: bytes, headers: list[tuple[str, str]], base64_body: bool | None
) -> tuple[str, bool]:
    if base64_body is None:
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        try:
            body.decode("utf-8")
            base64_body = content_type.startswith(_BINARY_TYPES)
        except UnicodeDecodeError:
            base64_body = True
    if base64_body:
        return base64.b64encode(body).decode("ascii"), True
    return body.decode("utf-8"), False


def _with_host(headers: HeaderItems, host: str, body: bytes = b"") -> list[tuple[str, str]]:
    """The request headers plus Host and, for a body, Content-Length (as front ends add them)."""
    items = list(headers)
    if host and not any(k.lower() == "host" for k, _ in items):
        items.insert(0, ("Host", host))
    if body and not any(k.lower() == "content-length" for k, _ in items):
        items.append(("Content-Length", str(len(body))))
    return items


def _single(items: list[tuple[str, str]], joiner: str = ",") -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in items:
        out[name] = out[name] + joiner + value if name in out else value
    return out


def _multi(items: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in items:
        out.setdefault(name, []).append(value)
    return out


def _query_multi(query: str, *, decode: bool) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if decode:
        for key, value in parse_qsl(query, keep_blank_values=True):
            out.setdefault(key, []).append(value)
    else:
        for part in query.split("&"):
            if part:
                key, _, value = part.partition("=")
                out.setdefault(key, []).append(value)
    return out


def make_v1_event(
    *,
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: HeaderItems = (),
    body: bytes = b"",
    base64_body: bool | None = None,
    stage: str = "$default",
    domain: str = "id.execute-api.us-east-1.amazonaws.com",
    source_ip: str = "192.0.2.10",
    multi_value: bool = True,
) -> dict[str, Any]:
    """An API Gateway REST (payload 1.0) event."""
    items = _with_host(headers, domain, body)
    text, is_b64 = _body(body, items, base64_body)
    mvq = _query_multi(query, decode=True)
    stage_path = path if stage == "$default" else f"/{stage}{path}"
    return {
        "version": "1.0",
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": _single(items) if items else None,
        "multiValueHeaders": (_multi(items) if items else None) if multi_value else None,
        "queryStringParameters": {k: v[-1] for k, v in mvq.items()} if mvq else None,
        "multiValueQueryStringParameters": mvq or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.partition(".")[0],
            "domainName": domain,
            "domainPrefix": domain.partition(".")[0],
            "httpMethod": method,
            "identity": {"sourceIp": source_ip, "userAgent": "builder"},
            "path": stage_path,
            "protocol": "HTTP/1.1",
            "requestId": "request-id",
            "resourcePath": "/{proxy+}",
            "stage": stage,
        },
        "pathParameters": None,
        "stageVariables": None,
        "body": text or None,
        "isBase64Encoded": is_b64,
    }


def make_v2_event(
    *,
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: HeaderItems = (),
    body: bytes = b"",
    base64_body: bool | None = None,
    stage: str = "$default",
    domain: str = "id.execute-api.us-east-1.amazonaws.com",
    source_ip: str = "192.0.2.20",
    function_url: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, or a Function URL event."""
    if function_url and ".lambda-url." not in domain:
        domain = "abcdefgh.lambda-url.us-east-1.on.aws"
    items = _with_host(headers, domain, body)
    cookies = [
        c.strip() for k, v in items if k.lower() == "cookie" for c in v.split(";") if c.strip()
    ]
    items = [(k.lower(), v) for k, v in items if k.lower() != "cookie"]
    text, is_b64 = _body(body, items, base64_body)
    # HTTP APIs decode the path; Function URLs keep it as sent.
    raw_path = path if function_url else unquote(path)
    if stage != "$default" and ".execute-api." in domain:
        raw_path = f"/{stage}{raw_path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": _single(items),
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.partition(".")[0],
            "domainName": domain,
            "domainPrefix": domain.partition(".")[0],
            "http": {
                "method": method,
                "path": raw_path.rstrip("/") or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": "builder",
            },
            "requestId": "request-id",
            "routeKey": "$default",
            "stage": stage,
        },
        "isBase64Encoded": is_b64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = {
            k: ",".join(v) for k, v in _query_multi(query, decode=True).items()
        }
    if text:
        event["body"] = text
    return event


def make_function_url_event(**kwargs: Any) -> dict[str, Any]:
    """A Lambda Function URL event (payload 2.0 on ``*.lambda-url.*.on.aws``)."""
    kwargs.setdefault("domain", "abcdefgh.lambda-url.us-east-1.on.aws")
    return make_v2_event(function_url=True, **kwargs)


def make_alb_event(
    *,
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: HeaderItems = (),
    body: bytes = b"",
    base64_body: bool | None = None,
    multi_value: bool = False,
    host: str = "lb-123.us-east-1.elb.amazonaws.com",
    client_ip: str = "198.51.100.7",
    proto: str = "https",
) -> dict[str, Any]:
    """An Application Load Balancer event; ``host=""`` for a health check without Host."""
    items = [(k.lower(), v) for k, v in _with_host(headers, host, body)]
    items += [
        ("x-forwarded-for", client_ip),
        ("x-forwarded-proto", proto),
        ("x-forwarded-port", "443" if proto == "https" else "80"),
    ]
    text, is_b64 = _body(body, items, base64_body)
    params = _query_multi(query, decode=False)
    event: dict[str, Any] = {
        "requestContext": {
            "elb": {
                "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                "targetgroup/lambda/0123456789abcdef"
            }
        },
        "httpMethod": method,
        "path": path,
        "body": text,
        "isBase64Encoded": is_b64,
    }
    if multi_value:
        event["multiValueHeaders"] = _multi(items)
        event["multiValueQueryStringParameters"] = params
    else:
        event["headers"] = _single(items, ", ")
        event["queryStringParameters"] = {k: v[-1] for k, v in params.items()}
    return event


def make_lattice_event(
    *,
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: HeaderItems = (),
    body: bytes = b"",
    base64_body: bool | None = None,
    host: str = "svc-123.7d67968.vpc-lattice-svcs.us-east-1.on.aws",
    client_ip: str = "10.0.0.7",
) -> dict[str, Any]:
    """A VPC Lattice version 1 event."""
    items = [(k.lower(), v) for k, v in _with_host(headers, host, body)]
    items.append(("x-forwarded-for", client_ip))
    text, is_b64 = _body(body, items, base64_body)
    return {
        "raw_path": path + ("?" + query if query else ""),
        "method": method,
        "headers": _single(items),
        "query_string_parameters": {k: v[-1] for k, v in _query_multi(query, decode=True).items()},
        "body": text,
        "is_base64_encoded": is_b64,
    }


def make_lattice_v2_event(
    *,
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: HeaderItems = (),
    body: bytes = b"",
    base64_body: bool | None = None,
    host: str = "svc-123.7d67968.vpc-lattice-svcs.us-east-1.on.aws",
    client_ip: str = "10.0.0.8",
) -> dict[str, Any]:
    """A VPC Lattice version 2.0 event (multi-value headers and query parameters)."""
    items = [(k.lower(), v) for k, v in _with_host(headers, host, body)]
    items.append(("x-forwarded-for", client_ip))
    text, is_b64 = _body(body, items, base64_body)
    return {
        "version": "2.0",
        "path": path + ("?" + query if query else ""),
        "method": method,
        "headers": _multi(items),
        "queryStringParameters": _query_multi(query, decode=True),
        "body": text,
        "isBase64Encoded": is_b64,
        "requestContext": {
            "serviceNetworkArn": "arn:aws:vpc-lattice:us-east-1:123456789012:servicenetwork/sn-1",
            "serviceArn": "arn:aws:vpc-lattice:us-east-1:123456789012:service/svc-1",
            "targetGroupArn": "arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-1",
            "identity": {"type": "NONE"},
            "region": "us-east-1",
            "timeEpoch": "1696331543569073",
        },
    }


def make_edge_event(
    *,
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: HeaderItems = (),
    body: bytes = b"",
    host: str = "d111111abcdef8.cloudfront.net",
    client_ip: str = "203.0.113.178",
) -> dict[str, Any]:
    """A Lambda@Edge origin-request event (body included, base64)."""
    items = _with_host(headers, host, body)
    edge_headers: dict[str, list[dict[str, str]]] = {}
    for name, value in items:
        edge_headers.setdefault(name.lower(), []).append({"key": name, "value": value})
    request: dict[str, Any] = {
        "clientIp": client_ip,
        "headers": edge_headers,
        "method": method,
        "querystring": query,
        "uri": path,
    }
    if body:
        request["body"] = {
            "inputTruncated": False,
            "action": "read-only",
            "encoding": "base64",
            "data": base64.b64encode(body).decode("ascii"),
        }
    return {
        "Records": [
            {
                "cf": {
                    "config": {
                        "distributionDomainName": host or "d111111abcdef8.cloudfront.net",
                        "distributionId": "EDFDVBD6EXAMPLE",
                        "eventType": "origin-request",
                        "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
                    },
                    "request": request,
                }
            }
        ]
    }


# Source name -> builder, for ``wsgigate lambda invoke --source`` and ``wsgigate check``.
BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "rest": make_v1_event,
    "http_api": make_v2_event,
    "function_url": make_function_url_event,
    "alb": make_alb_event,
    "alb_multi": lambda **kw: make_alb_event(multi_value=True, **kw),
    "lattice": make_lattice_event,
    "lattice_v2": make_lattice_v2_event,
    "edge": make_edge_event,
}


def parse_response(source: str, answer: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body bytes of a handler's answer for ``source`` (for tests/check)."""
    if source == "edge":
        status = int(answer["status"])
        headers = [(h["key"], h["value"]) for hs in answer["headers"].values() for h in hs]
        is_b64 = answer.get("bodyEncoding") == "base64"
    else:
        status = answer["statusCode"]
        headers = [(k, v) for k, vs in (answer.get("multiValueHeaders") or {}).items() for v in vs]
        headers += list((answer.get("headers") or {}).items())
        headers += [("Set-Cookie", c) for c in answer.get("cookies") or ()]
        is_b64 = answer.get("isBase64Encoded")
    text = answer.get("body") or ""
    body = base64.b64decode(text) if is_b64 else text.encode("utf-8")
    return status, headers, body
