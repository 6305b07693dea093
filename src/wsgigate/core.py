"""The one WSGI implementation every gateway calls: environ in, response out.

A gateway turns its input into CGI-style meta-variables and a body stream, then calls
:func:`build_environ` and :func:`run_app`; it turns what :func:`run_app` hands its
:class:`ResponseWriter` back into its own wire format. Nothing here does I/O of its own.

It is one module, not a package of three, because a CGI request and a Lambda cold start pay for
every module they load (find, read, unmarshal: 0.1-0.2 ms each, docs/benchmarks.md) and every
request needs all of this. For the same reason nothing here imports ``logging``, ``re`` or
``typing`` at import time, annotations naming typing-only things are quoted instead of using
``from __future__ import annotations``, and ``wsgigate.errors`` is imported only where an error
is raised or caught. Its three parts:

- environ: PEP 3333 wants every value as a "native string" whose code points are the raw bytes
  the client sent (latin-1 decoding). Gateways that receive bytes (CGI via ``os.environb``,
  FastCGI, SCGI) decode with latin-1; gateways that receive text (Lambda events, ASGI paths)
  re-encode through :func:`unicode_to_wsgi`. Either way the application sees the same thing.
- what an application may pass to ``start_response``, and the CGI-style response head
  (``Status:`` line, headers, blank line) that CGI, FastCGI and SCGI all answer with.
- :func:`run_app`: calls the app, validates ``start_response``, implements ``exc_info`` and
  ``write()`` as PEP 3333 says, sends the head together with the first non-empty body chunk,
  enforces the app's Content-Length, always calls ``close()``, and turns failures into a 500
  or a cut-off response plus one log record.
"""

import sys

TYPE_CHECKING = False  # typing costs milliseconds at a CGI cold start; mypy still reads this
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from types import TracebackType
    from typing import IO, Any, Protocol
    from wsgiref.types import WSGIApplication

    from wsgigate.errors import ApplicationError, ClientDisconnected

    class BinaryReader(Protocol):
        def read(self, size: int = ..., /) -> bytes: ...

    ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

    class ResponseWriter(Protocol):
        """Where a gateway receives the response. Any exception it raises means the peer is gone.

        ``start`` is called at most once, right before the first ``write`` or ``finish``;
        ``finish`` carries the last chunk (often the whole body) so a gateway can send head and
        body in one go. After an error once the head is out (an exception, or a body shorter
        than the app's Content-Length), ``finish`` is never called: the gateway must cut the
        response off (see :attr:`Outcome.complete`).
        """

        def start(self, status: str, headers: list[tuple[str, str]]) -> None: ...
        def write(self, data: bytes) -> None: ...
        def finish(self, data: bytes) -> None: ...

        # Optional: ``send_file(wrapper, length)`` lets a writer that can send a file itself
        # (the ASGI bridge through ``http.response.pathsend``) take over a GET answered 200 with
        # a ``wsgi.file_wrapper``: it returns the number of bytes it will send (the whole file,
        # equal to ``length``, the app's Content-Length, when the app gave one), or ``None`` to
        # let the core iterate the wrapper. Then ``start`` and ``finish(b"")`` follow as usual.

else:
    ResponseWriter = object

__all__ = [
    "ErrorStream",
    "FileWrapper",
    "InputStream",
    "Outcome",
    "ResponseWriter",
    "build_environ",
    "cgi_response_head",
    "content_length",
    "run_app",
    "unicode_to_wsgi",
    "unquote_to_wsgi",
    "validate_headers",
    "validate_status",
]


# -- environ ---------------------------------------------------------------------------------------

_READ_CHUNK = 65536
_MAX_READ = 1 << 20
_HEX = frozenset("0123456789abcdefABCDEF")


