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

from wsgigate.aws_lambda import infer_alb
from wsgigate.aws_lambda._common import (
    add_headers,
    add_multi_headers,
    cached_status_code,
    encode_body,
    forwarded_scheme,
    multi_value,
    path_to_wsgi,
    query_from_multi,
    request_body,
    single_value_with_cookies,
    split_prefix,
)
from wsgigate.core import unicode_to_wsgi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda import Headers, Options

name = "alb"
infer = infer_alb  # the shape test lives in the package: detection imports no source


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    # Runs on every event: helpers only where a field needs work, the plain case inline.
    meta: dict[str, str] = {"REQUEST_METHOD": event["httpMethod"]}
    multi = event.get("multiValueHeaders")
    if multi is not None:
        add_multi_headers(meta, multi)
        params = event.get("multiValueQueryStringParameters")
    else:
        add_headers(meta, event.get("headers"))
        params = event.get("queryStringParameters")
    query = query_from_multi(params, encode=False) if params else ""
    raw_path = event.get("path") or "/"
    if options.base_path:
        base, raw_path = split_prefix(raw_path, options.base_path)
        meta["SCRIPT_NAME"] = path_to_wsgi(base, encoded=True)
    else:
        base = meta["SCRIPT_NAME"] = ""
    if raw_path.isascii() and "%" not in raw_path:
        meta["PATH_INFO"] = raw_path
    else:
        meta["PATH_INFO"] = path_to_wsgi(raw_path, encoded=True)
    if query and not query.isascii():
        query = unicode_to_wsgi(query)
    meta["QUERY_STRING"] = query
    uri = base + raw_path
    if not uri.isascii():  # raw non-ASCII: UTF-8 bytes as latin-1 (PEP 3333)
        uri = unicode_to_wsgi(uri)
    meta["REQUEST_URI"] = f"{uri}?{query}" if query else uri
    # The last entry of each X-Forwarded-* header is what the load balancer itself saw.
    client = meta.get("HTTP_X_FORWARDED_FOR")
    if client:  # unknown stays unset rather than made up
        client = client.rpartition(",")[2].strip()
        if client:
            meta["REMOTE_ADDR"] = client
    forwarded_scheme(meta, False)
    return meta, request_body(event.get("body"), event.get("isBase64Encoded"))


def response(
    status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
) -> dict[str, Any]:
    text, is_base64 = encode_body(body, headers, options.is_binary)
    answer: dict[str, Any] = {
        "statusCode": cached_status_code(status) or int(status[:3]),
        "statusDescription": status,
        "body": text,
        "isBase64Encoded": is_base64,
    }
    if event.get("multiValueHeaders") is not None:
        answer["multiValueHeaders"] = multi_value(headers)
    else:
        answer["headers"] = single_value_with_cookies(headers)
    return answer
