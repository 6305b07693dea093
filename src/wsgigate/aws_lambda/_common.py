"""Helpers every event source shares: headers to meta-variables, query strings, bodies.

Nothing here builds an environ or validates a header: that is :mod:`wsgigate.core`'s job. These
functions only translate between the JSON shapes AWS sends and CGI meta-variables / response
parts. Kept free of ``re``, ``urllib`` and ``typing`` for the cold start.
"""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64

from wsgigate.core.environ import unicode_to_wsgi, unquote_to_wsgi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    Headers = list[tuple[str, str]]

# RFC 3986 unreserved characters: never percent-encoded when rebuilding a query string.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = _UNRESERVED | frozenset("/!$&'()*+,;=:@")

# Header name -> CGI meta-variable name; names repeat across events, so remember them (bounded).
_meta_names: dict[str, str] = {}


def meta_name(name: str) -> str:
    """``Content-Type`` -> ``CONTENT_TYPE``, ``X-Foo`` -> ``HTTP_X_FOO`` (RFC 3875 4.1.18)."""
    key = _meta_names.get(name)
    if key is None:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        if len(_meta_names) < 1024:
            _meta_names[name] = key
    return key


def add_headers(meta: dict[str, str], headers: Mapping[str, str] | None) -> None:
    """Single-value headers (already comma-joined by the front end) into ``meta``."""
    if not headers:
        return
    for name, value in headers.items():
        key = _meta_names.get(name) or meta_name(name)
        if value is None:
            continue
        if not value.isascii():
            value = unicode_to_wsgi(value)
        if key in meta:  # same header in two spellings of its name
            value = meta[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
        meta[key] = value


def add_multi_headers(meta: dict[str, str], headers: Mapping[str, list[str] | None]) -> None:
    """Multi-value headers into ``meta``: repeated values joined as RFC 9110 5.3 allows."""
    for name, values in headers.items():
        if not values:
            continue
        key = _meta_names.get(name) or meta_name(name)
        joiner = "; " if key == "HTTP_COOKIE" else ", "
        value = values[0] if len(values) == 1 else joiner.join(values)
        if not value.isascii():
            value = unicode_to_wsgi(value)
        if key in meta:
            value = meta[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
        meta[key] = value


def quote(text: str, safe: frozenset[str] = _UNRESERVED) -> str:
    """Percent-encode ``text`` as UTF-8, leaving ``safe`` characters alone."""
    if text.isalnum() and text.isascii() or safe.issuperset(text):
        return text
    out = []
    for char in text:
        if char in safe:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogateescape"))
    return "".join(out)


def quote_path(text: str) -> str:
    """Percent-encode a decoded path for ``REQUEST_URI`` (``/`` and sub-delims stay)."""
    return quote(text, _PATH_SAFE)


def query_from_multi(params: Mapping[str, list[str] | str | None] | None, *, encode: bool) -> str:
    """Rebuild a query string from ``{key: [values]}`` (or ``{key: value}``) parameters.

    ``encode`` percent-encodes keys and values (API Gateway and Lattice hand them over decoded);
    ALB passes them still encoded, so they are joined as they are.
    """
    if not params:
        return ""
    parts = []
    for key, values in params.items():
        if values is None:
            continue
        if type(values) is str:
            values = [values]
        k = quote(key) if encode else key
        for value in values:
            parts.append(f"{k}={quote(value) if encode else value}")
    return "&".join(parts)


def path_to_wsgi(path: str, *, encoded: bool) -> str:
    """An event's path as PEP 3333 ``PATH_INFO``: percent-decoded to bytes shown as latin-1."""
    if not path.isascii():
        path = unicode_to_wsgi(path)
    return unquote_to_wsgi(path) if encoded else path


def split_prefix(path: str, prefix: str) -> tuple[str, str]:
    """``("/dev/x", "/dev")`` -> ``("/dev", "/x")``; no split unless ``prefix`` ends a segment."""
    if prefix and prefix != "/" and path.startswith(prefix):
        rest = path[len(prefix) :]
        if not rest or rest[0] == "/":
            return prefix, rest
    return "", path


def request_body(body: str | None, is_base64: bool | None) -> bytes:
    """The request body as bytes: base64-decoded when the event says so."""
    if not body:
        return b""
    if is_base64:
        try:
            return a2b_base64(body, strict_mode=True)
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            from wsgigate.errors import ProtocolError

            raise ProtocolError("request body flagged isBase64Encoded is not base64", 400) from None
    return body.encode("utf-8")


def forwarded_for(value: str | None) -> str:
    """The address the load balancer itself saw: the last entry of ``X-Forwarded-For``."""
    if not value:
        return ""
    return value.rpartition(",")[2].strip()


def source_ip(value: str | None) -> str:
    """``sourceIp`` as REMOTE_ADDR (some test events write ``192.168.0.1/32``)."""
    if not value:
        return ""
    return value.partition("/")[0] if "/" in value else value


_lower = {"Content-Type": "content-type", "Content-Length": "content-length"}

# Content types that are text (the UTF-8 check still has the last word).
_TEXT_MARKERS = ("json", "xml", "javascript", "yaml", "x-www-form-urlencoded", "csv", "graphql")


_text_types: dict[str, bool] = {}


def is_text_type(content_type: str) -> bool:
    """``text/*``, ``+json``/``+xml`` suffixes and the usual textual ``application/`` types."""
    known = _text_types.get(content_type)
    if known is not None:
        return known
    mime = content_type.partition(";")[0].strip().lower()
    text = mime.startswith("text/") or any(marker in mime for marker in _TEXT_MARKERS)
    if len(_text_types) < 256:
        _text_types[content_type] = text
    return text


def default_is_binary(headers: Headers) -> bool | None:
    """Decide from the headers: ``True`` binary, ``False`` text, ``None`` look at the bytes.

    Content-Encoding first (a gzip body is binary whatever its type), then the type.
    """
    content_type = None
    for name, value in headers:
        lower = _lower.get(name) or name.lower()
        if lower == "content-type":
            content_type = value
        elif lower == "content-encoding" and value.strip().lower() not in ("", "identity"):
            return True
    if content_type is None:
        return None
    return not is_text_type(content_type)


def encode_body(
    body: bytes, headers: Headers, is_binary: Callable[[Headers], bool | None]
) -> tuple[str, bool]:
    """The response body as the JSON string Lambda wants and whether it is base64."""
    if not body:
        return "", False
    if not is_binary(headers):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass  # declared as text but is not UTF-8: base64 keeps every byte
    return b2a_base64(body, newline=False).decode("ascii"), True


def split_cookies(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """Headers as ``{name: comma-joined values}`` plus the Set-Cookie values apart."""
    single: dict[str, str] = {}
    lowers: dict[str, str] = {}
    cookies = []
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            cookies.append(value)
            continue
        first = lowers.get(lower)
        if first is None:
            lowers[lower] = name
            single[name] = value
        else:
            single[first] = single[first] + ", " + value
    return single, cookies


def multi_value(headers: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Headers as ``{name: [values]}``, every repeated header kept."""
    multi: dict[str, list[str]] = {}
    lowers: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        first = lowers.get(lower)
        if first is None:
            lowers[lower] = name
            multi[name] = [value]
        else:
            multi[first].append(value)
    return multi


def case_variants(name: str, count: int) -> list[str]:
    """``count`` spellings of ``name`` that differ only in case (``Set-Cookie``, ``set-cookie``...).

    For front ends that take single-value headers only (ALB without multi-value headers, VPC
    Lattice): HTTP header names are case-insensitive, so each spelling arrives as its own header.
    """
    letters = [i for i, char in enumerate(name) if char.isalpha()]
    if count > 2 ** len(letters):
        raise ValueError(f"cannot send {count} {name} headers without multi-value headers")
    variants = [name]
    pattern = 0
    while len(variants) < count:
        chars = list(name.lower())
        for bit, index in enumerate(letters):
            if pattern >> bit & 1:
                chars[index] = chars[index].upper()
        pattern += 1
        spelling = "".join(chars)
        if spelling != name:
            variants.append(spelling)
    return variants


def single_value_with_cookies(headers: Headers) -> dict[str, str]:
    """Single-value headers where every Set-Cookie survives, one case spelling each."""
    single, cookies = split_cookies(headers)
    if len(cookies) == 1:
        single["Set-Cookie"] = cookies[0]
    elif cookies:
        spellings = case_variants("Set-Cookie", len(cookies))
        for spelling, cookie in zip(spellings, cookies, strict=True):
            single[spelling] = cookie
    return single


def status_code(status: str) -> int:
    return int(status[:3])


def first_header(headers: Mapping[str, Any] | None, name: str) -> Any:
    """A header from an event's header map, matching the name case-insensitively."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


# --- event shapes: each source's infer(), here so detection imports no source module ---


def infer_rest(event: dict[str, Any]) -> bool:
    if "httpMethod" not in event:
        return False
    context = event.get("requestContext")
    return not (context and "elb" in context)


def infer_http_api(event: dict[str, Any]) -> bool:
    return "rawPath" in event and ".lambda-url." not in (
        (event.get("requestContext") or {}).get("domainName") or ""
    )


def infer_function_url(event: dict[str, Any]) -> bool:
    return "rawPath" in event and ".lambda-url." in (
        (event.get("requestContext") or {}).get("domainName") or ""
    )


def infer_alb(event: dict[str, Any]) -> bool:
    context = event.get("requestContext")
    return context is not None and "elb" in context and "httpMethod" in event


def infer_lattice(event: dict[str, Any]) -> bool:
    return "raw_path" in event and "method" in event


def infer_lattice_v2(event: dict[str, Any]) -> bool:
    return "method" in event and "path" in event and "rawPath" not in event


def infer_edge(event: dict[str, Any]) -> bool:
    records = event.get("Records")
    if not records or type(records) is not list or type(records[0]) is not dict:
        return False
    cf = records[0].get("cf")
    return type(cf) is dict and "request" in cf
