"""AWS Lambda gateway: ``handler = make_handler(app)`` for every HTTP front end of Lambda.

Event sources, detected from the shape of each event (the one that matched last is tried
first, since a function is usually wired to one front end):

=================  =====================================================================
``rest``           API Gateway REST APIs, payload 1.0 (:mod:`.rest`)
``http_api``       API Gateway HTTP APIs, payload 2.0 (:mod:`.http_api`)
``function_url``   Lambda Function URLs (:mod:`.function_url`)
``alb``            Application Load Balancer, with or without multi-value headers (:mod:`.alb`)
``lattice_v2``     VPC Lattice, version 2.0 (:mod:`.lattice_v2`)
``lattice``        VPC Lattice, version 1 (:mod:`.lattice`)
``edge``           Lambda@Edge CloudFront requests (:mod:`.edge`)
=================  =====================================================================

An event source is any object (a module will do) with ``name``, ``infer(event) -> bool``,
``environ(event, options) -> (meta, body)`` (CGI meta-variables as PEP 3333 native strings and
the request body; :func:`wsgigate.core.build_environ` makes the environ out of that very dict,
so return a new one per event) and
``response(status, headers, body, event, options) -> dict``. :func:`register` adds one.

The application finds the raw event in ``environ["aws.event"]``, the Lambda context in
``environ["aws.context"]`` and the source's name in ``environ["wsgigate.event_source"]``.
"""

# This module is the whole cold-start import of the gateway (the event sources load with their
# first event): it skips `from __future__ import annotations` (typing-only annotations are
# quoted) and imports wsgigate.errors only where an error is raised, as wsgigate.core does.
from io import BytesIO

from wsgigate.core import ErrorStream, InputStream, build_environ, run_app

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
            self, event: dict[str, Any], options: "Options"
        ) -> tuple[dict[str, str], bytes]: ...

        def response(
            self,
            status: str,
            headers: Headers,
            body: bytes,
            event: dict[str, Any],
            options: "Options",
        ) -> dict[str, Any]: ...


__all__ = [
    "ENVIRON_CONTEXT",
    "ENVIRON_EVENT",
    "ENVIRON_SOURCE",
    "MAX_RESPONSE_BYTES",
    "SOURCES",
    "Handler",
    "Options",
    "default_is_binary",
    "is_asgi",
    "make_handler",
    "register",
]

# Lambda refuses synchronous responses over 6 MB (6,291,456 bytes of JSON); keep a margin for
# the JSON around the body and its escapes.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024 - 64 * 1024

# environ keys under which the application finds what Lambda gave the handler.
ENVIRON_EVENT = "aws.event"
ENVIRON_CONTEXT = "aws.context"
ENVIRON_SOURCE = "wsgigate.event_source"

_TOO_LARGE = b"Internal Server Error: response too large for AWS Lambda\n"
_CUT_OFF = b"Internal Server Error\n"


# --- event shapes: each source's infer(), here so detection imports no source module ---


# requestContext is looked into only when it is a dict: any JSON reaches the handler (an event
# for on_event=, a hand-made one), and detection must not raise on it (found by fuzzing).


# Each test is written out (no shared helper): it runs on every event, and a call costs more
# than the test itself.


def infer_rest(event: "dict[str, Any]") -> bool:
    if "httpMethod" not in event:
        return False
    context = event.get("requestContext")
    return type(context) is not dict or "elb" not in context


def infer_http_api(event: "dict[str, Any]") -> bool:
    if "rawPath" not in event:
        return False
    context = event.get("requestContext")
    if type(context) is not dict:
        return True
    domain = context.get("domainName")
    return type(domain) is not str or ".lambda-url." not in domain


def infer_function_url(event: "dict[str, Any]") -> bool:
    if "rawPath" not in event:
        return False
    context = event.get("requestContext")
    domain = context.get("domainName") if type(context) is dict else None
    return type(domain) is str and ".lambda-url." in domain


def infer_alb(event: "dict[str, Any]") -> bool:
    if "httpMethod" not in event:
        return False
    context = event.get("requestContext")
    return type(context) is dict and "elb" in context


