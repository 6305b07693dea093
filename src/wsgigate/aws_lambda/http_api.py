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

from binascii import b2a_base64

from wsgigate.aws_lambda import default_is_binary, infer_http_api, is_text_type
from wsgigate.aws_lambda._common import (
    add_headers,
    cached_is_text,
    cached_status_code,
    encode_body,
    forwarded_scheme,
    is_path_safe,
    path_to_wsgi,
    quote_path,
    request_body,
    split_prefix,
)
from wsgigate.core import unicode_to_wsgi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from wsgigate.aws_lambda import Headers, Options

name = "http_api"
infer = infer_http_api  # the shape test lives in the package: detection imports no source


_NONE: dict[str, Any] = {}


def environ(
    event: dict[str, Any], options: Options, path_encoded: bool = False
) -> tuple[dict[str, str], bytes]:
    """Meta-variables of a payload format 2.0 event (HTTP APIs; Function URLs pass
    ``path_encoded=True``: their ``rawPath`` keeps the encoding, and they have no stage).

    This runs on every event: helpers are called only when a field needs work (non-ASCII, a
    stage, an encoded path...), the plain case stays inline.
    """
    context = event.get("requestContext") or _NONE
    http = context.get("http") or _NONE
    raw_path = event.get("rawPath") or "/"
    script = ""
    stage = context.get("stage")
    if (
        stage
        and stage != "$default"
        and not path_encoded
        and ".execute-api." in (context.get("domainName") or "")
    ):
        # the execute-api domain puts a named stage first in the path: it is SCRIPT_NAME
        script, raw_path = split_prefix(raw_path, "/" + str(stage))
    if options.base_path:
        base, raw_path = split_prefix(raw_path, options.base_path)
        script += base
    uri = script + raw_path if script else raw_path
    if path_encoded:  # Function URLs: the path as the client sent it
        if raw_path.isascii() and "%" not in raw_path:
            path = raw_path
        else:
            path = path_to_wsgi(raw_path, encoded=True)
        if not uri.isascii():
            uri = unicode_to_wsgi(uri)  # raw non-ASCII as sent: UTF-8 bytes as latin-1 (PEP 3333)
    elif raw_path.isascii() and is_path_safe(uri):
        path = raw_path  # the usual case: nothing to decode, nothing to re-encode
    else:
        path = raw_path if raw_path.isascii() else path_to_wsgi(raw_path, encoded=False)
        uri = quote_path(uri)  # REQUEST_URI as the client sent it: re-encoded
    query = event.get("rawQueryString")
    if query:
        if not query.isascii():
            query = unicode_to_wsgi(query)
        uri = f"{uri}?{query}"
    else:
        query = ""
    # One dict display for the fields every event has (cheaper than a store per key).
    meta: dict[str, str] = {
        "REQUEST_METHOD": http.get("method") or "GET",
        "SERVER_PROTOCOL": http.get("protocol") or "HTTP/1.1",
        "SCRIPT_NAME": path_to_wsgi(script, encoded=path_encoded) if script else "",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "REQUEST_URI": uri,
    }
    add_headers(meta, event.get("headers"))
    cookies = event.get("cookies")
    if cookies:
        cookie = "; ".join(cookies)
        meta["HTTP_COOKIE"] = cookie if cookie.isascii() else unicode_to_wsgi(cookie)
    client = http.get("sourceIp")
    if client:  # unknown stays unset rather than made up; test events write "1.2.3.4/32"
        meta["REMOTE_ADDR"] = client.partition("/")[0] if "/" in client else client
    forwarded_scheme(meta, True)
    if "HTTP_HOST" not in meta:
        domain = context.get("domainName")
        if domain:
            meta["SERVER_NAME"] = domain
    return meta, request_body(event.get("body"), event.get("isBase64Encoded"))


