"""Build a PEP 3333 ``environ`` from CGI-style meta-variables.

PEP 3333 wants every value as a "native string" whose code points are the raw bytes the client
sent (latin-1 decoding). Gateways that receive bytes (CGI via ``os.environb``, FastCGI, SCGI)
decode with latin-1; gateways that receive text (Lambda events, ASGI paths) re-encode through
:func:`unicode_to_wsgi`. Either way the application sees the same thing.
"""

import sys

TYPE_CHECKING = False  # typing costs milliseconds at a CGI cold start; mypy still reads this
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import IO, Any, Protocol

    class BinaryReader(Protocol):
        def read(self, size: int = ..., /) -> bytes: ...


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
    *,
    stdin: "InputStream",
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

    ``buffered`` is body the gateway already holds, served before anything from ``raw``
    (``length`` counts only what is still to come from ``raw``). A whole body in memory, as a
    Lambda event carries it, is ``InputStream(None, 0, body)``: no file object around it.
    """

    __slots__ = ("_buffer", "_raw", "_remaining", "_length")

    def __init__(
        self, raw: "BinaryReader | None", length: int | None, buffered: bytes = b""
    ) -> None:
        self._raw = raw
        self._length = length
        self._remaining = -1 if length is None else length
        self._buffer = buffered

    def _fill(self, size: int) -> bytes:
        """Read up to ``size`` bytes from the transport, honouring the length bound."""
        if self._remaining == 0:
            return b""
        if self._remaining > 0:
            size = min(size, self._remaining)
        if size > _MAX_READ:
            size = _MAX_READ  # a buffered reader allocates `size` before any byte arrives
        raw = self._raw
        data = raw.read(size) if raw is not None else b""  # None: nothing beyond `buffered`
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