def unicode_to_wsgi(text: str) -> str:
    """Re-express decoded text (a UTF-8 path from an event) as PEP 3333 bytes-as-latin-1."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def unquote_to_wsgi(path: str) -> str:
    """Percent-decode a native string into a native string: ``%C3%A9`` -> ``'\xc3\xa9'``.

    Decodes to bytes, never to text (no urllib import: it costs the CGI cold start).
    """
    if "%" not in path:
        return path
    head, *rest = path.split("%")
    out = bytearray(head.encode("latin-1"))
    for piece in rest:
        pair = piece[:2]
        # int(x, 16) alone would also take "4", "+1" or " 1": only two hex digits are an escape
        if len(pair) == 2 and _HEX.issuperset(pair):
            out.append(int(pair, 16))
            out += piece[2:].encode("latin-1")
        else:
            out += b"%" + piece.encode("latin-1")
    return out.decode("latin-1")


def content_length(meta: "Mapping[str, str]") -> int | None:
    """CONTENT_LENGTH as an int, ``None`` when absent or empty; a bad value is the peer's error."""
    raw = meta.get("CONTENT_LENGTH")
    if not raw:
        return None
    if not raw.isdigit() or not raw.isascii():
        from wsgigate.errors import ProtocolError  # errors are imported when one happens

        raise ProtocolError(f"invalid CONTENT_LENGTH {raw[:40]!r}", 400)
    return int(raw)


_ON = ("on", "On", "ON", "1", "yes", "true")


def _url_scheme(meta: "Mapping[str, str]") -> str:
    https = meta.get("HTTPS")
    if https is not None and (https in _ON or https.lower() in ("on", "1", "yes", "true")):
        return "https"
    scheme = meta.get("REQUEST_SCHEME")
    return "https" if scheme is not None and scheme.lower() == "https" else "http"


def build_environ(
    meta: "Mapping[str, str]",
    stdin: "InputStream | IO[bytes]",
    errors: "IO[str] | ErrorStream",
    multithread: bool,
    multiprocess: bool,
    run_once: bool,
    url_scheme: str | None = None,
    reuse: bool = False,
) -> "dict[str, Any]":
    """Return the WSGI environ for one request; pure apart from the two streams it is given.

    ``meta`` holds CGI meta-variables as PEP 3333 native strings. The result always has the keys
    PEP 3333 requires, never ``HTTP_PROXY`` (httpoxy: a client's ``Proxy:`` header must not
    configure the application's outgoing proxy) and never ``HTTP_CONTENT_TYPE`` or
    ``HTTP_CONTENT_LENGTH`` (the body's framing lives in the un-prefixed names only).

    ``reuse=True``: ``meta`` is a dict the gateway made for this request alone; it becomes the
    environ instead of being copied.

    The parameters are not keyword-only: a hot caller (the Lambda handler) passes them by
    position, which CPython 3.11 specializes; other callers name them.
    """
    # Every gateway calls this once per request (a Lambda event's whole budget is a few
    # microseconds): a plain copy, membership tests instead of pop/setdefault calls, and plain
    # stores, which measured fastest (a {**a, **b} display is twice as slow).
    scheme = url_scheme or _url_scheme(meta)
    environ: dict[str, Any] = meta if reuse and type(meta) is dict else dict(meta)
    if "HTTP_PROXY" in environ:
        del environ["HTTP_PROXY"]
    if "HTTP_CONTENT_TYPE" in environ:
        duplicate = environ.pop("HTTP_CONTENT_TYPE")
        if not environ.get("CONTENT_TYPE"):
            environ["CONTENT_TYPE"] = duplicate
    if "HTTP_CONTENT_LENGTH" in environ:
        duplicate = environ.pop("HTTP_CONTENT_LENGTH")
        if not environ.get("CONTENT_LENGTH"):
            environ["CONTENT_LENGTH"] = duplicate
    if "CONTENT_LENGTH" in environ and not environ["CONTENT_LENGTH"]:
        del environ["CONTENT_LENGTH"]
    if "CONTENT_TYPE" in environ and not environ["CONTENT_TYPE"]:
        del environ["CONTENT_TYPE"]
    if "REQUEST_METHOD" not in environ:
        environ["REQUEST_METHOD"] = "GET"
    if "SCRIPT_NAME" not in environ:
        environ["SCRIPT_NAME"] = ""
    if "PATH_INFO" not in environ:
        environ["PATH_INFO"] = ""
    if "QUERY_STRING" not in environ:
        environ["QUERY_STRING"] = ""
    if "SERVER_PROTOCOL" not in environ:
        environ["SERVER_PROTOCOL"] = "HTTP/1.1"
    if not environ.get("SERVER_NAME"):
        host = environ.get("HTTP_HOST", "")
        name, sep, port = host.rpartition(":")
        if not sep or "]" in port:
            name, port = host, ""
        environ["SERVER_NAME"] = name or "localhost"
        if not environ.get("SERVER_PORT") and port.isdigit():
            environ["SERVER_PORT"] = port
    if not environ.get("SERVER_PORT"):
        environ["SERVER_PORT"] = "443" if scheme == "https" else "80"
    environ["wsgi.version"] = (1, 0)
    environ["wsgi.url_scheme"] = scheme
    environ["wsgi.input"] = stdin
    environ["wsgi.errors"] = errors
    environ["wsgi.multithread"] = multithread
    environ["wsgi.multiprocess"] = multiprocess
    environ["wsgi.run_once"] = run_once
    environ["wsgi.file_wrapper"] = FileWrapper
    environ["wsgi.input_terminated"] = True
    return environ


