"""Application Load Balancer targets, with and without multi-value headers.

- ``path`` and the query parameters arrive as the client sent them (ALB decodes neither): the
  path is percent-decoded once for PATH_INFO, the query is joined back without re-encoding.
- REMOTE_ADDR is the last ``X-Forwarded-For`` entry (the address the ALB saw, which a client
  cannot forge); scheme and port come from ``X-Forwarded-Proto``/``-Port``.
- Health checks come without a Host header: SERVER_NAME falls back to ``localhost``.
- The answer is in the style of the request: ``multiValueHeaders`` if the target group has them
  on, else single-value ``headers`` where several Set-Cookie still all arrive (one spelling of
  the header name each, as HTTP names are case-insensitive).
"""

from __future__ import annotations

from wsgigate.aws_lambda._common import (
    add_headers,
    add_multi_headers,
    encode_body,
    forwarded_for,
    infer_alb,
    multi_value,
    path_to_wsgi,
    query_from_multi,
    request_body,
    single_value_with_cookies,
    split_prefix,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda._handler import Headers, Options

name = "alb"
infer = infer_alb  # the shape test lives in _common: detection imports no source


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    meta: dict[str, str] = {"REQUEST_METHOD": event["httpMethod"]}
    multi = event.get("multiValueHeaders")
    if multi is not None:
        add_multi_headers(meta, multi)
        params = event.get("multiValueQueryStringParameters")
    else:
        add_headers(meta, event.get("headers"))
        params = event.get("queryStringParameters")
    query = query_from_multi(params, encode=False)
    base, raw_path = split_prefix(event.get("path") or "/", options.base_path)
    meta["SCRIPT_NAME"] = path_to_wsgi(base, encoded=True)
    meta["PATH_INFO"] = path_to_wsgi(raw_path, encoded=True)
    meta["QUERY_STRING"] = query
    meta["REQUEST_URI"] = base + raw_path + ("?" + query if query else "")
    client = forwarded_for(meta.get("HTTP_X_FORWARDED_FOR"))
    if client:  # unknown stays unset rather than made up
        meta["REMOTE_ADDR"] = client
    scheme = forwarded_for(meta.get("HTTP_X_FORWARDED_PROTO")).lower() or "http"
    if scheme == "https":
        meta["HTTPS"] = "on"
    port = forwarded_for(meta.get("HTTP_X_FORWARDED_PORT"))
    if port:
        meta["SERVER_PORT"] = port
    return meta, request_body(event.get("body"), event.get("isBase64Encoded"))


def response(
    status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
) -> dict[str, Any]:
    text, is_base64 = encode_body(body, headers, options.is_binary)
    answer: dict[str, Any] = {
        "statusCode": int(status[:3]),
        "statusDescription": status,
        "body": text,
        "isBase64Encoded": is_base64,
    }
    if event.get("multiValueHeaders") is not None:
        answer["multiValueHeaders"] = multi_value(headers)
    else:
        answer["headers"] = single_value_with_cookies(headers)
    return answer