def infer_lattice(event: "dict[str, Any]") -> bool:
    return "raw_path" in event and "method" in event


def infer_lattice_v2(event: "dict[str, Any]") -> bool:
    return "method" in event and "path" in event and "rawPath" not in event


def infer_edge(event: "dict[str, Any]") -> bool:
    records = event.get("Records")
    if not records or type(records) is not list or type(records[0]) is not dict:
        return False
    cf = records[0].get("cf")
    return type(cf) is dict and "request" in cf


# --- binary or text ---

# Content types that are text (the UTF-8 check still has the last word).
_TEXT_MARKERS = ("json", "xml", "javascript", "yaml", "x-www-form-urlencoded", "csv", "graphql")
_text_types: "dict[str, bool]" = {}


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


def default_is_binary(headers: "Headers") -> "bool | None":
    """Decide from the headers: ``True`` binary, ``False`` text, ``None`` look at the bytes.

    Content-Encoding first (a gzip body is binary whatever its type), then the type.
    """
    content_type = None
    for name, value in headers:
        if name == "Content-Type":
            content_type = value
            continue
        if name == "Content-Length":
            continue
        lower = name.lower()
        if lower == "content-type":
            content_type = value
        elif lower == "content-encoding" and value.strip().lower() not in ("", "identity"):
            return True
    if content_type is None:
        return None
    known = _text_types.get(content_type)
    return not (is_text_type(content_type) if known is None else known)


class Options:
    """Settings the event sources read (one instance per handler)."""

    __slots__ = ("base_path", "is_binary", "max_response_bytes")

    def __init__(
        self,
        base_path: str = "",
        is_binary: "Callable[[Headers], bool | None]" = default_is_binary,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self.base_path = base_path.rstrip("/")
        self.is_binary = is_binary
        self.max_response_bytes = max_response_bytes


class LazySource:
    """A built-in event source whose module (``wsgigate.aws_lambda.NAME``) loads on first use."""

    __slots__ = ("name", "infer", "_module")

    def __init__(self, name: str, infer: "Callable[[dict[str, Any]], bool]") -> None:
        self.name = name
        self.infer = infer
        self._module: EventSource | None = None

    def load(self) -> "EventSource":
        if self._module is None:
            self._module = __import__(f"wsgigate.aws_lambda.{self.name}", fromlist=["infer"])
        return self._module

    def environ(self, event: "dict[str, Any]", options: Options) -> "tuple[dict[str, str], bytes]":
        return self.load().environ(event, options)

    def response(
        self,
        status: str,
        headers: "Headers",
        body: bytes,
        event: "dict[str, Any]",
        options: Options,
    ) -> "dict[str, Any]":
        return self.load().response(status, headers, body, event, options)

    def __repr__(self) -> str:
        return f"<event source {self.name}>"


class Collector:
    """A :class:`wsgigate.core.ResponseWriter` that keeps the response for one JSON answer.

    No ``__init__`` (one is made per event): the core calls ``start`` before anything else,
    and ``finish`` (which sets ``body``) before the handler reads the response; a one-chunk
    body (the usual case) is kept as it is, without a list.
    """

    # No class-level defaults but the one read before it is set: on CPython 3.12 and later,
    # storing attributes that shadow class ones costs 1.7k instructions per event (cachegrind).
    status: str
    headers: "Headers"
    body: bytes
    chunks: "list[bytes] | None" = None

    def start(self, status: str, headers: "Headers") -> None:
        self.status = status
        self.headers = headers

    def write(self, data: bytes) -> None:
        chunks = self.chunks
        if chunks is None:
            self.chunks = [data]
        else:
            chunks.append(data)

    def finish(self, data: bytes) -> None:
        chunks = self.chunks
        if chunks is None:
            self.body = data
        else:
            if data:
                chunks.append(data)
            self.body = b"".join(chunks)


_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})


def _valid_method(method: object) -> bool:
    """An RFC 9110 token (the usual methods skip this: one set lookup)."""
    return type(method) is str and bool(method) and _TCHAR.issuperset(method)


