"""The shared part of every event source: detect the source, run the app, shape the answer.

An event source (see :mod:`wsgigate.aws_lambda`) turns an event into CGI meta-variables and a
body; :func:`wsgigate.core.build_environ` makes the environ and :func:`wsgigate.core.run_app`
runs the app into a collecting writer; the source turns status, headers and body back into the
JSON answer its front end expects.
"""

from __future__ import annotations

from io import BytesIO

from wsgigate.aws_lambda._common import default_is_binary
from wsgigate.core.environ import ErrorStream, InputStream, build_environ
from wsgigate.core.runner import run_app
from wsgigate.errors import ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, Protocol
    from wsgiref.types import WSGIApplication

    Headers = list[tuple[str, str]]

    class EventSource(Protocol):
        """What :func:`register` accepts: a module or any object with these four members."""

        name: str

        def infer(self, event: dict[str, Any]) -> bool: ...

        def environ(
            self, event: dict[str, Any], options: Options
        ) -> tuple[dict[str, str], bytes]: ...

        def response(
            self,
            status: str,
            headers: Headers,
            body: bytes,
            event: dict[str, Any],
            options: Options,
        ) -> dict[str, Any]: ...


# Lambda refuses synchronous responses over 6 MB (6,291,456 bytes of JSON); keep a margin for
# the JSON around the body and its escapes.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 64 * 1024

# environ keys under which the application finds what Lambda gave the handler.
ENVIRON_EVENT = "aws.event"
ENVIRON_CONTEXT = "aws.context"
ENVIRON_SOURCE = "wsgigate.event_source"

_TOO_LARGE = b"Internal Server Error: response too large for AWS Lambda\n"


class Options:
    """Settings the event sources read (one instance per handler)."""

    __slots__ = ("base_path", "is_binary", "max_response_bytes")

    def __init__(
        self,
        base_path: str = "",
        is_binary: Callable[[Headers], bool | None] = default_is_binary,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_path = base_path.rstrip("/")
        self.is_binary = is_binary
        self.max_response_bytes = max_response_bytes


class LazySource:
    """A built-in event source whose module (``wsgigate.aws_lambda.NAME``) loads on first use."""

    __slots__ = ("name", "infer", "_module")

    def __init__(self, name: str, infer: Callable[[dict[str, Any]], bool]) -> None:
        self.name = name
        self.infer = infer
        self._module: EventSource | None = None

    def load(self) -> EventSource:
        if self._module is None:
            self._module = __import__(f"wsgigate.aws_lambda.{self.name}", fromlist=["infer"])
        return self._module

    def environ(self, event: dict[str, Any], options: Options) -> tuple[dict[str, str], bytes]:
        return self.load().environ(event, options)

    def response(
        self, status: str, headers: Headers, body: bytes, event: dict[str, Any], options: Options
    ) -> dict[str, Any]:
        return self.load().response(status, headers, body, event, options)

    def __repr__(self) -> str:
        return f"<event source {self.name}>"


class Collector:
    """A :class:`wsgigate.core.ResponseWriter` that keeps the response for one JSON answer."""

    __slots__ = ("status", "headers", "chunks")

    def __init__(self) -> None:
        self.status = ""
        self.headers: Headers = []
        self.chunks: list[bytes] = []

    def start(self, status: str, headers: Headers) -> None:
        self.status = status
        self.headers = headers

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def finish(self, data: bytes) -> None:
        if data:
            self.chunks.append(data)

    def body(self) -> bytes:
        chunks = self.chunks
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)


_NO_BODY = BytesIO()
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _token(text: str) -> bool:
    return bool(text) and _TCHAR.issuperset(text)


_EMPTY = frozenset({"204", "304"})  # statuses without a body (1xx and HEAD too)


