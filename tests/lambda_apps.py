"""WSGI apps the Lambda runtime tests serve (``tests.lambda_apps:app``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any


def app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ.get("PATH_INFO", "/")
    if path == "/boom":
        raise RuntimeError("boom before the response")
    if path == "/slow":
        time.sleep(1.5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"slow done, {environ['aws.context'].get_remaining_time_in_millis() > 0}".encode()]
    if path == "/stream":
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/plain"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("X-Stream", "yes"),
            ],
        )
        return _stream()
    if path == "/late-boom":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _late_boom()
    if path == "/context":
        context = environ["aws.context"]
        body = f"{context.aws_request_id} {context.invoked_function_arn}".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    body = environ["wsgi.input"].read() or f"hello {path}".encode()
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "s=1"), ("Set-Cookie", "t=2")]
    )
    return [body]


def _stream() -> Iterator[bytes]:
    for i in range(3):
        yield f"part {i}\n".encode()
        time.sleep(0.4)


def _late_boom() -> Iterator[bytes]:
    yield b"first part\n"
    raise RuntimeError("boom mid-stream")
