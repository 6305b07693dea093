"""SCGI (https://python.ca/scgi/protocol.txt) without I/O: one request per connection.

The web server sends a netstring of NUL-terminated name/value pairs, then the body::

    70:CONTENT_LENGTH\\x0027\\x00SCGI\\x001\\x00REQUEST_METHOD\\x00POST\\x00...,<27 body bytes>

:class:`SCGIParser` checks the header strictly — a length without leading zeros and within
``max_header_size`` (refused before a byte of it is buffered), ``CONTENT_LENGTH`` first and a
decimal number, ``SCGI`` equal to ``1``, no empty names, no duplicate names except repeated
``HTTP_*`` request headers (combined with ``, ``, cookies with ``; ``) — and then hands the body
on in the pieces it was fed (:class:`Body` events until :class:`EndOfBody`), never holding it
whole. Events::

    Request(headers, content_length)  Body(data) ...  EndOfBody()  [ConnectionClosed()]

The response is plain bytes (a CGI-style head from :func:`wsgigate.core.cgi_response_head`,
then the body), so the codec has no encoder for it; :func:`encode_request` builds requests for
clients and tests.
"""

from __future__ import annotations

from dataclasses import dataclass

from wsgigate.errors import ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed, LocalProtocolError, NeedData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["Body", "EndOfBody", "Request", "SCGIParser", "encode_request"]

DEFAULT_MAX_HEADER_SIZE = 128 * 1024

_HEADER, _BODY, _DONE = 0, 1, 2
_HTTP_METHODS = (b"GET ", b"POST", b"HEAD", b"PUT ", b"DELE", b"OPTI", b"PATC", b"PRI ")


@dataclass(frozen=True, slots=True)
class Request:
    """The header: CGI meta-variables as PEP 3333 native strings (latin-1 decoded bytes)."""

    headers: dict[str, str]
    content_length: int


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes


@dataclass(frozen=True, slots=True)
class EndOfBody:
    pass


Event = Request | Body | EndOfBody | ConnectionClosed


class SCGIParser:
    """Parse one SCGI request from bytes fed with :meth:`receive_data`."""

    # One per connection, read on every event: slots, like the FastCGI codec's.
    __slots__ = (
        "max_header_size",
        "_max_digits",
        "_head",
        "_pending",
        "_state",
        "_remaining",
        "_eof",
        "_error",
        "trailing",
    )

    def __init__(self, *, max_header_size: int = DEFAULT_MAX_HEADER_SIZE) -> None:
        self.max_header_size = max_header_size
        self._max_digits = len(str(max_header_size))
        self._head = bytearray()
        self._pending: list[bytes] = []
        self._state = _HEADER
        self._remaining = 0
        self._eof = False
        self._error: ProtocolError | None = None
        self.trailing = 0
        """Bytes received after the body (SCGI has no second request; they are dropped)."""

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the web server; ``b""`` means it closed its side."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() after the end of the stream")
        if self._state == _HEADER:
            self._head += data
        elif self._state == _BODY:
            self._pending.append(bytes(data))
        else:
            self.trailing += len(data)

    def next_event(self) -> Event | NeedData:
        """The next event, :data:`NEED_DATA`, or :class:`ConnectionClosed` after end of stream."""
        if self._error is not None:
            raise self._error
        if self._state == _BODY:
            if self._remaining == 0:
                self._state = _DONE
                self.trailing += sum(map(len, self._pending))
                self._pending.clear()
                return EndOfBody()
            if self._pending:
                chunk = self._pending.pop(0)
                if len(chunk) > self._remaining:
                    self.trailing += len(chunk) - self._remaining
                    chunk = chunk[: self._remaining]
                self._remaining -= len(chunk)
                return Body(chunk)
        elif self._state == _HEADER:
            try:
                request = self._parse_header()
            except ProtocolError as exc:
                self._error = exc
                raise
            if request is not None:
                return request
        return ConnectionClosed() if self._eof else NEED_DATA

    def _parse_header(self) -> Request | None:
        head = self._head
        colon = head.find(b":", 0, self._max_digits + 1)
        if colon < 0:
            prefix = bytes(head[: self._max_digits + 1])
            if not prefix:
                return None
            # The digits before anything else decide first, so that the verdict (431 or 400)
            # does not depend on how the bytes were cut: "394" alone is already too long.
            digits = prefix
            while digits and not digits.isdigit():
                digits = digits[:-1]
            if digits and (len(digits) > self._max_digits or int(digits) > self.max_header_size):
                raise ProtocolError(
                    f"SCGI header length exceeds the limit of {self.max_header_size} bytes "
                    f"(declared: {digits.decode()}...)",
                    431,
                )
            if digits != prefix:
                if len(prefix) < 4 and not self._eof and _may_be_http(prefix):
                    return None  # wait for four bytes to say "this is HTTP" in the error
                raise ProtocolError(_not_a_length(prefix))
            return None
        digits = bytes(head[:colon])
        if not digits.isdigit():
            raise ProtocolError(_not_a_length(digits))
        if digits[0] == 0x30:  # b"0"
            raise ProtocolError(f"SCGI header length {digits.decode()!r} has a leading zero")
        size = int(digits)
        if size > self.max_header_size:
            raise ProtocolError(
                f"SCGI header length exceeds the limit of {self.max_header_size} bytes "
                f"(declared: {size})",
                431,
            )
        end = colon + 1 + size
        if len(head) <= end:
            return None
        if head[end] != 0x2C:  # b","
            raise ProtocolError(
                f"SCGI header netstring of {size} bytes is not followed by ',' "
                f"(got {bytes(head[end : end + 1])!r}): the length is wrong"
            )
        request = _parse_pairs(bytes(head[colon + 1 : end]))
        rest = bytes(head[end + 1 :])
        self._head = bytearray()
        self._remaining = request.content_length
        self._state = _BODY
        if rest:
            self._pending.append(rest)
        return request


