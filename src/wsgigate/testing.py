"""wsgigate's pytest plugin: run your own WSGI app through every gateway in your own tests.

pytest loads this module in every run of a project that has wsgigate installed (entry point
``pytest11``: ``wsgigate = wsgigate.testing``), so at load it imports only the standard library
(and pytest, which is loading it); each gateway is imported when a test first uses it. Turn it
off with ``pytest -p no:wsgigate``.

Tell the plugin your app with a ``wsgi_app`` fixture in ``conftest.py``, or with
``wsgigate_app = myapp:app`` in the pytest ini options. Then::

    def test_home(gateway_client):            # runs once per gateway: direct, cgi, http,
        response = gateway_client.get("/")     # fastcgi, scgi, asgi, lambda:rest, lambda:alb...
        assert response.status == 200
        assert response.text == "Hello"

Fixtures: ``gateway_client`` (parametrized over :func:`gateways`), ``cgi_client``,
``fastcgi_client``, ``scgi_client``, ``asgi_client``, ``lambda_client`` (API Gateway HTTP API)
and ``wsgigate_client`` (a factory: ``wsgigate_client("lambda:alb")``). Without pytest:
``Client(app, "fastcgi").get("/")``. Lambda events for each source: :func:`lambda_event`. Any
ASGI application: :func:`asgi_request`.

Every client sends the request through the gateway's real code in this process: the CGI
gateway with the request's meta-variables and stdin, the development HTTP server on a loopback
port, the FastCGI (and SCGI) connection handler serving one end of a socket pair while the
protocol's client codec speaks on the other, ``wsgigate.asgi.WSGIApp`` driven by a small ASGI
client, the Lambda handler given the event an AWS source would send. The app is wrapped in
:func:`wsgiref.validate.validator` with ``validate=True``.
"""

from __future__ import annotations

import pytest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any
    from wsgiref.types import WSGIApplication

    from wsgigate.check import ProbeRequest, ProbeResponse

__all__ = [
    "Client",
    "Response",
    "asgi_request",
    "gateways",
    "lambda_event",
    "lambda_sources",
]

# Gateways besides Lambda: name -> "module:function" taking (app, ProbeRequest) and returning a
# ProbeResponse (the functions `wsgigate check` uses). SCGI is looked up in wsgigate.check.PROBES
# at first use, so the plugin follows whatever that gateway registers.
_PROBES = {
    "direct": "wsgigate.check:reference",
    "cgi": "wsgigate.check:probe_cgi",
    "http": "wsgigate.check:probe_http",
    "fastcgi": "wsgigate.fastcgi.probe:probe",
    "asgi": "wsgigate.testing:_probe_asgi",
}


