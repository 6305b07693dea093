"""API Gateway HTTP APIs (payload format 2.0): ``rawPath``, ``rawQueryString``, ``cookies``.

- HTTP APIs hand ``rawPath`` over already percent-decoded, so it is taken as it is (``%2F`` has
  become ``/`` before we see it); ``requestContext.http.path`` drops trailing slashes and is not
  used.
- Through the ``execute-api`` domain a named stage is the first segment of ``rawPath``: it moves
  to SCRIPT_NAME (never twice); ``$default`` adds nothing; ``base_path=`` for custom domains.
- ``rawQueryString`` is the query exactly as sent (repeated keys and encodings intact).
- The answer carries Set-Cookie in ``cookies`` and every other repeated header comma-joined.
"""

from __future__ import annotations

from wsgigate.aws_lambda._common import (
    add_headers,
    encode_body,
    infer_http_api,
    path_to_wsgi,
    quote_path,
    request_body,
    source_ip,
    split_cookies,
    split_prefix,
    status_code,
)
from wsgigate.aws_lambda.rest import stage_prefix

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda._handler import Headers, Options

name = "http_api"
infer = infer_http_api  # the shape test lives in _common: detection imports no source


def v2_environ(
    event: dict[str, Any], options: Options, *, path_encoded: bool, stage: str
) -> tuple[dict[str, str], bytes]:
    """Meta-variables of a payload format 2.0 event (HTTP APIs and Function URLs)."""
    context = event.get("requestContext") or {}
    http = context.get("http") or {}
    meta: dict[str, str] = {"REQUEST_METHOD": http.get("method") or "GET"}
    add_headers(meta, event.get("headers"))
    cookies = event.get("cookies")
    if cookies:
        meta["HTTP_COOKIE"] = path_to_wsgi("; ".join(cookies), encoded=False)
    raw_path = event.get("rawPath") or "/"
    script = ""
    if stage:
        script, raw_path = split_prefix(raw_path, stage)
    if options.base_path:
        base, raw_path = split_prefix(raw_path, options.base_path)
        script += base
    query = event.get("rawQueryString") or ""
    uri = script + raw_path
    if script:
        meta["SCRIPT_NAME"] = path_to_wsgi(script, encoded=path_encoded)
    if raw_path.isascii() and (not path_encoded or "%" not in raw_path):
        meta["PATH_INFO"] = raw_path
    else:
        meta["PATH_INFO"] = path_to_wsgi(raw_path, encoded=path_encoded)
    if not path_encoded:
        uri = quote_path(uri)
    meta["QUERY_STRING"] = query
    meta["REQUEST_URI"] = uri + "?" + query if query else uri
    meta["SERVER_PROTOCOL"] = http.get("protocol") or "HTTP/1.1"
    client = source_ip(http.get("sourceIp"))
    if client:  # unknown stays unset rather than made up
        meta["REMOTE_ADDR"] = client
    proto = meta.get("HTTP_X_FORWARDED_PROTO")
    if proto is None or proto.rpartition(",")[2].strip().lower() == "https":
        meta["HTTPS"] = "on"
        default_port = "443"
    else:
        default_port = "80"
    port = meta.get("HTTP_X_FORWARDED_PORT")
    meta["SERVER_PORT"] = port.rpartition(",")[2].strip() if port else default_port
    if "HTTP_HOST" not in meta and "domainName" in context:
        meta["SERVER_NAME"] = context["domainName"]
    return meta, request_body(event.get("body"), event.get("isBase64Encoded"))


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    stage = stage_prefix(event.get("requestContext") or {})
    return v2_environ(event, options, path_encoded=False, stage=stage)


def response(
    status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
) -> dict[str, Any]:
    text, is_base64 = encode_body(body, headers, options.is_binary)
    single, cookies = split_cookies(headers)
    answer: dict[str, Any] = {
        "statusCode": status_code(status),
        "headers": single,
        "body": text,
        "isBase64Encoded": is_base64,
    }
    if cookies:
        answer["cookies"] = cookies
    return answer