def _may_be_http(prefix: bytes) -> bool:
    return any(method.startswith(prefix) for method in _HTTP_METHODS)


def _not_a_length(prefix: bytes) -> str:
    if prefix[:4] in _HTTP_METHODS:
        return f"expected an SCGI netstring, got what looks like HTTP ({prefix[:16]!r}...)"
    return f"SCGI request must start with a decimal netstring length and ':', got {prefix[:16]!r}"


def _parse_pairs(block: bytes) -> Request:
    if not block.endswith(b"\0"):
        raise ProtocolError("SCGI header does not end with a NUL byte")
    parts = block[:-1].decode("latin-1").split("\0")
    if len(parts) % 2:
        raise ProtocolError(f"SCGI header name {parts[-1][:60]!r} has no value")
    if parts[0] != "CONTENT_LENGTH":
        raise ProtocolError(f"SCGI header must start with CONTENT_LENGTH, not {parts[0][:60]!r}")
    raw_length = parts[1]
    if not (raw_length.isascii() and raw_length.isdigit()):
        raise ProtocolError(f"SCGI CONTENT_LENGTH {raw_length[:40]!r} is not a decimal number")
    headers = dict(zip(parts[::2], parts[1::2], strict=True))  # the common case, in C
    if len(headers) * 2 != len(parts) or "" in headers:
        headers = _checked_pairs(parts)
    scgi = headers.get("SCGI")
    if scgi != "1":
        raise ProtocolError(
            "SCGI header lacks SCGI=1" if scgi is None else f"SCGI version {scgi[:20]!r}, not 1"
        )
    return Request(headers, int(raw_length))


def _checked_pairs(parts: list[str]) -> dict[str, str]:
    """Pairs with an empty or repeated name: the precise error, or repeats combined."""
    headers: dict[str, str] = {}
    for i in range(0, len(parts), 2):
        name = parts[i]
        if not name:
            raise ProtocolError(f"SCGI header has an empty name (pair {i // 2 + 1})")
        if name in headers:
            if not name.startswith("HTTP_"):
                raise ProtocolError(f"SCGI header {name[:60]!r} appears twice")
            # nginx before 1.23 (Debian 12's 1.22) sends a request header the client repeated
            # as repeated names: combine them, as RFC 3875 4.1.18 asks and later nginx does.
            headers[name] += ("; " if name == "HTTP_COOKIE" else ", ") + parts[i + 1]
            continue
        headers[name] = parts[i + 1]
    return headers


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def encode_request(
    headers: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]], body: bytes = b""
) -> bytes:
    """A complete SCGI request: CONTENT_LENGTH and SCGI=1 first, then ``headers``, then body.

    CONTENT_LENGTH and SCGI given in ``headers`` are left out (they are computed here).
    """
    items = headers.items() if hasattr(headers, "items") else headers
    parts = [b"CONTENT_LENGTH\0", str(len(body)).encode(), b"\0SCGI\x001\0"]
    for name, value in items:
        name_b = _as_bytes(name)
        if name_b in (b"CONTENT_LENGTH", b"SCGI"):
            continue
        if not name_b or b"\0" in name_b:
            raise ValueError(f"invalid SCGI header name {name!r}")
        value_b = _as_bytes(value)
        if b"\0" in value_b:
            raise ValueError(f"SCGI header {name!r}: value contains NUL")
        parts += (name_b, b"\0", value_b, b"\0")
    block = b"".join(parts)
    return b"%d:%s,%s" % (len(block), block, body)
