"""VPC Lattice, event format version 2.0 (``path``, ``method``, multi-value ``headers``).

Not an HTTP API event although both say ``"version": "2.0"``: Lattice has ``path`` and
``method`` at the top and no ``requestContext.http``. Header and query values may be lists.
"""

from __future__ import annotations

from wsgigate.aws_lambda import infer_lattice_v2 as infer
from wsgigate.aws_lambda._common import (
    add_headers,
    add_multi_headers,
    query_from_multi,
    request_body,
)
from wsgigate.aws_lambda.lattice import lattice_meta, response

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda import Options

name = "lattice_v2"
__all__ = ["environ", "infer", "name", "response"]


def environ(event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
    meta: dict[str, str] = {"REQUEST_METHOD": event["method"]}
    headers = event.get("headers") or {}
    if any(type(value) is list for value in headers.values()):
        add_multi_headers(meta, {k: v if type(v) is list else [v] for k, v in headers.items()})
    else:
        add_headers(meta, headers)
    path, _, query = (event.get("path") or "/").partition("?")
    if not query:
        params = event.get("queryStringParameters") or event.get("query_string_parameters")
        query = query_from_multi(params, encode=True)
    lattice_meta(meta, path, query, options)
    return meta, request_body(event.get("body"), event.get("isBase64Encoded"))
