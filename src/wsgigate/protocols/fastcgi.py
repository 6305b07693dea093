"""FastCGI 1.0 without I/O: the application side and the web server side of a connection.

:class:`FastCGIConnection` is the application (what ``wsgigate fastcgi`` serves)::

    conn = FastCGIConnection(max_conns=10, max_reqs=10, multiplex=False)
    conn.receive_data(sock.recv(65536))        # b"" once the web server closed its side
    while (event := conn.next_event()) is not NEED_DATA:
        ...                                    # BeginRequest, Params, Stdin, StdinEnd, ...
    conn.stdout(request_id, head + body)       # split at 65,535 bytes, padded to 8
    conn.end_request(request_id)               # empty STDOUT (+ STDERR) and END_REQUEST
    sock.sendall(conn.data_to_send())
    if conn.should_close: sock.close()

The codec answers by itself what needs no application: GET_VALUES (FCGI_MAX_CONNS,
FCGI_MAX_REQS, FCGI_MPXS_CONNS from the constructor), management records of unknown type
(UNKNOWN_TYPE), a BEGIN_REQUEST with a role it was not given (END_REQUEST UNKNOWN_ROLE), a
second concurrent request without multiplexing (CANT_MPX_CONN) and more than ``max_reqs``
concurrent requests (OVERLOADED). Those answers wait in :meth:`~FastCGIConnection.data_to_send`.

Records for a request we already ended (the rest of an upload the application did not read,
an ABORT_REQUEST that crossed our END_REQUEST) are dropped: that is how unread STDIN is
discarded before the next request on a kept connection. Records for a request that was never
begun are a :class:`~wsgigate.errors.ProtocolError`.

PARAMS are collected across records (name-value pairs may straddle records: cgi-fcgi writes
8 KiB records, Apache 16 KiB) up to ``max_params_size`` bytes and ``max_params`` pairs, and
delivered once, when the empty PARAMS record arrives, as a ``dict[str, str]`` of PEP 3333
native strings (latin-1 decoded bytes: exactly what :func:`wsgigate.core.build_environ`
takes). A request over those limits raises :class:`RequestError` (status hint 431): the
connection stays in sync, so the server may answer that one request and carry on.

:class:`FastCGIClientConnection` is the web server's side (used by
:mod:`wsgigate.fastcgi.client` and the tests): it writes BEGIN_REQUEST, PARAMS (in records of
``record_size`` bytes), STDIN, DATA, ABORT_REQUEST and GET_VALUES, and parses STDOUT, STDERR,
END_REQUEST, GET_VALUES_RESULT and UNKNOWN_TYPE.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from wsgigate.errors import ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed, LocalProtocolError, NeedData

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Hashable, Iterable, Iterator, Mapping
    from typing import TypeVar

    _K = TypeVar("_K", bound=Hashable)
    _E = TypeVar("_E")

__all__ = [
    "AbortRequest",
    "BeginRequest",
    "Data",
    "DataEnd",
    "EndRequest",
    "FastCGIClientConnection",
    "FastCGIConnection",
    "GetValuesResult",
    "Params",
    "RequestError",
    "Stderr",
    "Stdin",
    "StdinEnd",
    "Stdout",
    "UnknownType",
    "decode_pairs",
    "encode_pairs",
]

VERSION = 1

# Record types (FastCGI 1.0 section 8).
BEGIN_REQUEST = 1
ABORT_REQUEST = 2
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
STDERR = 7
DATA = 8
GET_VALUES = 9
GET_VALUES_RESULT = 10
UNKNOWN_TYPE = 11

RECORD_NAMES = {
    BEGIN_REQUEST: "BEGIN_REQUEST",
    ABORT_REQUEST: "ABORT_REQUEST",
    END_REQUEST: "END_REQUEST",
    PARAMS: "PARAMS",
    STDIN: "STDIN",
    STDOUT: "STDOUT",
    STDERR: "STDERR",
    DATA: "DATA",
    GET_VALUES: "GET_VALUES",
    GET_VALUES_RESULT: "GET_VALUES_RESULT",
    UNKNOWN_TYPE: "UNKNOWN_TYPE",
}

# Roles.
RESPONDER = 1
AUTHORIZER = 2
FILTER = 3
ROLES = frozenset({RESPONDER, AUTHORIZER, FILTER})

# BEGIN_REQUEST flags.
KEEP_CONN = 1

# END_REQUEST protocolStatus.
REQUEST_COMPLETE = 0
CANT_MPX_CONN = 1
OVERLOADED = 2
UNKNOWN_ROLE = 3

MAX_CONTENT = 65535  # contentLength is 16 bits

HEADER = struct.Struct("!BBHHBx")  # version, type, requestId, contentLength, paddingLength
_BEGIN_BODY = struct.Struct("!HB5x")  # role, flags
_END_BODY = struct.Struct("!IB3x")  # appStatus, protocolStatus
_END_RECORD = struct.Struct("!BBHHBx" + "IB3x")
# The common ending of a response in one pack: empty STDOUT, then END_REQUEST.
_STDOUT_END_AND_END_RECORD = struct.Struct("!BBHHBx" + "BBHHBx" + "IB3x")
_UNKNOWN_TYPE_RECORD = struct.Struct("!BBHHBx" + "B7x")
_U32 = struct.Struct("!I")
_PADDING = [bytes(n) for n in range(8)]

DEFAULT_MAX_PARAMS_SIZE = 128 * 1024
DEFAULT_MAX_PARAMS = 1000


class RequestError(ProtocolError):
    """One request broke a limit (params too large or too many); the connection is still usable.

    The request stays active with its further input dropped: answer it (``status_hint``, 431)
    and call :meth:`FastCGIConnection.end_request`.
    """

    def __init__(self, message: str, request_id: int, status_hint: int = 431) -> None:
        super().__init__(message, status_hint)
        self.request_id = request_id


# -- events the application side receives ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class BeginRequest:
    request_id: int
    role: int
    keep_conn: bool


@dataclass(frozen=True, slots=True)
class Params:
    """The whole PARAMS stream of a request: CGI meta-variables as PEP 3333 native strings."""

    request_id: int
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class Stdin:
    request_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StdinEnd:
    request_id: int


@dataclass(frozen=True, slots=True)
class Data:
    """FCGI_DATA (FILTER role): the file to filter."""

    request_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class DataEnd:
    request_id: int


@dataclass(frozen=True, slots=True)
class AbortRequest:
    request_id: int


# -- events the web server side receives ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Stdout:
    request_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Stderr:
    request_id: int
    data: bytes


@dataclass(frozen=True, slots=True)
class EndRequest:
    request_id: int
    app_status: int
    protocol_status: int


@dataclass(frozen=True, slots=True)
class GetValuesResult:
    values: dict[bytes, bytes]


@dataclass(frozen=True, slots=True)
class UnknownType:
    record_type: int


ApplicationEvent = (
    BeginRequest | Params | Stdin | StdinEnd | Data | DataEnd | AbortRequest | ConnectionClosed
)
ClientEvent = Stdout | Stderr | EndRequest | GetValuesResult | UnknownType | ConnectionClosed


# -- name-value pairs -------------------------------------------------------------------------


def _encode_length(n: int) -> bytes:
    if n < 128:
        return bytes((n,))
    if n > 0x7FFFFFFF:
        raise ValueError(f"name-value length {n} exceeds 2**31 - 1")
    return _U32.pack(n | 0x80000000)


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


def encode_pairs(pairs: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]]) -> bytes:
    """Serialize name-value pairs (1-byte lengths below 128, else 4 bytes); str as latin-1."""
    items = pairs.items() if hasattr(pairs, "items") else pairs
    out: list[bytes] = []
    for name, value in items:
        name_b, value_b = _as_bytes(name), _as_bytes(value)
        out += (_encode_length(len(name_b)), _encode_length(len(value_b)), name_b, value_b)
    return b"".join(out)


def _pair_spans(blob: bytes, max_pairs: int) -> Iterator[tuple[int, int, int]]:
    """Yield (name start, value start, value end) of each pair; a bad length is the peer's."""
    n = len(blob)
    i = 0
    count = 0
    unpack = _U32.unpack_from
    while i < n:
        count += 1
        if count > max_pairs:
            raise ProtocolError(f"more than {max_pairs} name-value pairs", 431)
        name_len = blob[i]
        if name_len > 127:
            if i + 4 > n:
                raise ProtocolError(f"name-value pair {count}: truncated 4-byte name length")
            name_len = unpack(blob, i)[0] & 0x7FFFFFFF
            i += 4
        else:
            i += 1
        if i >= n:
            raise ProtocolError(f"name-value pair {count}: value length missing")
        value_len = blob[i]
        if value_len > 127:
            if i + 4 > n:
                raise ProtocolError(f"name-value pair {count}: truncated 4-byte value length")
            value_len = unpack(blob, i)[0] & 0x7FFFFFFF
            i += 4
        else:
            i += 1
        value_start = i + name_len
        end = value_start + value_len
        if end > n:
            raise ProtocolError(
                f"name-value pair {count}: lengths {name_len}+{value_len} run past the "
                f"{n - i} bytes left in the stream"
            )
        yield i, value_start, end
        i = end