class Response:
    """What a gateway answered: ``status`` (int), ``reason``, ``headers``, ``body`` (bytes)."""

    def __init__(self, status_line: str, headers: list[tuple[str, str]], body: bytes) -> None:
        code, _, reason = status_line.strip().partition(" ")
        self.status = int(code)
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        import json

        return json.loads(self.body)

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first value of header ``name`` (any case), or ``default``."""
        values = self.header_list(name)
        return values[0] if values else default

    def header_list(self, name: str) -> list[str]:
        """Every value of header ``name`` (e.g. each Set-Cookie)."""
        lower = name.lower()
        return [value for key, value in self.headers if key.lower() == lower]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} {len(self.body)} bytes>"


def lambda_sources() -> list[str]:
    """The Lambda event sources events can be built for: rest, http_api, function_url, alb..."""
    from wsgigate.aws_lambda.events import BUILDERS

    return list(BUILDERS)


def lambda_event(source: str, **request: Any) -> dict[str, Any]:
    """The event ``source`` would send for a request: ``lambda_event("alb", method="POST",
    path="/echo", query="a=1", headers=[("Content-Type", "text/plain")], body=b"hi")``."""
    from wsgigate.aws_lambda.events import BUILDERS

    try:
        builder = BUILDERS[source]
    except KeyError:
        raise ValueError(
            f"unknown Lambda source {source!r}; known: {', '.join(BUILDERS)}"
        ) from None
    return builder(**request)


def _scgi_probe() -> str | None:
    from wsgigate.check import PROBES

    return next((target for name, target in PROBES.items() if name.startswith("scgi")), None)


def gateways() -> list[str]:
    """Every gateway a :class:`Client` can use in this installation, in a stable order."""
    import importlib.util

    names = ["direct", "cgi", "http", "fastcgi"]
    if _scgi_probe() is not None:
        names.append("scgi")
    names.append("asgi")
    if importlib.util.find_spec("wsgigate.aws_lambda") is not None:
        names += [f"lambda:{source}" for source in lambda_sources()]
    return names


def _resolve(target: str) -> Callable[[WSGIApplication, ProbeRequest], ProbeResponse]:
    import importlib

    module, _, function = target.partition(":")
    probe: Callable[[WSGIApplication, ProbeRequest], ProbeResponse]
    probe = getattr(importlib.import_module(module), function)
    return probe


class Client:
    """Send requests to ``app`` through one gateway (see :func:`gateways` for the names)."""

    def __init__(self, app: WSGIApplication, gateway: str, *, validate: bool = False) -> None:
        self.gateway = gateway
        self.app = app
        if validate:
            from wsgiref.validate import validator

            self.app = validator(app)
        self._handler: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
        self._probe: Callable[[WSGIApplication, ProbeRequest], ProbeResponse]
        if gateway.startswith("lambda:"):
            self._source = gateway.partition(":")[2]
            if self._source not in lambda_sources():
                raise ValueError(f"unknown gateway {gateway!r}; known: {', '.join(gateways())}")
            self._probe = self._lambda
        elif gateway == "scgi":
            target = _scgi_probe()
            if target is None:
                raise ValueError("the SCGI gateway is not in this wsgigate installation")
            self._probe = _resolve(target)
        elif gateway in _PROBES:
            self._probe = _resolve(_PROBES[gateway])
        else:
            raise ValueError(f"unknown gateway {gateway!r}; known: {', '.join(gateways())}")

    def __repr__(self) -> str:
        return f"<wsgigate Client {self.gateway}>"

    def request(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        body: bytes | str = b"",
        json: Any = None,
    ) -> Response:
        """Send ``method target`` (``/path?query``, percent-encoded as on the wire)."""
        from wsgigate.check import ProbeRequest

        items = list(headers.items() if hasattr(headers, "items") else headers)
        if json is not None:
            import json as json_module

            body = json_module.dumps(json).encode("utf-8")
            items.append(("Content-Type", "application/json"))
        data = body.encode("utf-8") if isinstance(body, str) else body
        path, _, query = target.partition("?")
        request = ProbeRequest(method.upper(), path, query, items, data)
        answer = self._probe(self.app, request)
        return Response(answer.status, list(answer.headers), answer.body)

    def get(self, target: str, **kwargs: Any) -> Response:
        return self.request("GET", target, **kwargs)

    def head(self, target: str, **kwargs: Any) -> Response:
        return self.request("HEAD", target, **kwargs)

    def post(self, target: str, **kwargs: Any) -> Response:
        return self.request("POST", target, **kwargs)

    def put(self, target: str, **kwargs: Any) -> Response:
        return self.request("PUT", target, **kwargs)

    def delete(self, target: str, **kwargs: Any) -> Response:
        return self.request("DELETE", target, **kwargs)

    def _lambda(self, app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
        from http import HTTPStatus

        from wsgigate.aws_lambda.events import parse_response
        from wsgigate.check import ProbeResponse

        if self._handler is None:
            from wsgigate.aws_lambda import make_handler

            self._handler = make_handler(app)
        event = lambda_event(
            self._source,
            method=request.method,
            path=request.path,
            query=request.query,
            headers=request.headers,
            body=request.body,
        )
        status, headers, body = parse_response(self._source, self._handler(event, None))
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        return ProbeResponse(f"{status} {reason}", headers, body)


def asgi_request(
    asgi_app: Callable[..., Any],
    method: str,
    target: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    root_path: str = "",
) -> Response:
    """Call any ASGI 3 application with one HTTP request, as a server would, and collect the
    answer (e.g. your own ``wsgigate.asgi.WSGIApp(app, ...)``). Runs its own event loop."""
    import asyncio
    from http import HTTPStatus
    from urllib.parse import unquote_to_bytes

    path, _, query = target.partition("?")
    head = [(b"host", b"testserver")]
    if body or method.upper() in ("POST", "PUT", "PATCH"):
        head.append((b"content-length", str(len(body)).encode()))
    head += [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method.upper(),
        "scheme": "http",
        "path": unquote_to_bytes(path).decode("utf-8", "replace"),
        "raw_path": path.encode("latin-1"),
        "root_path": root_path,
        "query_string": query.encode("latin-1"),
        "headers": head,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays connected until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        await asgi_app(scope, receive, send)

    asyncio.run(main())
    if not sent or sent[0]["type"] != "http.response.start":
        raise AssertionError(f"the ASGI app sent no response head: {sent[:1]!r}")
    if sent[-1].get("more_body", False):
        raise AssertionError("the ASGI app left its response unfinished")
    status = int(sent[0]["status"])
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    response_headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in sent[0]["headers"]]
    data = b"".join(m.get("body", b"") for m in sent[1:] if m["type"] == "http.response.body")
    return Response(f"{status} {reason}", response_headers, data)


def _probe_asgi(app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
    """The ``asgi`` gateway: ``WSGIApp(app)`` through :func:`asgi_request`, then shut down."""
    from wsgigate.asgi import WSGIApp
    from wsgigate.check import ProbeResponse

    bridge = WSGIApp(app, threads=1)
    try:
        target = request.path + ("?" + request.query if request.query else "")
        answer = asgi_request(
            bridge, request.method, target, headers=request.headers, body=request.body
        )
    finally:
        bridge.shutdown()
    return ProbeResponse(f"{answer.status} {answer.reason}", answer.headers, answer.body)


# -- pytest: ini option, fixtures, parametrization ------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "wsgigate_app",
        "MODULE:APP of the WSGI app wsgigate's fixtures test (or define a wsgi_app fixture)",
        default="",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "gateway_client" in metafunc.fixturenames:
        metafunc.parametrize("gateway_client", gateways(), indirect=True)


@pytest.fixture
def wsgi_app(request: pytest.FixtureRequest) -> WSGIApplication:
    """The app under test: override this fixture, or set ``wsgigate_app`` in the ini options."""
    spec = str(request.config.getini("wsgigate_app") or "")
    if not spec:
        pytest.fail(
            "wsgigate: define a `wsgi_app` fixture returning your WSGI app, or set "
            "`wsgigate_app = myapp:app` in your pytest configuration",
            pytrace=False,
        )
    from wsgigate.loader import load_app

    return load_app(spec)


@pytest.fixture
def wsgigate_client(wsgi_app: WSGIApplication) -> Callable[..., Client]:
    """A factory: ``wsgigate_client("fastcgi")``, ``wsgigate_client("lambda:alb", validate=True)``
    (``validate``: the app wrapped in wsgiref's validator)."""

    def make(gateway: str, *, validate: bool = False) -> Client:
        return Client(wsgi_app, gateway, validate=validate)

    return make


@pytest.fixture
def gateway_client(request: pytest.FixtureRequest, wsgi_app: WSGIApplication) -> Client:
    """A :class:`Client` for each gateway in turn (the test runs once per gateway)."""
    return Client(wsgi_app, str(request.param))


@pytest.fixture
def cgi_client(wsgi_app: WSGIApplication) -> Client:
    return Client(wsgi_app, "cgi")


@pytest.fixture
def fastcgi_client(wsgi_app: WSGIApplication) -> Client:
    return Client(wsgi_app, "fastcgi")


@pytest.fixture
def scgi_client(wsgi_app: WSGIApplication) -> Client:
    if _scgi_probe() is None:
        pytest.skip("the SCGI gateway is not in this wsgigate installation")
    return Client(wsgi_app, "scgi")


@pytest.fixture
def asgi_client(wsgi_app: WSGIApplication) -> Client:
    return Client(wsgi_app, "asgi")


@pytest.fixture
def lambda_client(wsgi_app: WSGIApplication) -> Client:
    """The app behind an API Gateway HTTP API (``wsgigate_client("lambda:alb")`` for others)."""
    return Client(wsgi_app, "lambda:http_api")
