"""Helpers every event source shares: headers to meta-variables, query strings, bodies.

Nothing here builds an environ or validates a header: that is :mod:`wsgigate.core`'s job. These
functions only translate between the JSON shapes AWS sends and CGI meta-variables / response
parts. Kept free of ``re``, ``urllib`` and ``typing`` for the cold start.
"""

from __future__ import annotations

from binascii import a2b_base64, b2a_base64

from wsgigate.aws_lambda import _text_types, default_is_binary, is_text_type
from wsgigate.core import _statuses, unicode_to_wsgi, unquote_to_wsgi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    Headers = list[tuple[str, str]]

# RFC 3986 unreserved characters: never percent-encoded when rebuilding a query string.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = _UNRESERVED | frozenset("/!$&'()*+,;=:@")

# Lookups every event makes, bound here once. CPython 3.11 compiles ``name.method(...)`` as an
# attribute load when ``name`` was imported, which makes a new bound method on every call; a
# method bound once is a plain call (cachegrind: ~500 instructions less per call). Both caches
# answer None for what they have not seen yet.
cached_status_code = _statuses.get  # status line -> code, for the lines the core has seen valid
cached_is_text = _text_types.get  # Content-Type -> whether it is text, for the types seen before
is_path_safe = _PATH_SAFE.issuperset  # no character of the path needs percent-encoding

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
    names = _meta_names
    for name, value in headers.items():
        try:
            key = names[name]  # cheaper than .get() where the name is known (nearly always)
        except KeyError:
            key = meta_name(name)
        if value is None:
            continue
        if not value.isascii():
            value = unicode_to_wsgi(value)
        if key in meta:  # same header in two spellings of its name
            value = meta[key] + ("; " if key == "HTTP_COOKIE" else ", ") + value
        meta[key] = value


def add_multi_headers(meta: dict[str, str], headers: Mapping[str, list[str] | None]) -> None:
    """Multi-value headers into ``meta``: repeated values joined as RFC 9110 5.3 allows."""
    names = _meta_names
    for name, values in headers.items():
        if not values:
            continue
        try:
            key = names[name]
        except KeyError:
            key = meta_name(name)
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
    unreserved = _UNRESERVED
    for key, values in params.items():
        if values is None:
            continue
        if type(values) is str:
            values = [values]
        if encode:
            # quote() only where a character needs it: most keys and values need nothing
            if not (key.isascii() and (key.isalnum() or unreserved.issuperset(key))):
                key = quote(key)
            for value in values:
                if value.isascii() and (value.isalnum() or unreserved.issuperset(value)):
                    parts.append(key + "=" + value)
                else:
                    parts.append(key + "=" + quote(value))
        else:
            for value in values:
                parts.append(key + "=" + value)
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
    return body.encode()  # UTF-8, the default: naming it costs the name's normalisation per event


def forwarded_for(value: str | None) -> str:
    """The address the load balancer itself saw: the last entry of ``X-Forwarded-For``."""
    if not value:
        return ""
    return value.rpartition(",")[2].strip()


def forwarded_scheme(meta: dict[str, str], https_by_default: bool) -> None:
    """``HTTPS`` and ``SERVER_PORT`` from the last ``X-Forwarded-Proto`` / ``-Port`` entries (what
    the AWS front end itself saw). API Gateway speaks HTTPS only: without the header, HTTPS."""
    proto = meta.get("HTTP_X_FORWARDED_PROTO")
    if proto is None:
        https = https_by_default
    else:
        https = proto.rpartition(",")[2].strip().lower() == "https"
    if https:
        meta["HTTPS"] = "on"
    port = meta.get("HTTP_X_FORWARDED_PORT")
    if port:
        port = port.rpartition(",")[2].strip()
    meta["SERVER_PORT"] = port or ("443" if https else "80")


def encode_body(
    body: bytes, headers: Headers, is_binary: Callable[[Headers], bool | None]
) -> tuple[str, bool]:
    """The response body as the JSON string Lambda wants and whether it is base64."""
    if not body:
        return "", False
    if is_binary is default_is_binary:
        # default_is_binary inline (this runs on every event): Content-Encoding, then the type
        binary = None
        for name, value in headers:
            if name == "Content-Type":
                known = cached_is_text(value)
                binary = not (is_text_type(value) if known is None else known)
            elif name != "Content-Length":
                lower = name.lower()
                if lower == "content-type":
                    binary = not is_text_type(value)
                elif lower == "content-encoding" and value.strip().lower() not in _IDENTITY:
                    binary = True
                    break
    else:
        binary = is_binary(headers)
    if not binary:
        try:
            return body.decode(), False  # UTF-8, the default
        except UnicodeDecodeError:
            pass  # declared as text but is not UTF-8: base64 keeps every byte
    return b2a_base64(body, newline=False).decode("ascii"), True


_IDENTITY = ("", "identity")


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
