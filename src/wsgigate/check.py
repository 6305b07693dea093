"""``wsgigate check``: run an app in-process through every gateway and compare the answers.

The app is wrapped in :func:`wsgiref.validate.validator`, called once directly (the reference),
then once through each gateway in :data:`PROBES`. A gateway passes when the validator saw no
breach, nothing was logged as an error, and status and body equal the reference's. Gateways
register a probe here: a function ``probe(app, request) -> ProbeResponse``, named as
``"module:function"`` so that only the probes that run are imported.
"""

from __future__ import annotations

import importlib
import io
import logging
import warnings
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

from wsgigate.core import unquote_to_wsgi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any
    from wsgiref.types import WSGIApplication

# Gateway name -> "module:function" of its probe. Later gateways add themselves here.
PROBES: dict[str, str] = {
    "cgi": "wsgigate.check:probe_cgi",
    "http (dev server)": "wsgigate.check:probe_http",
    "asgi": "wsgigate.asgi.probe:probe",
    "lambda (every event source)": "wsgigate.aws_lambda.probe:probe",
    "fastcgi": "wsgigate.fastcgi.probe:probe",
    "scgi": "wsgigate.scgi.probe:probe",
}


class ProbeRequest:
    """One request to send through every gateway."""

    def __init__(
        self,
        method: str = "GET",
        path: str = "/",
        query: str = "",
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> None:
        self.method = method
        self.path = path  # percent-encoded, as on the wire
        self.query = query
        self.headers = list(headers)
        self.body = body

    def meta(self) -> dict[str, str]:
        """The CGI meta-variables a well-behaved web server would set for this request."""
        meta = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_SOFTWARE": "wsgigate-check",
            "REQUEST_METHOD": self.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_wsgi(self.path),
            "QUERY_STRING": self.query,
            "REQUEST_URI": self.path + ("?" + self.query if self.query else ""),
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "localhost",
        }
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            meta["CONTENT_LENGTH"] = str(len(self.body))
        for name, value in self.headers:
            key = name.upper().replace("-", "_")
            meta[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
        return meta


class ProbeResponse:
    def __init__(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class Row:
    def __init__(self, gateway: str, status: str, ok: bool, reason: str = "") -> None:
        self.gateway = gateway
        self.status = status
        self.ok = ok
        self.reason = reason


def parse_cgi_response(data: bytes) -> ProbeResponse:
    """Split a CGI-style response (``Status:`` head, blank line, body), as CGI/FastCGI/SCGI send."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"no end of headers in {data[:80]!r}")
    status = "200 OK"
    headers = []
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = value.strip()
        else:
            headers.append((name, value.strip()))
    return ProbeResponse(status, headers, body)


def reference(app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
    """Call the app directly with a wsgiref test environ; status and headers checked as the core
    checks them (the validator lets hop-by-hop headers and non-latin-1 values through)."""
    from wsgigate.core import validate_headers, validate_status

    environ: dict[str, Any] = dict(request.meta())
    environ["wsgi.input"] = io.BytesIO(request.body)
    setup_testing_defaults(environ)
    captured: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        validate_status(status)
        validate_headers(headers)
        captured[:] = [status, headers]
        return lambda data: chunks.append(data)

    chunks: list[bytes] = []
    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return ProbeResponse(captured[0], captured[1], b"".join(chunks))


def probe_cgi(app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
    from wsgigate import cgi

    out = io.BytesIO()
    cgi.run(app, environ=request.meta(), stdin=io.BytesIO(request.body), stdout=out)
    return parse_cgi_response(out.getvalue())


def probe_http(app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
    import http.client
    import threading

    from wsgigate.devserver import make_server

    server = make_server(app, "127.0.0.1:0")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        conn = http.client.HTTPConnection(
            str(server.server_address[0]), server.server_address[1], timeout=10
        )
        target = request.path + ("?" + request.query if request.query else "")
        conn.request(
            request.method, target, body=request.body or None, headers=dict(request.headers)
        )
        response = conn.getresponse()
        body = response.read()
        conn.close()
        return ProbeResponse(f"{response.status} {response.reason}", response.getheaders(), body)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def reason(self) -> str:
        for record in self.records:
            if record.exc_info and record.exc_info[1] is not None:
                return describe(record.exc_info[1])
        return self.records[0].getMessage() if self.records else ""


def describe(exc: BaseException) -> str:
    """``Type: message``; for a bare ``assert`` (wsgiref's validator) the failing line instead."""
    if str(exc):
        return f"{type(exc).__name__}: {exc}"
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.name != "assert_"]
    if not frames:
        return type(exc).__name__
    frame = frames[-1]
    return f"{type(exc).__name__} in {frame.name}(): {frame.line}"


class _ReadToEnd:
    """``wsgi.input`` for an app behind wsgiref's validator, which only allows ``read(size)``:
    with ``wsgi.input_terminated`` (set by every wsgigate gateway) apps may call ``read()`` to
    the end of the body, as Werkzeug (Flask) does; that read goes through in blocks."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            return bytes(self._stream.read(size))
        chunks = []
        while chunk := self._stream.read(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    def __iter__(self) -> Any:
        return iter(self._stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _read_to_end(app: WSGIApplication) -> WSGIApplication:
    def wrapped(environ: Any, start_response: Any) -> Iterable[bytes]:
        if environ.get("wsgi.input_terminated"):
            environ["wsgi.input"] = _ReadToEnd(environ["wsgi.input"])
        return app(environ, start_response)

    return wrapped


def _run_probe(
    probe: Callable[[WSGIApplication, ProbeRequest], ProbeResponse],
    app: WSGIApplication,
    request: ProbeRequest,
) -> tuple[ProbeResponse | None, str]:
    capture = _Capture()
    logger = logging.getLogger("wsgigate")
    logger.addHandler(capture)
    propagate, logger.propagate = logger.propagate, False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                response = probe(validator(_read_to_end(app)), request)
            except Exception as exc:
                return None, describe(exc)
    finally:
        logger.removeHandler(capture)
        logger.propagate = propagate
    problems = [capture.reason()] if capture.records else []
    problems += [f"{w.category.__name__}: {w.message}" for w in caught]
    return response, "; ".join(problems)


def check(app: WSGIApplication, request: ProbeRequest | None = None) -> list[Row]:
    """Run ``request`` through the app directly and through every registered gateway."""
    request = request or ProbeRequest()
    expected, problem = _run_probe(reference, app, request)
    rows = [
        Row(
            "direct",
            expected.status if expected else "-",
            expected is not None and not problem,
            problem,
        )
    ]
    for gateway, target in PROBES.items():
        module_name, _, function = target.partition(":")
        try:
            probe = getattr(importlib.import_module(module_name), function)
        except ImportError as exc:
            rows.append(Row(gateway, "-", False, f"not available: {exc}"))
            continue
        response, problem = _run_probe(probe, app, request)
        if response is None:
            rows.append(Row(gateway, "-", False, problem))
            continue
        if not problem and expected is not None:
            if response.status.split()[0] != expected.status.split()[0]:
                problem = f"status {response.status!r}, expected {expected.status!r}"
            elif response.body != expected.body and request.method != "HEAD":
                problem = f"body differs: {len(response.body)} bytes, expected {len(expected.body)}"
            elif lost := _lost_header(expected.headers, response.headers):
                problem = f"header {lost!r} did not reach the client"
        rows.append(Row(gateway, response.status, not problem, problem))
    return rows


def _lost_header(sent: list[tuple[str, str]], received: list[tuple[str, str]]) -> str:
    """The first header the app sent that the client did not get (repeated ones count).
    Leading and trailing whitespace of a value is not part of it (RFC 9110 5.5): Django sends
    ``Set-Cookie: " a=1; Path=/"``, which every HTTP hop trims."""
    have: dict[tuple[str, str], int] = {}
    for name, value in received:
        key = (name.lower(), value.strip(" \t"))
        have[key] = have.get(key, 0) + 1
    for name, value in sent:
        key = (name.lower(), value.strip(" \t"))
        if not have.get(key):
            return f"{name}: {value}"
        have[key] -= 1
    return ""


def format_table(rows: list[Row]) -> str:
    header = ("gateway", "status", "result")
    table = [header] + [
        (r.gateway, r.status, "PASS" if r.ok else f"FAIL  {r.reason}") for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in table)
