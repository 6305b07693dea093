"""VPC Lattice, event format version 1 (``raw_path``, ``method``, ``is_base64_encoded``).

``raw_path`` carries the path and query as the client sent them; REMOTE_ADDR is the last
``X-Forwarded-For`` entry. Lattice takes single-value response headers: several Set-Cookie are
sent under case variants of the name, other repeated headers comma-joined.
"""

from __future__ import annotations

from wsgigate.aws_lambda import infer_lattice
from wsgigate.aws_lambda._common import (
    add_headers,
    encode_body,
    forwarded_for,
    forwarded_scheme,
    path_to_wsgi,
    query_from_multi,
    request_body,
    single_value_with_cookies,
    split_prefix,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda import Headers, Options

name = "lattice"
infer = infer_lattice  # the shape test lives in the package: detection imports no source


def lattice_meta(meta: dict[str, str], raw_path: str, query: str, options: Options) -> None:
    """Path, query, client address and scheme, shared by both Lattice versions."""
    base, raw_path = split_prefix(raw_path, options.base_path)
    meta["SCRIPT_NAME"] = path_to_wsgi(base, encoded=True)
    meta["PATH_INFO"] = path_to_wsgi(raw_path, encoded=True)
    # raw non-ASCII in the query or path: UTF-8 bytes as latin-1 (PEP 3333), as PATH_INFO
    meta["QUERY_STRING"] = path_to_wsgi(query, encoded=False)
    meta["REQUEST_URI"] = path_to_wsgi(
        base + raw_path + ("?" + query if query else ""), encoded=False
    )
    client = forwarded_for(meta.get("HTTP_X_FORWARDED_FOR"))
    if client:  # unknown stays unset rather than made up
        meta["REMOTE_ADDR"] = client
    forwarded_scheme(meta, False)


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    meta: dict[str, str] = {"REQUEST_METHOD": event["method"]}
    add_headers(meta, event.get("headers"))
    path, _, query = (event.get("raw_path") or "/").partition("?")
    if not query:
        query = query_from_multi(event.get("query_string_parameters"), encode=True)
    lattice_meta(meta, path, query, options)
    return meta, request_body(event.get("body"), event.get("is_base64_encoded"))


def response(
    status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
) -> dict[str, Any]:
    text, is_base64 = encode_body(body, headers, options.is_binary)
    return {
        "statusCode": int(status[:3]),
        "statusDescription": status,
        "headers": single_value_with_cookies(headers),
        "body": text,
        "isBase64Encoded": is_base64,
    }