_NO_INPUT = InputStream(None, 0)  # every body-less event shares it: it has nothing to change


class Handler:
    """``handler(event, context)`` for a WSGI application; made by :func:`make_handler`."""

    __slots__ = ("app", "sources", "options", "on_event", "debug", "_last", "_errors")

    def __init__(
        self,
        app: "WSGIApplication",
        sources: "Sequence[EventSource]",
        options: Options,
        on_event: "Callable[[dict[str, Any], Any], Any] | None" = None,
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

    def source_of(self, event: "Any") -> "EventSource | None":
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

    def environ(
        self, source: "EventSource", event: "dict[str, Any]", context: "Any"
    ) -> "dict[str, Any]":
        """The WSGI environ for ``event`` (built by :func:`wsgigate.core.build_environ`)."""
        meta, body = source.environ(event, self.options)
        method = meta["REQUEST_METHOD"]
        if method not in _METHODS and not _valid_method(method):
            from wsgigate.errors import ProtocolError

            raise ProtocolError(f"invalid request method {method!r}", 400)
        if body:
            # CONTENT_LENGTH from the body alone: whatever a header claimed, this is what came.
            meta["CONTENT_LENGTH"] = str(len(body))
            # The whole body is in memory already: nothing to bound or wait for, so the C
            # io.BytesIO serves as wsgi.input (half the cost of making an InputStream).
            stdin: InputStream | BytesIO = BytesIO(body)
        else:
            if "CONTENT_LENGTH" in meta:
                del meta["CONTENT_LENGTH"]
            stdin = _NO_INPUT
        # Positional, like run_app() below: CPython 3.11 specializes a call made without
        # keywords (~500 instructions less per event, cachegrind).
        environ = build_environ(
            meta,
            stdin,
            self._errors,
            False,  # multithread
            False,  # multiprocess
            False,  # run_once
            "https" if "HTTPS" in meta else "http",  # url_scheme: sources set HTTPS=on or nothing
            True,  # reuse: a source makes a new meta dict per event
        )
        environ[ENVIRON_EVENT] = event
        environ[ENVIRON_CONTEXT] = context
        environ[ENVIRON_SOURCE] = source.name
        return environ

    def not_http(self, event: "Any", context: "Any") -> "Any":
        if self.on_event is not None:
            return self.on_event(event, context)
        from wsgigate.errors import ProtocolError

        keys = ", ".join(sorted(map(str, event))[:8]) if isinstance(event, dict) else ""
        raise ProtocolError(
            f"not an HTTP event from a known source ({type(event).__name__}"
            f"{' with keys ' + keys if keys else ''}); pass on_event= to make_handler to "
            "handle other events",
            400,
        )

    def __call__(self, event: "Any", context: "Any" = None) -> "Any":
        source = self._last
        if type(event) is not dict or source is None or not source.infer(event):
            source = self.source_of(event)
            if source is None:
                return self.not_http(event, context)
        try:
            environ = self.environ(source, event, context)
            method = environ["REQUEST_METHOD"]  # as it came: the app may change its environ
        except Exception as exc:
            from wsgigate.errors import ProtocolError  # imported when an error happens

            if isinstance(exc, ProtocolError):
                return self._error(source, event, f"{exc.status_hint} Bad Request", str(exc))
            if not isinstance(exc, _MALFORMED):
                raise
            # A field of the wrong type or missing: the event is malformed, not our bug.
            message = f"malformed {source.name} event: {type(exc).__name__}: {exc}"
            return self._error(source, event, "400 Bad Request", message)
        writer = Collector()
        outcome = run_app(self.app, environ, writer, self.debug)  # positional: see run_app
        if not outcome.complete:  # failed mid-body: nothing has left yet, so answer 500
            return self._error(
                source,
                event,
                "500 Internal Server Error",
                f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}: the application failed "
                "mid-response; answered 500",
                _CUT_OFF,
            )
        code = outcome.status
        body = writer.body
        if body and (
            code != 200 and (code < 200 or code == 204 or code == 304) or method == "HEAD"
        ):
            body = b""  # 1xx, 204, 304 and HEAD answers carry no body
        options = self.options
        answer = source.response(writer.status, writer.headers, body, event, options)
        limit = options.max_response_bytes
        if len(body) > limit >> 1 and _size(answer) > limit:
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
        source: "EventSource",
        event: "dict[str, Any]",
        status: str,
        message: str,
        body: "bytes | None" = None,
    ) -> "dict[str, Any]":
        import logging

        logging.getLogger("wsgigate.error").error("%s", message)
        if body is None:
            body = (status[4:] + ": " + message + "\n").encode("utf-8", "replace")
        headers = [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ]
        return source.response(status, headers, body, event, self.options)