class InputStream:
    """``wsgi.input``: the request body, never read past ``length`` bytes.

    ``length=None`` means the body is framed by the transport (FastCGI's empty STDIN record,
    an ASGI ``more_body=False``) and is read until ``raw`` reports end of stream. A stream that
    ends before ``length`` raises :class:`ClientDisconnected`: the application must not mistake
    a truncated upload for a complete one.

    ``raw=None`` means no body at all. A body that is wholly in memory before the request
    starts, when the gateway sets CONTENT_LENGTH from that body itself (a Lambda event's), needs
    neither bound nor truncation check: ``io.BytesIO`` serves it.
    """

    __slots__ = ("_buffer", "_raw", "_remaining", "_length")

    def __init__(self, raw: "BinaryReader | None", length: int | None) -> None:
        self._raw = raw
        self._length = length
        self._remaining = -1 if length is None else length
        self._buffer = b""  # what readline() read past the end of its line

    def _fill(self, size: int) -> bytes:
        """Read up to ``size`` bytes from the transport, honouring the length bound."""
        if self._remaining == 0:
            return b""
        if self._remaining > 0:
            size = min(size, self._remaining)
        if size > _MAX_READ:
            size = _MAX_READ  # a buffered reader allocates `size` before any byte arrives
        raw = self._raw
        data = raw.read(size) if raw is not None else b""  # None: no body at all
        if not data:
            if self._remaining > 0:
                from wsgigate.errors import ClientDisconnected

                raise ClientDisconnected(
                    f"request body ended after {self._length - self._remaining} "  # type: ignore[operator]
                    f"of {self._length} bytes"
                )
            self._remaining = 0
            return b""
        if self._remaining > 0:
            self._remaining -= len(data)
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buffer]
            self._buffer = b""
            while chunk := self._fill(_READ_CHUNK if self._remaining < 0 else self._remaining):
                parts.append(chunk)
            return b"".join(parts)
        if len(self._buffer) >= size:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
            return data
        parts = [self._buffer]
        have = len(self._buffer)
        self._buffer = b""
        while have < size and (chunk := self._fill(size - have)):
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        limit = sys.maxsize if size is None or size < 0 else size
        buffer = self._buffer
        end = buffer.find(b"\n", 0, limit)
        if end >= 0 or len(buffer) >= limit:
            cut = end + 1 if end >= 0 else limit
            self._buffer = buffer[cut:]
            return buffer[:cut]
        # Collect pieces and search only the new one: appending to one bytes object would be
        # quadratic when the transport hands the line over in many small reads.
        parts = [buffer]
        have = len(buffer)
        self._buffer = b""
        try:
            while chunk := self._fill(8192):
                end = chunk.find(b"\n", 0, limit - have)
                if end >= 0 or have + len(chunk) >= limit:
                    cut = end + 1 if end >= 0 else limit - have
                    parts.append(chunk[:cut])
                    self._buffer = chunk[cut:]
                    break
                parts.append(chunk)
                have += len(chunk)
        except BaseException:
            self._buffer = b"".join(parts)
            raise
        return b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> "Iterator[bytes]":
        while line := self.readline():
            yield line

    def drain(self) -> int:
        """Read and drop what the application left unread; returns how many bytes that was."""
        dropped = len(self._buffer)
        self._buffer = b""
        while chunk := self._fill(_READ_CHUNK):
            dropped += len(chunk)
        return dropped


