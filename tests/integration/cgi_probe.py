"""The WSGI app the CGI integration tests run behind real servers (stdlib only).

The request header ``X-Probe`` picks what it does; without it, it answers with the environ it
saw as JSON (PEP 3333 native strings survive JSON unchanged), plus what it read of the body:

- (none) / ``environ``: ``{"environ": {...str values and wsgi.* flags...}, "body": {...}}``
- ``hello``: hand the request to examples/hello.py's app (/echo, /stream, /cookies, names)
- ``redirect``: ``302`` with ``Location: /elsewhere``
- ``local-redirect``: ``200`` with ``Location: /cgi-bin/app.cgi/landed``, no body: RFC 3875's
  local redirect, which the server answers itself by serving that URL instead
- ``cookies``: three ``Set-Cookie`` headers
- ``stream``: 200 chunks from a generator, no Content-Length
- ``slow-stream``: 100 chunks of 10 KiB, 0.1 s apart (a client leaves halfway)
- ``binary``: every byte value, 4096 times (1 MiB)
- ``boom``: raise before start_response
- ``breach``: a 200 without Content-Type, which PEP 3333's validator rejects (proves it runs)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

BINARY = bytes(range(256)) * 4096


def read_body(environ: WSGIEnvironment) -> dict[str, Any]:
    """Read the body as a careful app does: exactly CONTENT_LENGTH, else to EOF if terminated."""
    stream = environ["wsgi.input"]
    raw_length = environ.get("CONTENT_LENGTH", "")
    if raw_length:
        data = stream.read(int(raw_length))
        after = stream.read(1)  # must be b"": wsgi.input ends at CONTENT_LENGTH
    elif environ.get("wsgi.input_terminated"):
        chunks = []
        while chunk := stream.read(65536):
            chunks.append(chunk)
        data, after = b"".join(chunks), b""
    else:
        data, after = b"", b""
    return {
        "length": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "head": data[:64].decode("latin-1"),
        "after": len(after),
    }


def environ_json(environ: WSGIEnvironment) -> bytes:
    seen: dict[str, Any] = {k: v for k, v in environ.items() if isinstance(v, str)}
    for key in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once", "wsgi.version"):
        seen[key] = environ[key]
    return json.dumps({"environ": seen, "body": read_body(environ)}).encode()


def stream() -> Iterator[bytes]:
    for i in range(200):
        yield f"chunk {i:03d}\n".encode()


def slow_stream() -> Iterator[bytes]:
    """Ten seconds of chunks: for a client that leaves early."""
    import time

    for i in range(100):
        yield f"slow {i:03d}\n".encode() * 1024
        time.sleep(0.1)


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    probe = environ.get("HTTP_X_PROBE", "environ")
    if probe == "hello":
        from hello import app as hello

        return hello(environ, start_response)
    if probe == "boom":
        raise RuntimeError("probe boom: the app failed on purpose")
    if probe == "breach":
        start_response("200 OK", [])
        return [b"no content type\n"]
    if probe == "redirect":
        body = b"see /elsewhere\n"
        start_response(
            "302 Found",
            [
                ("Location", "/elsewhere"),
                ("Content-Type", "text/plain"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    if probe == "local-redirect" and environ["PATH_INFO"] != "/landed":
        start_response("200 OK", [("Location", "/cgi-bin/app.cgi/landed?from=local")])
        return []
    if probe == "cookies":
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/plain"),
                ("Set-Cookie", "a=1; Path=/"),
                ("Set-Cookie", "b=2; Path=/; HttpOnly"),
                ("Set-Cookie", "c=3; Path=/; Max-Age=60"),
            ],
        )
        return [b"three cookies\n"]
    if probe == "big-headers":  # 24 KiB of response headers (large cookies, CSP...)
        headers = [("Content-Type", "text/plain")]
        headers += [("Set-Cookie", f"c{i}={'v' * 3000}; Path=/") for i in range(8)]
        start_response("200 OK", headers)
        return [b"big headers\n"]
    if probe == "stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream()
    if probe == "slow-stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return slow_stream()
    if probe == "binary":
        start_response(
            "200 OK",
            [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(BINARY)))],
        )
        return [BINARY]
    body = environ_json(environ)
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