def _size(answer: "dict[str, Any]") -> int:
    """Roughly how many bytes of JSON ``answer`` becomes (the body dominates)."""
    body = answer.get("body") or ""
    size = len(body) + 256
    if not body.isascii():
        size += len(body)  # non-ASCII may be escaped as \\uXXXX
    for key in ("headers", "multiValueHeaders"):
        for name, value in (answer.get(key) or {}).items():
            size += len(name) + len(str(value)) + 8
    return size


# Detection order matters only where shapes overlap: Function URLs before HTTP APIs. A source
# module is imported when its first event arrives, so a cold start imports only the one it uses.
SOURCES: "list[EventSource]" = [
    LazySource("rest", infer_rest),
    LazySource("function_url", infer_function_url),
    LazySource("http_api", infer_http_api),
    LazySource("alb", infer_alb),
    LazySource("lattice_v2", infer_lattice_v2),
    LazySource("lattice", infer_lattice),
    LazySource("edge", infer_edge),
]


def register(source: "EventSource", *, first: bool = True) -> None:
    """Add an event source for handlers made afterwards (``first``: tried before the built-ins)."""
    if first:
        SOURCES.insert(0, source)
    else:
        SOURCES.append(source)


_CO_COROUTINE = 0x80


def is_asgi(app: "Any") -> bool:
    """Whether ``app`` is an ASGI application (an ``async def`` function or ``__call__``)."""
    code = getattr(app, "__code__", None)
    if code is None:
        for klass in type(app).__mro__:
            call = klass.__dict__.get("__call__")
            if call is not None:
                code = getattr(call, "__code__", None)
                break
    return code is not None and bool(code.co_flags & _CO_COROUTINE)


def make_handler(
    app: "Any",
    *,
    base_path: str = "",
    binary: "Callable[[Headers], bool | None] | None" = None,
    on_event: "Callable[[dict[str, Any], Any], Any] | None" = None,
    sources: "Sequence[EventSource] | None" = None,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    debug: bool = False,
    asgi: "bool | None" = None,
) -> "Callable[[Any, Any], Any]":
    """Return ``handler(event, context)`` running ``app`` for every supported event source.

    - ``base_path``: the path prefix a custom domain's API mapping adds; it moves from PATH_INFO
      to SCRIPT_NAME (the stage does so by itself on the ``execute-api`` domain).
    - ``binary(headers) -> True | False | None``: decides whether a response body is sent
      base64-encoded; ``None`` lets the UTF-8 check decide. Default :func:`default_is_binary`
      (Content-Encoding, then Content-Type).
    - ``on_event(event, context)``: called for events that are not HTTP requests (SQS, schedules,
      warm-up pings); without it such an event raises :class:`wsgigate.errors.ProtocolError`.
    - ``max_response_bytes``: larger responses become a 500 and a log line, not a runtime error.
    - ``asgi``: force (or forbid) handing the app to Mangum (extra ``lambda``); by default an
      ``async`` callable is taken for ASGI.
    """
    if asgi if asgi is not None else is_asgi(app):
        try:
            from mangum import Mangum
        except ImportError as exc:
            from wsgigate.errors import ConfigurationError

            raise ConfigurationError(
                "ASGI apps on Lambda need Mangum: pip install 'wsgigate[lambda]'"
            ) from exc
        return Mangum(app, lifespan="off")
    options = Options(base_path, binary or default_is_binary, max_response_bytes)
    return Handler(app, SOURCES if sources is None else sources, options, on_event, debug)