class ErrorStream:
    """``wsgi.errors``: text written here becomes records of the ``wsgigate.error`` logger.

    One record per line, so a multi-line write stays readable in any log handler; ``logging`` is
    imported on first use because most requests never write here and CGI pays for every import.
    """

    __slots__ = ("_pending",)

    def __init__(self) -> None:
        self._pending = ""

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"wsgi.errors.write() takes str, not {type(text).__name__}")
        data = self._pending + text
        *lines, self._pending = data.split("\n")
        for line in lines:
            _log_line(line)
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            _log_line(line)


def _log_line(line: str) -> None:
    import logging

    logging.getLogger("wsgigate.error").warning("%s", line.rstrip("\r"))


class FileWrapper:
    """``wsgi.file_wrapper``: iterate a file in blocks; gateways may send it more cleverly."""

    __slots__ = ("filelike", "blksize")

    def __init__(self, filelike: "Any", blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> "Iterator[bytes]":
        read = self.filelike.read
        while data := read(self.blksize):
            yield data

    def close(self) -> None:
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


# -- start_response validation and the CGI-style head ---------------------------------------------

# RFC 9110 section 7.6.1: connection-specific headers belong to the server, not the application.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)

# RFC 9110 section 5.6.2 tchar.
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")

# Header names repeat across requests; remember the ones already proven valid (bounded).
_valid_names: dict[str, str] = {}
_VALID_NAMES_MAX = 512
# (name, value) pairs already proven valid -> -1, or the Content-Length they carry (bounded).
_valid_headers: dict[tuple[str, str], int] = {}
_VALID_HEADERS_MAX = 1024
# Status lines repeat too: line -> code once validated (bounded; the runner looks here first).
_statuses: dict[str, int] = {}


def _invalid(message: str) -> "ApplicationError":
    """The error for a broken response; wsgigate.errors is imported only when there is one."""
    from wsgigate.errors import ApplicationError

    return ApplicationError(message)


def validate_status(status: object) -> int:
    """Check a WSGI status line such as ``"200 OK"``; return the status code."""
    if type(status) is not str:
        raise _invalid(f"status must be str, not {type(status).__name__}")
    code = status[:3]
    if (
        len(status) < 4
        or status[3] != " "
        or not (code.isascii() and code.isdigit())
        or code[0] == "0"
        or not status.isprintable()
    ):
        raise _invalid(f"invalid status line {status!r}: expected e.g. '200 OK'")
    if not status.isascii():
        try:
            status.encode("latin-1")  # the head is serialized as latin-1 by every gateway
        except UnicodeEncodeError:
            raise _invalid(f"status line {status!r} is not latin-1") from None
    number = int(code)
    if len(_statuses) < 64:
        _statuses[status] = number
    return number


def _check_name(name: object) -> str:
    if type(name) is not str:
        raise _invalid(f"header name must be str, not {type(name).__name__}")
    if not name or not _TCHAR.issuperset(name):
        raise _invalid(f"invalid header name {name!r}")
    lower = name.lower()
    if lower in HOP_BY_HOP:
        raise _invalid(f"hop-by-hop header {name!r} is the server's to send, not the app's")
    if len(_valid_names) < _VALID_NAMES_MAX:
        _valid_names[name] = lower
    return lower


def _has_control(value: str) -> bool:
    """PEP 3333: no control characters in a header value (HTAB is allowed, as RFC 9110 does)."""
    return any((char < " " and char != "\t") or char == "\x7f" for char in value)


def validate_headers(headers: object) -> int | None:
    """Check the application's header list; return its Content-Length if it gave one."""
    if not isinstance(headers, list):
        raise _invalid(f"headers must be a list, not {type(headers).__name__}")
    length = None
    for item in headers:
        # Most headers repeat from one response to the next: a header seen valid before costs
        # one lookup (-1: valid, else the Content-Length it carries).
        if type(item) is tuple:
            try:
                known = _valid_headers.get(item)
            except TypeError:  # an unhashable member: the checks below say what is wrong
                known = None
            if known is not None:
                if known >= 0:
                    length = known
                continue
        if type(item) is not tuple or len(item) != 2:
            raise _invalid(f"header {item!r} is not a (name, value) tuple")
        name, value = item
        lower = (_valid_names.get(name) if type(name) is str else None) or _check_name(name)
        if type(value) is not str:
            raise _invalid(f"value of header {name!r} must be str, not {type(value).__name__}")
        if not value.isprintable() and _has_control(value):
            raise _invalid(f"value of header {name!r} contains a control character (CR, LF...)")
        if not value.isascii():
            try:
                value.encode("latin-1")
            except UnicodeEncodeError:
                raise _invalid(
                    f"value of header {name!r} is not latin-1; encode it (RFC 8187, RFC 2047)"
                ) from None
        if lower == "content-length":
            if not (value.isascii() and value.isdigit()):
                raise _invalid(f"invalid Content-Length {value!r}")
            length = int(value)
            if len(_valid_headers) < _VALID_HEADERS_MAX:
                _valid_headers[item] = length
        elif len(_valid_headers) < _VALID_HEADERS_MAX:
            _valid_headers[item] = -1
    return length


def cgi_response_head(status: str, headers: "Iterable[tuple[str, str]]") -> bytes:
    """Serialize a CGI response head (RFC 3875 section 6): ``Status:``, headers, blank line."""
    parts = ["Status: ", status, "\r\n"]
    for name, value in headers:
        parts += (name, ": ", value, "\r\n")
    parts.append("\r\n")
    return "".join(parts).encode("latin-1")


# -- running the app -------------------------------------------------------------------------------


class Outcome:
    """What happened to one request: for the access log and for the gateway's next step."""

    # Slots: on CPython 3.12 and later the per-request exchange's attribute reads and writes
    # cost about twice as much in an instance dict (cachegrind); on 3.11 slots cost the same.
    __slots__ = ("status", "sent", "complete", "disconnected")

    def __init__(
        self, status: int = 0, sent: int = 0, complete: bool = False, disconnected: bool = False
    ) -> None:
        self.status = status  # HTTP status code sent, 0 if nothing was sent
        self.sent = sent  # body bytes handed to the writer
        self.complete = complete  # finish() was called: the response is whole
        self.disconnected = disconnected  # the peer went away


_ERROR_BODY = b"Internal Server Error\n"


class _Exchange(Outcome):
    """State of one request/response, with ``start_response`` and ``write`` as bound methods.

    It is its own :class:`Outcome` (one object per request instead of two): ``status`` is the
    code sent, ``line`` the status line the app gave. :func:`run_app` (the only maker) sets
    every field but ``headers``, which start_response() sets with ``line``.
    """

    __slots__ = ("environ", "writer", "debug", "line", "headers", "head_sent", "remaining")
    # run_app() sets every field itself, in one order: no __init__ call per request.
    __init__ = object.__init__

    environ: "dict[str, Any]"
    writer: "ResponseWriter"
    debug: bool
    line: "str | None"
    headers: "list[tuple[str, str]]"  # set with line; never mutated: start_response replaces it
    head_sent: bool
    remaining: "int | None"  # body bytes the app's Content-Length still allows

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: "ExcInfo | None" = None
    ) -> "Callable[[bytes], object]":
        if exc_info is not None:
            try:
                if self.head_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # break the frame <-> traceback cycle
        elif self.line is not None:
            raise _invalid("start_response() called a second time without exc_info")
        code = _statuses.get(status) if type(status) is str else None
        if code is None:
            code = validate_status(status)
        # validate_headers() for headers all seen valid before, inline (the usual case); any
        # other header (a None key is never there) makes validate_headers() check them all.
        length = None
        if type(headers) is list:
            valid: dict[Any, int] = _valid_headers
            try:
                for item in headers:
                    known = valid[item if type(item) is tuple else None]
                    if known >= 0:
                        length = known
            except (KeyError, TypeError):  # TypeError: an unhashable item
                length = validate_headers(headers)
        else:
            length = validate_headers(headers)
        self.remaining = length
        self.line = status
        self.headers = headers
        self.status = code
        return self.write

    def _bounded(self, data: bytes) -> bytes:
        """Cut ``data`` to what the app's Content-Length allows, logging the first excess."""
        remaining = self.remaining
        if remaining is None or len(data) <= remaining:
            if remaining is not None:
                self.remaining = remaining - len(data)
            return data
        if remaining >= 0:
            _log().error(
                "%s: application sent more than its Content-Length; truncated",
                _request(self.environ),
            )
            self.remaining = -1  # log once
        return data[: max(remaining, 0)]

    def _head(self) -> None:
        if self.line is None:
            raise _invalid("application sent body data before calling start_response()")
        try:
            self.writer.start(self.line, self.headers)
        except Exception as exc:
            raise _disconnected(exc) from exc
        self.head_sent = True

    def write(self, data: bytes) -> None:
        """Send one body chunk (also the ``write()`` callable PEP 3333 gives the app)."""
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise _invalid(f"body chunks must be bytes, not {type(data).__name__}")
            data = bytes(data)
        if data:
            self._send(self._bounded(data))

    def _send(self, data: bytes) -> None:
        """The head if it is not out yet, then ``data`` (if any): not the last chunk."""
        if not self.head_sent:
            self._head()
        if data:
            try:
                self.writer.write(data)
            except Exception as exc:
                raise _disconnected(exc) from exc
            self.sent += len(data)

    def finish(self, data: bytes = b"") -> None:
        if type(data) is not bytes:
            if not isinstance(data, (bytes, bytearray, memoryview)):
                raise _invalid(f"body chunks must be bytes, not {type(data).__name__}")
            data = bytes(data)
        line = self.line
        if line is None:
            raise _invalid("application returned without calling start_response()")
        size = len(data)
        remaining = self.remaining
        if remaining is not None:
            if size <= remaining:
                remaining -= size
                self.remaining = remaining
            else:
                data = self._bounded(data)
                size = len(data)
                remaining = -1  # an excess was truncated
            if remaining > 0 and not self._bodiless():
                self._short(data, remaining)
                return
        writer = self.writer
        if not self.head_sent:
            try:
                writer.start(line, self.headers)
            except Exception as exc:
                raise _disconnected(exc) from exc
            self.head_sent = True
        try:
            writer.finish(data)
        except Exception as exc:
            raise _disconnected(exc) from exc
        self.sent += size
        self.complete = True

    def _short(self, data: bytes, remaining: int) -> None:
        """The client was promised more bytes than it got: leave the response unfinished so the
        gateway cuts it off, instead of keeping the client waiting for the rest."""
        _log().error(
            "%s: application sent %d bytes less than its Content-Length; response cut off",
            _request(self.environ),
            remaining,
        )
        self._send(data)

    def _bodiless(self) -> bool:
        """A HEAD request or a 1xx/204/304 status: Content-Length describes a body never sent."""
        status = self.status
        return status < 200 or status in (204, 304) or self.environ.get("REQUEST_METHOD") == "HEAD"

    def fail(self, exc: BaseException) -> None:
        """The app raised: answer 500 if nothing was sent yet, else leave the response cut off."""
        if self.head_sent:
            _log().error(
                "%s: application raised after the response started; response cut off",
                _request(self.environ),
                exc_info=exc,
            )
            return
        _log().error("%s: application raised", _request(self.environ), exc_info=exc)
        body = _ERROR_BODY
        if self.debug:
            import traceback

            body = "".join(traceback.format_exception(exc)).encode("utf-8", "replace")
        self.line = "500 Internal Server Error"
        self.headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        self.remaining = None
        self.status = 500
        try:
            self.finish(body)
        except Exception as exc:
            if not _is_disconnect(exc):
                raise
            self.disconnected = True


