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
the request body; :func:`wsgigate.core.build_environ` makes the environ) and
``response(status, headers, body, event, options) -> dict``. :func:`register` adds one.

The application finds the raw event in ``environ["aws.event"]``, the Lambda context in
``environ["aws.context"]`` and the source's name in ``environ["wsgigate.event_source"]``.
"""

from __future__ import annotations

from wsgigate.aws_lambda._common import (
    default_is_binary,
    infer_alb,
    infer_edge,
    infer_function_url,
    infer_http_api,
    infer_lattice,
    infer_lattice_v2,
    infer_rest,
)
from wsgigate.aws_lambda._handler import (
    ENVIRON_CONTEXT,
    ENVIRON_EVENT,
    ENVIRON_SOURCE,
    MAX_RESPONSE_BYTES,
    Handler,
    LazySource,
    Options,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from wsgigate.aws_lambda._handler import EventSource, Headers

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

# Detection order matters only where shapes overlap: Function URLs before HTTP APIs. A source
# module is imported when its first event arrives, so a cold start imports only the one it uses.
SOURCES: list[EventSource] = [
    LazySource("rest", infer_rest),
    LazySource("function_url", infer_function_url),
    LazySource("http_api", infer_http_api),
    LazySource("alb", infer_alb),
    LazySource("lattice_v2", infer_lattice_v2),
    LazySource("lattice", infer_lattice),
    LazySource("edge", infer_edge),
]


def register(source: EventSource, *, first: bool = True) -> None:
    """Add an event source for handlers made afterwards (``first``: tried before the built-ins)."""
    if first:
        SOURCES.insert(0, source)
    else:
        SOURCES.append(source)


_CO_COROUTINE = 0x80


def is_asgi(app: Any) -> bool:
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
    app: Any,
    *,
    base_path: str = "",
    binary: Callable[[Headers], bool | None] | None = None,
    on_event: Callable[[dict[str, Any], Any], Any] | None = None,
    sources: Sequence[EventSource] | None = None,
    max_response_bytes: int = MAX_RESPONSE_BYTES,
    debug: bool = False,
    asgi: bool | None = None,
) -> Callable[[Any, Any], Any]:
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