def decode_pairs(blob: bytes, max_pairs: int = DEFAULT_MAX_PARAMS) -> list[tuple[bytes, bytes]]:
    """Parse a whole name-value stream into (name, value) byte pairs, in order."""
    return [(blob[a:b], blob[b:c]) for a, b, c in _pair_spans(blob, max_pairs)]


def _decode_params(blob: bytes, max_pairs: int) -> dict[str, str]:
    # The hot path of every request, so one loop without a generator, bounded by the pair limit
    # itself, with one test for the usual pair (both lengths in one byte). latin-1 maps byte i
    # to code point i: the text is decoded once and sliced at the byte offsets.
    text = blob.decode("latin-1")
    params: dict[str, str] = {}
    n = len(blob)
    i = 0
    unpack = _U32.unpack_from
    try:
        for _ in range(max_pairs):
            if i >= n:
                return params
            name_len = blob[i]
            value_len = blob[i + 1]
            if (name_len | value_len) < 128:
                i += 2
            else:  # a 4-byte length (high bit set), for the name, the value or both
                if name_len < 128:
                    i += 1
                else:
                    name_len = unpack(blob, i)[0] & 0x7FFFFFFF
                    i += 4
                value_len = blob[i]
                if value_len < 128:
                    i += 1
                else:
                    value_len = unpack(blob, i)[0] & 0x7FFFFFFF
                    i += 4
            middle = i + name_len
            end = middle + value_len
            if end > n:
                break
            params[text[i:middle]] = text[middle:end]
            i = end
        else:
            if i >= n:
                return params
            raise ProtocolError(f"more than {max_pairs} name-value pairs", 431)
    except (IndexError, struct.error):
        pass
    for _ in _pair_spans(blob, max_pairs):  # again, slowly, for the precise error
        pass
    raise AssertionError("unreachable")  # pragma: no cover


