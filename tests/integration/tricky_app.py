"""The app behind the tricky-request set (tests/integration/tricky.py): cgi_probe.py plus the
probes that need more than it has. Standard library only; wsgigate loads it by path.

``X-Probe``:

- ``crc``: read ``wsgi.input`` in 64 KiB pieces, never whole; answer ``{"bytes", "crc"}``
- ``read-all``: ``wsgi.input.read()`` with no size (what hangs on flup's SCGI server)
- ``read-then-wait``: the same, then 0.3 s before answering
- ``env``: the environ's string values as JSON, ``wsgi.input`` untouched
- ``big-header``: an ``X-Big`` response header of 16,000 bytes (or the query string's number)
- anything else: cgi_probe.py (environ as JSON, stream, binary, boom...)
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

from cgi_probe import app as probe_app

BIG_HEADER = 16000


def _json(start_response: StartResponse, data: object) -> list[bytes]:
    body = json.dumps(data).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    probe = environ.get("HTTP_X_PROBE", "")
    stream = environ["wsgi.input"]
    if probe == "crc":
        size = crc = 0
        while chunk := stream.read(65536):
            size += len(chunk)
            crc = zlib.crc32(chunk, crc)
        return _json(start_response, {"bytes": size, "crc": crc})
    if probe in ("read-all", "read-then-wait"):
        data = stream.read()
        if probe == "read-then-wait":  # whatever the front end still sends is there by now
            time.sleep(0.3)
        return _json(start_response, {"bytes": len(data), "crc": zlib.crc32(data)})
    if probe == "env":  # the environ only: wsgi.input untouched
        return _json(start_response, {k: v for k, v in environ.items() if isinstance(v, str)})
    if probe == "big-header":
        size = int(environ.get("QUERY_STRING") or BIG_HEADER)
        start_response(
            "200 OK",
            [("Content-Type", "text/plain"), ("X-Big", "b" * size), ("Content-Length", "3")],
        )
        return [b"big"]
    return probe_app(environ, start_response)
