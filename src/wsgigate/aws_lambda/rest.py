"""API Gateway REST APIs (payload format 1.0), including ``multiValueHeaders``.

- ``path`` is the resource path without the stage and keeps the client's percent-encoding.
- SCRIPT_NAME is ``/{stage}`` only when the request came through the ``execute-api`` domain (a
  custom domain maps its own base path: pass ``base_path=``); the ``$default`` stage adds nothing.
- REMOTE_ADDR comes from ``requestContext.identity.sourceIp``.
- The answer uses ``multiValueHeaders`` so repeated headers and every Set-Cookie survive.
"""

from __future__ import annotations

from wsgigate.aws_lambda._common import (
    add_headers,
    add_multi_headers,
    encode_body,
    infer_rest,
    multi_value,
    path_to_wsgi,
    query_from_multi,
    request_body,
    source_ip,
    split_prefix,
    status_code,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda._handler import Headers, Options

name = "rest"
infer = infer_rest  # the shape test lives in _common: detection imports no source


def stage_prefix(context: dict[str, Any]) -> str:
    """``/{stage}`` when API Gateway's own domain put the stage in the URL, else ``""``."""
    stage = context.get("stage")
    if not stage or stage == "$default":
        return ""
    domain = context.get("domainName") or ""
    if ".execute-api." not in domain:
        return ""
    return "/" + str(stage)


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    context = event.get("requestContext") or {}
    meta: dict[str, str] = {"REQUEST_METHOD": event["httpMethod"]}
    multi = event.get("multiValueHeaders")
    if multi:
        add_multi_headers(meta, multi)
    else:
        add_headers(meta, event.get("headers"))
    raw_path = event.get("path") or "/"
    script = stage_prefix(context)
    base, raw_path = split_prefix(raw_path, options.base_path)
    query = query_from_multi(
        event.get("multiValueQueryStringParameters") or event.get("queryStringParameters"),
        encode=True,
    )
    meta["SCRIPT_NAME"] = path_to_wsgi(script + base, encoded=True)
    meta["PATH_INFO"] = path_to_wsgi(raw_path, encoded=True)
    meta["QUERY_STRING"] = query
    meta["REQUEST_URI"] = script + base + raw_path + ("?" + query if query else "")
    meta["SERVER_PROTOCOL"] = context.get("protocol") or "HTTP/1.1"
    identity = context.get("identity") or {}
    client = source_ip(identity.get("sourceIp"))
    if client:  # unknown stays unset rather than made up
        meta["REMOTE_ADDR"] = client
    scheme = meta.get("HTTP_X_FORWARDED_PROTO", "https").rpartition(",")[2].strip().lower()
    if scheme == "https":
        meta["HTTPS"] = "on"
    meta["SERVER_PORT"] = meta.get("HTTP_X_FORWARDED_PORT", "").rpartition(",")[2].strip() or (
        "443" if scheme == "https" else "80"
    )
    if "HTTP_HOST" not in meta and context.get("domainName"):
        meta["SERVER_NAME"] = context["domainName"]
    return meta, request_body(event.get("body"), event.get("isBase64Encoded"))


def response(
    status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
) -> dict[str, Any]:
    text, is_base64 = encode_body(body, headers, options.is_binary)
    return {
        "statusCode": status_code(status),
        "multiValueHeaders": multi_value(headers),
        "body": text,
        "isBase64Encoded": is_base64,
    }
