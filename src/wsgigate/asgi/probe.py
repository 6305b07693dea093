"""``wsgigate check``'s ASGI probe: the app through :class:`WSGIApp`, driven in-process.

A tiny ASGI client: one ``http`` scope built from the probe request, its body in one message,
and the messages the app sends collected into a response.
"""

from __future__ import annotations

import asyncio

from wsgigate.asgi import WSGIApp

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from wsgiref.types import WSGIApplication

    from wsgigate.check import ProbeRequest, ProbeResponse


def scope_for(request: ProbeRequest) -> dict[str, Any]:
    """The ``http`` scope an ASGI server would build for ``request``."""
    from wsgigate.core import unquote_to_wsgi

    raw_path = request.path.encode("latin-1")
    headers = [(b"host", b"localhost")]
    if request.body or request.method in ("POST", "PUT", "PATCH"):
        headers.append((b"content-length", str(len(request.body)).encode()))
    headers += [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in request.headers]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": unquote_to_wsgi(request.path).encode("latin-1").decode("utf-8", "replace"),
        "raw_path": raw_path,
        "root_path": "",
        "query_string": request.query.encode("latin-1"),
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("localhost", 80),
    }


def probe(app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
    from wsgigate.check import ProbeResponse

    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": request.body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays until the response is complete
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def main() -> None:
        bridge = WSGIApp(app, threads=1)
        try:
            await bridge(scope_for(request), receive, send)  # type: ignore[arg-type]
        finally:
            await asyncio.to_thread(bridge.shutdown)

    asyncio.run(main())
    if not sent or sent[0]["type"] != "http.response.start":
        raise RuntimeError(f"no response head from the ASGI app: {sent[:1]!r}")
    if sent[-1].get("more_body", False):
        raise RuntimeError("the ASGI response was left unfinished")
    status = sent[0]["status"]
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in sent[0]["headers"]]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    from http import HTTPStatus

    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = ""
    return ProbeResponse(f"{status} {reason}".rstrip(), headers, body)