# Events are immutable, so those that carry nothing but a request's identity are made once and
# handed out again: building a frozen dataclass costs 3-6k instructions (one object.__setattr__
# call per field), a lookup a few hundred, and web servers number every request 1. The bound is
# loose by a few when threads race past the size check together; nothing relies on identity.
_BEGINS: dict[tuple[int, int, bool], BeginRequest] = {}
_STDIN_ENDS: dict[int, StdinEnd] = {}
_SHARED_MAX = 64


def _shared(events: dict[_K, _E], key: _K, event: _E) -> _E:
    if len(events) < _SHARED_MAX:
        events[key] = event
    return event


# -- records ----------------------------------------------------------------------------------


def _records(rtype: int, request_id: int, data: bytes, out: list[bytes], size: int) -> None:
    """Append ``data`` as records of at most ``size`` content bytes, each padded to 8."""
    n = len(data)
    if n <= size:
        pad = -n & 7
        out.append(HEADER.pack(VERSION, rtype, request_id, n, pad))
        out.append(data)
        if pad:
            out.append(_PADDING[pad])
        return
    view = memoryview(data)
    for start in range(0, n, size):
        chunk = view[start : start + size]
        length = len(chunk)
        pad = -length & 7
        out.append(HEADER.pack(VERSION, rtype, request_id, length, pad))
        out.append(chunk)  # type: ignore[arg-type]  # joined by data_to_send()
        if pad:
            out.append(_PADDING[pad])


