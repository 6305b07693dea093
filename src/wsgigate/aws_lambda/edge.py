"""Lambda@Edge origin/viewer requests (CloudFront ``Records[0].cf.request``).

Headers arrive as ``{"host": [{"key": "Host", "value": ...}]}`` and leave in the same shape, so
every Set-Cookie (and every repeated header) is kept. ``uri`` keeps the client's encoding;
``querystring`` is the raw query; the body is present only when the distribution includes it.
"""

from __future__ import annotations

from wsgigate.aws_lambda import infer_edge
from wsgigate.aws_lambda._common import (
    add_multi_headers,
    encode_body,
    path_to_wsgi,
    request_body,
    split_prefix,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda import Headers, Options

name = "edge"
infer = infer_edge  # the shape test lives in the package: detection imports no source


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    cf = event["Records"][0]["cf"]
    request = cf["request"]
    meta: dict[str, str] = {"REQUEST_METHOD": request.get("method") or "GET"}
    headers = request.get("headers") or {}
    add_multi_headers(
        meta,
        {
            (items[0].get("key") or key): [item.get("value", "") for item in items]
            for key, items in headers.items()
            if items
        },
    )
    base, raw_path = split_prefix(request.get("uri") or "/", options.base_path)
    query = request.get("querystring") or ""
    meta["SCRIPT_NAME"] = path_to_wsgi(base, encoded=True)
    meta["PATH_INFO"] = path_to_wsgi(raw_path, encoded=True)
    # raw non-ASCII in the query or path: UTF-8 bytes as latin-1 (PEP 3333), as PATH_INFO
    meta["QUERY_STRING"] = path_to_wsgi(query, encoded=False)
    meta["REQUEST_URI"] = path_to_wsgi(
        base + raw_path + ("?" + query if query else ""), encoded=False
    )
    client = request.get("clientIp")
    if client:  # unknown stays unset rather than made up
        meta["REMOTE_ADDR"] = client
    meta["HTTPS"] = "on"
    meta["SERVER_PORT"] = "443"
    if "HTTP_HOST" not in meta:
        meta["SERVER_NAME"] = (cf.get("config") or {}).get("distributionDomainName") or "localhost"
    body = request.get("body") or {}
    data = request_body(body.get("data"), body.get("encoding") == "base64")
    return meta, data


def response(
    status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
) -> dict[str, Any]:
    text, is_base64 = encode_body(body, headers, options.is_binary)
    edge_headers: dict[str, list[dict[str, str]]] = {}
    for header, value in headers:
        edge_headers.setdefault(header.lower(), []).append({"key": header, "value": value})
    return {
        "status": status[:3],
        "statusDescription": status[4:],
        "headers": edge_headers,
        "body": text,
        "bodyEncoding": "base64" if is_base64 else "text",
    }