def run_app(
    app: "WSGIApplication",
    environ: "dict[str, Any]",
    writer: "ResponseWriter",
    debug: bool = False,
) -> "Outcome":
    """Run ``app`` for one request, sending the response to ``writer``; never raises for app errors.

    ``debug=True`` puts the traceback in the 500 body; leave it off in production.
    """
    # debug is positional-or-keyword on purpose: CPython 3.11 specializes calls
    # (CALL_PY_WITH_DEFAULTS) only to functions without keyword-only parameters, called without
    # keywords; the Lambda handler's per-event call relies on it.
    exchange: _Exchange = _Exchange()  # no __init__: every field is set here
    exchange.status = 0
    exchange.sent = 0
    exchange.complete = False
    exchange.disconnected = False
    exchange.environ = environ
    exchange.writer = writer
    exchange.debug = debug
    exchange.line = None
    exchange.head_sent = False
    exchange.remaining = None
    result: Iterable[bytes] | None = None
    try:
        result = app(environ, exchange.start_response)  # type: ignore[arg-type]
        if type(result) is list or type(result) is tuple:
            # The whole body is known: send all but the last chunk, then finish with the last,
            # so a one-chunk response leaves as one write (head and body together).
            if len(result) > 1:
                for chunk in result[:-1]:
                    exchange.write(chunk)
            exchange.finish(result[-1] if result else b"")
        elif not (isinstance(result, FileWrapper) and _sent_as_file(exchange, result)):
            for chunk in result:
                exchange.write(chunk)
            exchange.finish()
    except Exception as exc:
        if _is_disconnect(exc):
            exchange.disconnected = True
            _log().info("%s: client disconnected: %s", _request(environ), exc)
        else:
            exchange.fail(exc)
    finally:
        if type(result) is not list:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception as exc:
                    _log().error(
                        "%s: close() of the app's iterable raised", _request(environ), exc_info=exc
                    )
        errors = environ.get("wsgi.errors")
        if type(errors) is ErrorStream and errors._pending:
            errors.flush()  # a last line without a newline is still logged
    return exchange


