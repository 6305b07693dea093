"""The smallest useful WSGI app: greets, echoes a POST body, streams, and sets two cookies.

wsgigate check examples/hello.py:app
wsgigate run examples/hello.py:app
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # wsgiref.types imports typing (and re): ~10 ms on every CGI request
    from collections.abc import Iterable
    from wsgiref.types import StartResponse, WSGIEnvironment


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "") or "/"
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        start_response(
            "200 OK",
            [
                ("Content-Type", environ.get("CONTENT_TYPE") or "application/octet-stream"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"line {i}\n".encode() for i in range(5))
    if path == "/cookies":
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/plain"),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/"),
            ],
        )
        return [b"two cookies\n"]
    # PATH_INFO is bytes-as-latin-1 (PEP 3333); the client sent UTF-8.
    name = path.encode("latin-1").decode("utf-8", "replace").strip("/") or "world"
    body = f"Hello, {name}!\n".encode()
    start_response(
        "200 OK",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
