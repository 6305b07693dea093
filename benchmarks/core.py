"""In-process cost of one request through the core, next to wsgiref's handler doing the same job.

No server, no process start: meta-variables in, a CGI response out into memory. This is the work
every gateway adds on top of its protocol, so it tracks regressions in ``build_environ`` and
``run_app`` without the noise of a network run.
"""

from __future__ import annotations

import io
from wsgiref.handlers import BaseCGIHandler

from benchmarks import Options, Result, Row, Scenario
from benchmarks.harness import alternating_us
from wsgigate.core import ErrorStream, InputStream, build_environ, cgi_response_head, run_app

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

BODY = b"Hello, world!\n"

# What lighttpd's mod_cgi passes for `GET /hello.cgi?x=1` from curl (values as PEP 3333 strings).
META = {
    "CONTENT_LENGTH": "0",
    "DOCUMENT_ROOT": "/srv/www",
    "GATEWAY_INTERFACE": "CGI/1.1",
    "HTTP_ACCEPT": "*/*",
    "HTTP_HOST": "127.0.0.1:8080",
    "HTTP_USER_AGENT": "curl/7.88.1",
    "QUERY_STRING": "x=1",
    "REDIRECT_STATUS": "200",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "51234",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/hello.cgi?x=1",
    "SCRIPT_FILENAME": "/srv/www/hello.cgi",
    "SCRIPT_NAME": "/hello.cgi",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "SERVER_SOFTWARE": "lighttpd/1.4.69",
}


def hello(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "14")])
    return [BODY]


class _MemoryWriter:
    """The CGI gateway's writer, into memory."""

    __slots__ = ("out", "head")

    def __init__(self, out: io.BytesIO) -> None:
        self.out = out
        self.head = b""

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.head = cgi_response_head(status, headers)

    def write(self, data: bytes) -> None:
        self.out.write(self.head + data)
        self.head = b""

    def finish(self, data: bytes) -> None:
        self.write(data)


def one_wsgigate() -> bytes:
    out = io.BytesIO()
    environ = build_environ(
        META,
        stdin=InputStream(io.BytesIO(), 0),
        errors=ErrorStream(),
        multithread=False,
        multiprocess=True,
        run_once=True,
    )
    run_app(hello, environ, _MemoryWriter(out))
    return out.getvalue()


class _WsgirefCGI(BaseCGIHandler):
    """wsgiref's SimpleHandler in CGI mode (what CGIHandler is), without the copy of the whole
    process environment it adds to every environ: only the request's meta-variables, like
    wsgigate."""

    os_environ: dict[str, str] = {}


def one_wsgiref() -> bytes:
    out = io.BytesIO()
    handler = _WsgirefCGI(
        io.BytesIO(), out, io.StringIO(), dict(META), multithread=False, multiprocess=True
    )
    handler.run(hello)
    return out.getvalue()


def run(options: Options) -> Result:
    sides: dict[str, Callable[[], bytes]] = {
        "wsgiref BaseCGIHandler": one_wsgiref,
        "wsgigate build_environ + run_app": one_wsgigate,
    }
    for side, call in sides.items():
        answer = call()
        if not (answer.startswith(b"Status: 200 OK\r\n") and answer.endswith(b"\r\n\r\n" + BODY)):
            raise AssertionError(f"{side} answered {answer!r}")
    samples: dict[str, list[float]] = {side: [] for side in sides}
    for number in range(1, options.rounds + 1):
        for side, value in alternating_us(sides, options.duration).items():
            samples[side].append(value)
            if options.verbose:
                print(f"  round {number}/{options.rounds} {side}: {value:.2f} µs")
    return Result(
        unit="µs/req",
        higher_is_better=False,
        baseline="wsgiref BaseCGIHandler",
        rows=[Row(side, values) for side, values in samples.items()],
    )


SCENARIO = Scenario(
    name="core",
    title="Core, in process (no server)",
    about=(
        "Microseconds of CPU per request for the work every gateway shares: build the environ "
        "from 20 lighttpd-style meta-variables, run a hello-world app, validate "
        "`start_response`, serialize a CGI response into memory. The competitor is wsgiref's "
        "`BaseCGIHandler` (`SimpleHandler` in CGI mode, the class behind `CGIHandler`), given "
        "the same meta-variables and no copy of the process environment. Lower is better; a "
        "ratio below 1 means wsgigate spends less time than wsgiref. No server is involved, so "
        "this figure moves only when the core's code does: it is the regression tracker."
    ),
    run=run,
)
