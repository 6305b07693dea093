"""Run a WSGI application for one request: the single response path every gateway shares.

The gateway hands over an ``environ`` and a :class:`ResponseWriter`. This module calls the app,
validates ``start_response``, implements ``exc_info`` and ``write()`` as PEP 3333 says, sends the
head together with the first non-empty body chunk, enforces the app's Content-Length, always
calls ``close()``, and turns failures into a 500 or a cut-off response plus one log record.
"""

from wsgigate.core.environ import ErrorStream
from wsgigate.core.response import _invalid, _statuses, validate_headers, validate_status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from types import TracebackType
    from typing import Any, Protocol
    from wsgiref.types import WSGIApplication

    from wsgigate.errors import ClientDisconnected

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

else:
    ResponseWriter = object


class Outcome:
    """What happened to one request: for the access log and for the gateway's next step.

    The fields are class-level defaults, so making one runs no ``__init__`` (the runner makes
    one per request, and a Lambda event's whole budget is a few microseconds).
    """

    status = 0  # HTTP status code sent, 0 if nothing was sent
    sent = 0  # body bytes handed to the writer
    complete = False  # finish() was called: the response is whole
    disconnected = False  # the peer went away


_ERROR_BODY = b"Internal Server Error\n"


class _Exchange(Outcome):
    """State of one request/response, with ``start_response`` and ``write`` as bound methods.

    It is its own :class:`Outcome` (one object per request instead of two): ``status`` is the
    code sent, ``line`` the status line the app gave. :func:`run_app` sets ``environ``,
    ``writer`` and ``debug``; the rest starts from the class-level defaults.
    """

    environ: "dict[str, Any]"
    writer: "ResponseWriter"
    debug = False
    line: "str | None" = None
    headers: "list[tuple[str, str]]" = []  # never mutated: start_response replaces it
    head_sent = False
    remaining: "int | None" = None  # body bytes the app's Content-Length still allows

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
        self.remaining = validate_headers(headers)
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
        if not data:
            return
        data = self._bounded(data)
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
        remaining = self.remaining
        if remaining is not None:
            if len(data) <= remaining:
                remaining -= len(data)
                self.remaining = remaining
            else:
                data = self._bounded(data)
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
        self.sent += len(data)
        self.complete = True

    def _short(self, data: bytes, remaining: int) -> None:
        """The client was promised more bytes than it got: leave the response unfinished so the
        gateway cuts it off, instead of keeping the client waiting for the rest."""
        _log().error(
            "%s: application sent %d bytes less than its Content-Length; response cut off",
            _request(self.environ),
            remaining,
        )
        if not self.head_sent:
            self._head()
        if data:
            try:
                self.writer.write(data)
            except Exception as exc:
                raise _disconnected(exc) from exc
            self.sent += len(data)

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
    *,
    debug: bool = False,
) -> "Outcome":
    """Run ``app`` for one request, sending the response to ``writer``; never raises for app errors.

    ``debug=True`` puts the traceback in the 500 body; leave it off in production.
    """
    exchange = _Exchange()
    exchange.environ = environ
    exchange.writer = writer
    if debug:
        exchange.debug = True
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
        else:
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