class Handler:
    """``handler(event, context)`` for a WSGI application; made by :func:`make_handler`."""

    __slots__ = ("app", "sources", "options", "on_event", "debug", "_last", "_errors")

    def __init__(
        self,
        app: WSGIApplication,
        sources: Sequence[EventSource],
        options: Options,
        on_event: Callable[[dict[str, Any], Any], Any] | None = None,
        debug: bool = False,
    ) -> None:
        self.app = app
        self.sources = list(sources)
        self.options = options
        self.on_event = on_event
        self.debug = debug
        self._last = self.sources[0] if self.sources else None
        # One wsgi.errors per handler: Lambda runs one request at a time per process, and the
        # stream only keeps a partial line between writes.
        self._errors = ErrorStream()

    def source_of(self, event: Any) -> EventSource | None:
        """The event source this event came from; ``None`` for a non-HTTP event."""
        if type(event) is not dict:
            return None
        last = self._last
        if last is not None and last.infer(event):
            return last  # a function is usually wired to one front end
        for index, source in enumerate(self.sources):
            if source is not last and source.infer(event):
                if type(source) is LazySource:
                    source = self.sources[index] = source.load()
                self._last = source
                return source
        return None

    def environ(self, source: EventSource, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """The WSGI environ for ``event`` (built by :func:`wsgigate.core.build_environ`)."""
        meta, body = source.environ(event, self.options)
        method = meta["REQUEST_METHOD"]
        if type(method) is not str or not method.isalpha() and not _token(method):
            raise ProtocolError(f"invalid request method {method!r}", 400)
        if body:
            meta["CONTENT_LENGTH"] = str(len(body))
            stdin = InputStream(BytesIO(body), len(body))
        else:
            meta["CONTENT_LENGTH"] = ""  # whatever a header claimed, the event has no body
            stdin = InputStream(_NO_BODY, 0)  # length 0: never reads from it
        environ = build_environ(
            meta,
            stdin=stdin,
            errors=self._errors,
            multithread=False,
            multiprocess=False,
            run_once=False,
        )
        environ[ENVIRON_EVENT] = event
        environ[ENVIRON_CONTEXT] = context
        environ[ENVIRON_SOURCE] = source.name
        return environ

    def not_http(self, event: Any, context: Any) -> Any:
        if self.on_event is not None:
            return self.on_event(event, context)
        keys = ", ".join(sorted(map(str, event))[:8]) if isinstance(event, dict) else ""
        raise ProtocolError(
            f"not an HTTP event from a known source ({type(event).__name__}"
            f"{' with keys ' + keys if keys else ''}); pass on_event= to make_handler to "
            "handle other events",
            400,
        )

    def __call__(self, event: Any, context: Any = None) -> Any:
        source = self.source_of(event)
        if source is None:
            return self.not_http(event, context)
        try:
            environ = self.environ(source, event, context)
        except ProtocolError as exc:
            return self._error(source, event, f"{exc.status_hint} Bad Request", str(exc))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            # A field of the wrong type or missing: the event is malformed, not our bug.
            message = f"malformed {source.name} event: {type(exc).__name__}: {exc}"
            return self._error(source, event, "400 Bad Request", message)
        writer = Collector()
        run_app(self.app, environ, writer, debug=self.debug)
        status = writer.status
        if environ["REQUEST_METHOD"] == "HEAD" or status[0] == "1" or status[:3] in _EMPTY:
            body = b""
        else:
            chunks = writer.chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        options = self.options
        answer = source.response(status, writer.headers, body, event, options)
        limit = options.max_response_bytes
        if len(body) > limit // 2 and _size(answer) > limit:
            return self._error(
                source,
                event,
                "500 Internal Server Error",
                f"{environ['REQUEST_METHOD']} {environ.get('PATH_INFO', '')}: response of "
                f"{len(body)} bytes is over the AWS Lambda limit of {options.max_response_bytes}"
                " bytes; answered 500 instead (stream it or serve it from S3)",
                _TOO_LARGE,
            )
        return answer

    def _error(
        self,
        source: EventSource,
        event: dict[str, Any],
        status: str,
        message: str,
        body: bytes | None = None,
    ) -> dict[str, Any]:
        import logging

        logging.getLogger("wsgigate.error").error("%s", message)
        if body is None:
            body = (status[4:] + ": " + message + "\n").encode("utf-8", "replace")
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        return source.response(status, headers, body, event, self.options)


def _size(answer: dict[str, Any]) -> int:
    """Roughly how many bytes of JSON ``answer`` becomes (the body dominates)."""
    body = answer.get("body") or ""
    size = len(body) + 256
    if not body.isascii():
        size += len(body)  # non-ASCII may be escaped as \\uXXXX
    for key in ("headers", "multiValueHeaders"):
        for name, value in (answer.get(key) or {}).items():
            size += len(name) + len(str(value)) + 8
    return size