def _end_of_stream(rtype: int, request_id: int) -> bytes:
    return HEADER.pack(VERSION, rtype, request_id, 0, 0)


class _RecordReader:
    """Cuts the byte stream into records; bytes are joined only once a whole record is there.

    ``_buf[_pos:]`` plus ``_more`` are the unread bytes; ``_pos`` advances (commits) only when a
    whole record was taken, so a partial record is simply left for the next call.
    """

    # Slots here and in the two connections, read several times per record: 2.8k instructions
    # less per keep_conn-off request on CPython 3.11, 0.9k on 3.13 (cachegrind).
    __slots__ = ("_buf", "_pos", "_more", "_more_len", "_eof", "_error", "_out")

    def __init__(self) -> None:
        self._buf = b""
        self._pos = 0
        self._more: list[bytes] = []
        self._more_len = 0
        self._eof = False
        self._error: ProtocolError | None = None
        self._out: list[bytes] = []

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        if self._eof:
            raise LocalProtocolError("receive_data() after the end of the stream")
        if self._pos >= len(self._buf):
            self._buf = bytes(data)
            self._pos = 0
        else:
            self._more.append(bytes(data))
            self._more_len += len(data)

    @property
    def buffered(self) -> int:
        """Bytes received but not yet parsed."""
        return len(self._buf) - self._pos + self._more_len

    def data_to_send(self) -> bytes:
        """Everything produced since the last call, to be written to the peer in order."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def _join(self) -> None:
        self._buf = b"".join([self._buf[self._pos :], *self._more])
        self._pos = 0
        self._more.clear()
        self._more_len = 0

    def _record(self) -> tuple[int, int, bytes] | None:
        """Take the next whole record as (type, request id, content), or None if incomplete."""
        buf = self._buf
        pos = self._pos
        have = len(buf) - pos
        if have < 8:
            if have + self._more_len < 8:
                return None
            self._join()
            buf, pos = self._buf, 0
        version, rtype, request_id, length, padding = HEADER.unpack_from(buf, pos)
        if version != VERSION:
            raise ProtocolError(
                f"record with FastCGI version {version} (expected 1): not a FastCGI peer, or "
                f"the stream is out of step (header bytes {bytes(buf[pos : pos + 8]).hex()})"
            )
        end = pos + 8 + length + padding
        if end > len(buf):
            if end - len(buf) > self._more_len:
                return None
            self._join()
            buf, pos = self._buf, 0
            end = 8 + length + padding
        start = pos + 8
        self._pos = end
        return rtype, request_id, buf[start : start + length]


class _Request:
    __slots__ = (
        "role",
        "keep_conn",
        "params",
        "params_size",
        "stdin_done",
        "data_done",
        "aborted",
        "discard",
        "stdout_used",
        "stderr_used",
    )

    def __init__(self, role: int, keep_conn: bool) -> None:
        self.role = role
        self.keep_conn = keep_conn
        self.params: list[bytes] | None = []
        self.params_size = 0
        self.stdin_done = False
        self.data_done = False
        self.aborted = False
        self.discard = False
        self.stdout_used = False
        self.stderr_used = False


class FastCGIConnection(_RecordReader):
    """The application's end of one FastCGI connection (see the module docstring)."""

    __slots__ = (
        "max_conns",
        "max_reqs",
        "multiplex",
        "roles",
        "max_params_size",
        "max_params",
        "_requests",
        "_ended",
        "_close_when_idle",
        "_closed_reported",
    )

    def __init__(
        self,
        *,
        max_conns: int = 1,
        max_reqs: int = 1,
        multiplex: bool = False,
        roles: Iterable[int] = ROLES,
        max_params_size: int = DEFAULT_MAX_PARAMS_SIZE,
        max_params: int = DEFAULT_MAX_PARAMS,
    ) -> None:
        super().__init__()
        self.max_conns = max_conns
        self.max_reqs = max_reqs
        self.multiplex = multiplex
        self.roles = frozenset(roles)
        self.max_params_size = max_params_size
        self.max_params = max_params
        self._requests: dict[int, _Request] = {}
        self._ended: set[int] = set()
        self._close_when_idle = False
        self._closed_reported = False

    @property
    def active_requests(self) -> frozenset[int]:
        """Ids of the requests begun and not yet ended."""
        return frozenset(self._requests)

    @property
    def should_close(self) -> bool:
        """True once every request is ended and one of them did not ask for FCGI_KEEP_CONN."""
        return self._close_when_idle and not self._requests

    def keep_conn(self, request_id: int) -> bool:
        return self._active(request_id).keep_conn

    def next_event(self) -> ApplicationEvent | NeedData:
        """The next event, :data:`NEED_DATA`, or :class:`ConnectionClosed` after end of stream."""
        if self._error is not None:
            raise self._error
        try:
            while True:
                record = self._record()
                if record is None:
                    if self._eof:
                        self._closed_reported = True
                        return ConnectionClosed()
                    return NEED_DATA
                event = self._handle(*record)
                if event is not None:
                    return event
        except RequestError:
            raise
        except ProtocolError as exc:
            self._error = exc
            raise

    def _handle(self, rtype: int, request_id: int, content: bytes) -> ApplicationEvent | None:
        request = self._requests.get(request_id)
        if request is not None and request.discard:
            return None
        if rtype == STDIN and request is not None:  # the hot path first
            if request.params is not None:
                raise ProtocolError(f"STDIN for request {request_id} before its PARAMS ended")
            if request.stdin_done:
                raise ProtocolError(f"STDIN for request {request_id} after its end of stream")
            if content:
                return Stdin(request_id, content)
            request.stdin_done = True
            return _STDIN_ENDS.get(request_id) or _shared(
                _STDIN_ENDS, request_id, StdinEnd(request_id)
            )
        if rtype == PARAMS and request is not None:
            return self._params(request_id, request, content)
        if request_id == 0:
            self._management(rtype, content)
            return None
        if rtype == BEGIN_REQUEST:
            return self._begin(request_id, request, content)
        name = RECORD_NAMES.get(rtype, f"type-{rtype}")
        if request is None:
            if request_id in self._ended:
                return None  # input left over from a request we already answered
            raise ProtocolError(f"{name} record for request {request_id}, which was never begun")
        if rtype == ABORT_REQUEST:
            if request.aborted:
                return None
            request.aborted = True
            return AbortRequest(request_id)
        if rtype == DATA:
            if request.role != FILTER:
                raise ProtocolError(f"DATA record for request {request_id}, not a FILTER request")
            if request.params is not None:
                raise ProtocolError(f"DATA for request {request_id} before its PARAMS ended")
            if request.data_done:
                raise ProtocolError(f"DATA for request {request_id} after its end of stream")
            if content:
                return Data(request_id, content)
            request.data_done = True
            return DataEnd(request_id)
        raise ProtocolError(
            f"{name} record for request {request_id}: not a record a web server sends"
        )

    def _params(self, request_id: int, request: _Request, content: bytes) -> Params | None:
        chunks = request.params
        if chunks is None:
            raise ProtocolError(f"PARAMS for request {request_id} after its end of stream")
        if content:
            request.params_size += len(content)
            if request.params_size > self.max_params_size:
                request.discard = True
                request.params = None
                raise RequestError(
                    f"request {request_id}: PARAMS exceed {self.max_params_size} bytes "
                    "(request headers too large)",
                    request_id,
                )
            chunks.append(content)
            return None
        request.params = None
        blob = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        try:
            params = _decode_params(blob, self.max_params)
        except ProtocolError as exc:
            if exc.status_hint != 431:
                raise
            request.discard = True
            raise RequestError(f"request {request_id}: {exc}", request_id) from None
        return Params(request_id, params)

    def _begin(
        self, request_id: int, request: _Request | None, content: bytes
    ) -> BeginRequest | None:
        if len(content) != 8:
            raise ProtocolError(
                f"BEGIN_REQUEST for request {request_id} has {len(content)} content bytes, not 8"
            )
        if request is not None:
            raise ProtocolError(f"BEGIN_REQUEST for request {request_id}, which is still active")
        role, flags = _BEGIN_BODY.unpack(content)
        keep_conn = bool(flags & KEEP_CONN)
        self._ended.discard(request_id)
        if role not in self.roles:
            self._refuse(request_id, UNKNOWN_ROLE, keep_conn)
            return None
        if self._requests and not self.multiplex:
            self._refuse(request_id, CANT_MPX_CONN, keep_conn)
            return None
        if len(self._requests) >= self.max_reqs:
            self._refuse(request_id, OVERLOADED, keep_conn)
            return None
        self._requests[request_id] = _Request(role, keep_conn)
        key = (request_id, role, keep_conn)
        return _BEGINS.get(key) or _shared(_BEGINS, key, BeginRequest(request_id, role, keep_conn))

    def _refuse(self, request_id: int, protocol_status: int, keep_conn: bool) -> None:
        self._out.append(
            _END_RECORD.pack(VERSION, END_REQUEST, request_id, 8, 0, 0, protocol_status)
        )
        self._ended.add(request_id)
        if not keep_conn:
            self._close_when_idle = True

    def _management(self, rtype: int, content: bytes) -> None:
        if rtype != GET_VALUES:
            self._out.append(_UNKNOWN_TYPE_RECORD.pack(VERSION, UNKNOWN_TYPE, 0, 8, 0, rtype))
            return
        known = {
            b"FCGI_MAX_CONNS": str(self.max_conns).encode(),
            b"FCGI_MAX_REQS": str(self.max_reqs).encode(),
            b"FCGI_MPXS_CONNS": b"1" if self.multiplex else b"0",
        }
        answer = [(name, known[name]) for name, _ in decode_pairs(content, 64) if name in known]
        _records(GET_VALUES_RESULT, 0, encode_pairs(answer), self._out, MAX_CONTENT)

    # -- output ------------------------------------------------------------------------------

    def _active(self, request_id: int) -> _Request:
        request = self._requests.get(request_id)
        if request is None:
            raise LocalProtocolError(f"request {request_id} is not active on this connection")
        return request

    def stdout(self, request_id: int, data: bytes) -> None:
        """Queue response bytes (records of at most 65,535 bytes); ``b""`` is a no-op."""
        request = self._active(request_id)
        if data:
            request.stdout_used = True
            _records(STDOUT, request_id, bytes(data), self._out, MAX_CONTENT)

    def stderr(self, request_id: int, data: bytes) -> None:
        """Queue bytes for the web server's error log; ``b""`` is a no-op."""
        request = self._active(request_id)
        if data:
            request.stderr_used = True
            _records(STDERR, request_id, bytes(data), self._out, MAX_CONTENT)

    def end_request(
        self, request_id: int, app_status: int = 0, protocol_status: int = REQUEST_COMPLETE
    ) -> None:
        """End STDERR if used and STDOUT, then queue END_REQUEST; the request is over.

        STDOUT is ended (an empty record) for a completed request even when nothing was written,
        and for a refused one (OVERLOADED...) when something was.
        """
        request = self._requests.pop(request_id, None)
        if request is None:
            raise LocalProtocolError(f"request {request_id} is not active on this connection")
        self._ended.add(request_id)
        if not request.keep_conn:
            self._close_when_idle = True
        out = self._out
        if request.stderr_used:
            out.append(_end_of_stream(STDERR, request_id))
        app_status &= 0xFFFFFFFF
        if protocol_status == REQUEST_COMPLETE or request.stdout_used:
            out.append(
                _STDOUT_END_AND_END_RECORD.pack(
                    VERSION,
                    STDOUT,
                    request_id,
                    0,
                    0,
                    VERSION,
                    END_REQUEST,
                    request_id,
                    8,
                    0,
                    app_status,
                    protocol_status,
                )
            )
        else:
            out.append(
                _END_RECORD.pack(
                    VERSION, END_REQUEST, request_id, 8, 0, app_status, protocol_status
                )
            )


