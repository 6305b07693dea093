"""The Lambda probe of ``wsgigate check``: the app through every event source builder."""

from __future__ import annotations

from typing import Any

from wsgigate.check import ProbeRequest, check

ROW = "lambda (every event source)"


def hello(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) + environ["PATH_INFO"].encode("latin-1")
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def row(app: Any, request: ProbeRequest) -> Any:
    rows = {r.gateway: r for r in check(app, request)}
    return rows[ROW]


def test_probe_passes_for_a_good_app() -> None:
    result = row(hello, ProbeRequest("POST", "/caf%C3%A9", "x=1", [], b"body"))
    assert result.ok, result.reason
    assert result.status.startswith("200")


def test_probe_names_the_source_that_differs() -> None:
    def picky(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        status = "404 Not Found" if environ["wsgigate.event_source"] == "edge" else "200 OK"
        start_response(status, [("Content-Type", "text/plain")])
        return [b"x"]

    result = row(picky, ProbeRequest())
    assert not result.ok
    assert "edge answered 404" in result.reason
