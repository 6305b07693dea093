"""API Gateway REST APIs (payload format 1.0), including ``multiValueHeaders``.

- ``path`` is the resource path without the stage and keeps the client's percent-encoding.
- SCRIPT_NAME is ``/{stage}`` only when the request came through the ``execute-api`` domain (a
  custom domain maps its own base path: pass ``base_path=``); the ``$default`` stage adds nothing.
- REMOTE_ADDR comes from ``requestContext.identity.sourceIp``.
- The answer uses ``multiValueHeaders`` so repeated headers and every Set-Cookie survive.
"""

from __future__ import annotations

from wsgigate.aws_lambda import infer_rest
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
    split_prefix,
)
from wsgigate.core import unicode_to_wsgi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda import Headers, Options

_NONE: dict[str, Any] = {}
name = "rest"
infer = infer_rest  # the shape test lives in the package: detection imports no source


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    # Runs on every event: helpers only where a field needs work, the plain case inline.
    context = event.get("requestContext") or _NONE
    meta: dict[str, str] = {
        "REQUEST_METHOD": event["httpMethod"],
        "SERVER_PROTOCOL": context.get("protocol") or "HTTP/1.1",
    }
    multi = event.get("multiValueHeaders")
    if multi:
        add_multi_headers(meta, multi)
    else:
        add_headers(meta, event.get("headers"))
    raw_path = event.get("path") or "/"
    stage = context.get("stage")
    if stage and stage != "$default" and ".execute-api." in (context.get("domainName") or ""):
        script = "/" + str(stage)
    else:
        script = ""
    if options.base_path:
        base, raw_path = split_prefix(raw_path, options.base_path)
        script += base
    params = event.get("multiValueQueryStringParameters") or event.get("queryStringParameters")
    query = query_from_multi(params, encode=True) if params else ""
    meta["SCRIPT_NAME"] = path_to_wsgi(script, encoded=True) if script else ""
    if raw_path.isascii() and "%" not in raw_path:
        meta["PATH_INFO"] = raw_path
    else:
        meta["PATH_INFO"] = path_to_wsgi(raw_path, encoded=True)
    meta["QUERY_STRING"] = query
    uri = script + raw_path
    if not uri.isascii():  # raw non-ASCII: UTF-8 bytes as latin-1 (PEP 3333)
        uri = unicode_to_wsgi(uri)
    meta["REQUEST_URI"] = f"{uri}?{query}" if query else uri
    identity = context.get("identity")
    client = identity.get("sourceIp") if identity else None
    if client:  # unknown stays unset rather than made up; test events write "1.2.3.4/32"
        meta["REMOTE_ADDR"] = client.partition("/")[0] if "/" in client else client
    forwarded_scheme(meta, True)
    if "HTTP_HOST" not in meta and context.get("domainName"):
        meta["SERVER_NAME"] = context["domainName"]
    return meta, request_body(event.get("body"), event.get("isBase64Encoded"))


def response(
    status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
) -> dict[str, Any]:
    text, is_base64 = encode_body(body, headers, options.is_binary)
    return {
        "statusCode": cached_status_code(status) or int(status[:3]),
        "multiValueHeaders": multi_value(headers),
        "body": text,
        "isBase64Encoded": is_base64,
    }