def _sent_as_file(exchange: _Exchange, wrapper: FileWrapper) -> bool:
    """Offer the writer to send the app's file itself (see ``ResponseWriter``)."""
    send_file = getattr(exchange.writer, "send_file", None)
    if (
        send_file is None
        or exchange.status != 200
        or exchange.head_sent
        or exchange.environ.get("REQUEST_METHOD") != "GET"
    ):
        return False
    size = send_file(wrapper, exchange.remaining)
    if size is None:
        return False
    exchange.remaining = None  # the writer sends exactly what the Content-Length promised
    exchange.finish(b"")
    exchange.sent = size
    return True


def _disconnected(exc: Exception) -> "ClientDisconnected":
    """The writer raised: the peer is gone. wsgigate.errors is imported on error paths only
    (the CGI gateway pays for every import on every request)."""
    from wsgigate.errors import ClientDisconnected

    return ClientDisconnected(str(exc))


def _is_disconnect(exc: Exception) -> bool:
    from wsgigate.errors import ClientDisconnected

    return isinstance(exc, ClientDisconnected)


def _request(environ: "dict[str, Any]") -> str:
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING")
    return f"{environ.get('REQUEST_METHOD', '?')} {path}{'?' + query if query else ''}"


def _log() -> "Any":
    import logging

    return logging.getLogger("wsgigate.error")