class FastCGIClientConnection(_RecordReader):
    """The web server's end of one FastCGI connection: requests out, responses in.

    ``record_size`` is the largest content of the PARAMS, STDIN and DATA records written
    (cgi-fcgi uses 8192, Apache 16384); name-value pairs are split across records at any byte.
    """

    __slots__ = ("record_size", "_active")

    def __init__(self, *, record_size: int = MAX_CONTENT) -> None:
        super().__init__()
        if not 0 < record_size <= MAX_CONTENT:
            raise ValueError(f"record_size must be 1..{MAX_CONTENT}, not {record_size}")
        self.record_size = record_size
        self._active: set[int] = set()

    def begin_request(
        self, request_id: int, role: int = RESPONDER, keep_conn: bool = False
    ) -> None:
        if not 0 < request_id <= 0xFFFF:
            raise LocalProtocolError(f"request id must be 1..65535, not {request_id}")
        if request_id in self._active:
            raise LocalProtocolError(f"request {request_id} is already active")
        self._active.add(request_id)
        body = _BEGIN_BODY.pack(role, KEEP_CONN if keep_conn else 0)
        self._out += (HEADER.pack(VERSION, BEGIN_REQUEST, request_id, 8, 0), body)

    def params(
        self,
        request_id: int,
        params: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    ) -> None:
        """Queue the whole PARAMS stream (split into records) and its empty end record."""
        self._stream(PARAMS, request_id, encode_pairs(params))
        self._out.append(_end_of_stream(PARAMS, request_id))

    def stdin(self, request_id: int, data: bytes) -> None:
        self._stream(STDIN, request_id, data)

    def end_stdin(self, request_id: int) -> None:
        self._out.append(_end_of_stream(STDIN, request_id))

    def data(self, request_id: int, data: bytes) -> None:
        self._stream(DATA, request_id, data)

    def end_data(self, request_id: int) -> None:
        self._out.append(_end_of_stream(DATA, request_id))

    def abort_request(self, request_id: int) -> None:
        self._out.append(_end_of_stream(ABORT_REQUEST, request_id))

    def get_values(self, names: Iterable[str | bytes]) -> None:
        """Ask for FCGI_MAX_CONNS, FCGI_MAX_REQS, FCGI_MPXS_CONNS (or any names)."""
        _records(GET_VALUES, 0, encode_pairs((name, b"") for name in names), self._out, MAX_CONTENT)

    def raw_record(self, rtype: int, request_id: int, content: bytes = b"") -> None:
        """Queue any record, e.g. one the protocol does not define (for tests)."""
        _records(rtype, request_id, content, self._out, MAX_CONTENT)

    def _stream(self, rtype: int, request_id: int, data: bytes) -> None:
        if request_id not in self._active:
            raise LocalProtocolError(f"request {request_id} is not active on this connection")
        if data:
            _records(rtype, request_id, bytes(data), self._out, self.record_size)

    def next_event(self) -> ClientEvent | NeedData:
        if self._error is not None:
            raise self._error
        try:
            while True:
                record = self._record()
                if record is None:
                    if self._eof:
                        return ConnectionClosed()
                    return NEED_DATA
                event = self._handle(*record)
                if event is not None:
                    return event
        except ProtocolError as exc:
            self._error = exc
            raise

    def _handle(self, rtype: int, request_id: int, content: bytes) -> ClientEvent | None:
        if request_id == 0:
            if rtype == GET_VALUES_RESULT:
                return GetValuesResult(dict(decode_pairs(content, 1000)))
            if rtype == UNKNOWN_TYPE:
                if len(content) != 8:
                    raise ProtocolError(f"UNKNOWN_TYPE with {len(content)} content bytes, not 8")
                return UnknownType(content[0])
            raise ProtocolError(f"management record of type {rtype} sent by the application")
        name = RECORD_NAMES.get(rtype, f"type-{rtype}")
        if request_id not in self._active:
            raise ProtocolError(f"{name} record for request {request_id}, which is not active")
        if rtype == STDOUT:
            return Stdout(request_id, content) if content else None
        if rtype == STDERR:
            return Stderr(request_id, content) if content else None
        if rtype == END_REQUEST:
            if len(content) != 8:
                raise ProtocolError(f"END_REQUEST with {len(content)} content bytes, not 8")
            app_status, protocol_status = _END_BODY.unpack(content)
            self._active.discard(request_id)
            return EndRequest(request_id, app_status, protocol_status)
        raise ProtocolError(f"{name} record for request {request_id}: not one an application sends")
