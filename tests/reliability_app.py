"""The app the reliability tests serve through every gateway: each path is one fault or probe.

``/ok``, ``/echo`` (the body read with ``read()``), ``/stream`` (ten chunks), ``/slow`` (a chunk
every 50 ms, for 10 s), ``/sleep?S``, ``/pid``, ``/proxy`` (what the app sees of HTTP_PROXY in
environ and in os.environ), and the faults: ``/raise-before`` (the app raises before
start_response), ``/bad-status`` and ``/crlf``, ``/nul``, ``/lf`` (start_response raises),
``/raise-in-iter``, ``/raise-mid-stream``, ``/raise-in-close``, ``/no-start-response``.

When ``RELIABILITY_MARKS`` names a directory, ``/sleep`` and ``/mark`` append the worker's pid
and the query string to files there as they start and end (SIGKILL and SIGTERM tests).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

SECRET = "reliability-app-secret-in-a-traceback"


def _mark(name: str, text: str) -> None:
    marks = os.environ.get("RELIABILITY_MARKS")
    if marks:
        with open(os.path.join(marks, name), "a") as file:
            file.write(f"{os.getpid()} {text}\n")


class Closing:
    """An iterable that records close() and may fail in it or while iterating."""

    def __init__(self, chunks: list[bytes], fail_at: int = -1, fail_in_close: bool = False):
        self.chunks = chunks
        self.fail_at = fail_at
        self.fail_in_close = fail_in_close

    def __iter__(self) -> Iterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise RuntimeError(f"iterator failed ({SECRET})")
            yield chunk

    def close(self) -> None:
        _mark("closed", "close")
        if self.fail_in_close:
            raise RuntimeError(f"close failed ({SECRET})")


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    query = environ.get("QUERY_STRING", "")
    plain = [("Content-Type", "text/plain")]
    if path.endswith("/echo"):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [*plain, ("Content-Length", str(len(body)))])
        return [body]
    if path.endswith("/stream"):
        start_response("200 OK", plain)
        return (b"chunk %d\n" % i for i in range(10))
    if path.endswith("/slow"):
        start_response("200 OK", plain)
        return Closing([b"x" * 1000] * 200, fail_at=-1) if query else _slow()
    if path.endswith("/sleep"):
        _mark("started", query)
        time.sleep(float(query.partition("-")[0] or 1))
        _mark("ended", query)
        start_response("200 OK", plain)
        return [f"slept {query} in {os.getpid()}".encode()]
    if path.endswith("/mark"):
        _mark("started", query)
        start_response("200 OK", plain)
        return [query.encode()]
    if path.endswith("/pid"):
        start_response("200 OK", plain)
        return [str(os.getpid()).encode()]
    if path.endswith("/proxy"):
        seen = {"environ": environ.get("HTTP_PROXY"), "os.environ": os.environ.get("HTTP_PROXY")}
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(seen).encode()]
    if path.endswith("/raise-before"):
        raise RuntimeError(f"app failed ({SECRET})")
    if path.endswith("/bad-status"):
        start_response("200", plain)  # no reason phrase: PEP 3333 refuses it
        return [b"never"]
    if path.endswith("/crlf"):
        start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: injected=1")])
        return [b"never"]
    if path.endswith("/lf"):
        start_response("200 OK", [("X-Evil", "a\nSet-Cookie: injected=1")])
        return [b"never"]
    if path.endswith("/nul"):
        start_response("200 OK", [("X-Evil", "a\x00b")])
        return [b"never"]
    if path.endswith("/raise-in-iter"):
        start_response("200 OK", plain)
        return Closing([b"never"], fail_at=0)
    if path.endswith("/raise-mid-stream"):
        start_response("200 OK", plain)
        return Closing([b"first chunk\n", b"second"], fail_at=1)
    if path.endswith("/raise-in-close"):
        start_response("200 OK", [*plain, ("Content-Length", "8")])
        return Closing([b"complete"], fail_in_close=True)
    if path.endswith("/no-start-response"):
        return [b"body without a status"]
    start_response("200 OK", plain)
    return [b"ok"]


def _slow() -> Iterator[bytes]:
    for _ in range(200):
        yield b"x" * 1000
        time.sleep(0.05)