# Header names (in order) -> (Content-Type name, Content-Encoding name) when no two names are the
# same in lower case and none is Set-Cookie: then the answer's headers are dict(headers). False
# when the names need the long way. Apps answer with a few sets of names (bounded all the same).
_plans: dict[tuple[str, ...], tuple[str | None, str | None] | bool] = {}


def _plan(names: tuple[str, ...]) -> tuple[str | None, str | None] | bool:
    lowers = [name.lower() for name in names]
    plan: tuple[str | None, str | None] | bool = False
    if "set-cookie" not in lowers and len(set(lowers)) == len(lowers):
        content_type = content_encoding = None
        for name, lower in zip(names, lowers, strict=True):
            if lower == "content-type":
                content_type = name
            elif lower == "content-encoding":
                content_encoding = name
        plan = (content_type, content_encoding)
    if len(_plans) < 256:
        _plans[names] = plan
    return plan


def response(
    status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
) -> dict[str, Any]:
    single = dict(headers)
    plan: tuple[str | None, str | None] | bool | None = False
    if len(single) == len(headers):  # no name given twice in the same spelling
        names = tuple(single)
        plan = _plans.get(names)
        if plan is None:
            plan = _plan(names)
    if not plan:
        return _response(status, headers, body, options)
    if not body:
        text, is_base64 = "", False
    elif options.is_binary is not default_is_binary:
        text, is_base64 = encode_body(body, headers, options.is_binary)
    else:
        content_type, content_encoding = plan  # type: ignore[misc]  # a tuple here
        if content_encoding is not None and single[content_encoding].strip().lower() not in (
            "",
            "identity",
        ):
            binary = True  # a Content-Encoding other than identity: binary whatever the type
        elif content_type is not None:
            value = single[content_type]
            known = cached_is_text(value)
            binary = not (is_text_type(value) if known is None else known)
        else:
            binary = False
        if binary:
            text, is_base64 = b2a_base64(body, newline=False).decode("ascii"), True
        else:
            try:
                text, is_base64 = body.decode(), False
            except UnicodeDecodeError:  # declared as text (or not at all) but is not UTF-8
                text, is_base64 = b2a_base64(body, newline=False).decode("ascii"), True
    return {
        "statusCode": cached_status_code(status) or int(status[:3]),
        "headers": single,
        "body": text,
        "isBase64Encoded": is_base64,
    }


def _response(status: str, headers: Headers, body: bytes, options: Options) -> dict[str, Any]:
    """The answer when Set-Cookie or a repeated header name is among the headers."""
    # Every event: split_cookies() and, with the default binary rule, encode_body() inline, in
    # one pass over the headers (Set-Cookie apart, repeated headers comma-joined).
    single: dict[str, str] = {}
    lowers: dict[str, str] = {}
    cookies = []
    binary: bool | None = None
    encoded = False  # a Content-Encoding other than identity: binary whatever the type
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            cookies.append(value)
            continue
        if lower == "content-type":
            known = cached_is_text(value)
            binary = not (is_text_type(value) if known is None else known)
        elif lower == "content-encoding" and value.strip().lower() not in ("", "identity"):
            encoded = True
        first = lowers.get(lower)
        if first is None:
            lowers[lower] = name
            single[name] = value
        else:
            single[first] = single[first] + ", " + value
    if not body:
        text, is_base64 = "", False
    elif options.is_binary is not default_is_binary:
        text, is_base64 = encode_body(body, headers, options.is_binary)
    elif encoded or binary:
        text, is_base64 = b2a_base64(body, newline=False).decode("ascii"), True
    else:
        try:
            text, is_base64 = body.decode(), False  # UTF-8, the default
        except UnicodeDecodeError:  # declared as text (or not at all) but is not UTF-8
            text, is_base64 = b2a_base64(body, newline=False).decode("ascii"), True
    answer: dict[str, Any] = {
        "statusCode": cached_status_code(status) or int(status[:3]),
        "headers": single,
        "body": text,
        "isBase64Encoded": is_base64,
    }
    if cookies:
        answer["cookies"] = cookies
    return answer
