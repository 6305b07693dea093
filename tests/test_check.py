"""``wsgigate check``: the app through every gateway, under wsgiref's validator, as a table."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import EXAMPLES
from wsgigate.check import (
    PROBES,
    ProbeRequest,
    check,
    format_table,
    parse_cgi_response,
)
from wsgigate.cli import main


def good(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
    return [b"ok"]


def str_body(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]  # type: ignore[list-item]


def bad_header(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Evil", "a\r\nb")])
    return [b"x"]


def hop_by_hop(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Connection", "close")])
    return [b"x"]


def raises(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    raise RuntimeError("broken app")


def test_good_app_passes_every_gateway() -> None:
    rows = check(good)
    assert [r.gateway for r in rows][:3] == ["direct", "cgi", "http (dev server)"]
    assert len(rows) == 1 + len(PROBES)
    for row in rows:
        assert row.ok, (row.gateway, row.reason)
        assert row.status == "200 OK"


def test_example_post_echo_passes() -> None:
    from wsgigate.loader import load_app

    app = load_app(f"{EXAMPLES / 'hello.py'}:app")
    request = ProbeRequest("POST", "/echo", "", [("Content-Type", "text/plain")], b"\x00\xffbody")
    rows = check(app, request)
    assert all(r.ok for r in rows), [(r.gateway, r.reason) for r in rows]


@pytest.mark.parametrize(
    ("app", "reason"),
    [
        (str_body, "bytes"),
        (bad_header, ""),
        (hop_by_hop, ""),
        (raises, "broken app"),
    ],
)
def test_broken_app_fails_with_a_reason(app: Any, reason: str) -> None:
    rows = check(app)
    assert not any(r.ok for r in rows)
    for row in rows:
        assert row.reason, row.gateway
        assert reason in row.reason or reason == ""
    table = format_table(rows)
    assert table.count("FAIL") == len(rows)


def test_only_one_gateway_broken_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # a gateway whose answer differs from the direct call fails; the others still pass
    module = type(sys)("check_fake_probe")

    def probe(app: Any, request: ProbeRequest) -> Any:
        return parse_cgi_response(b"Status: 200 OK\r\n\r\ndifferent body")

    module.probe = probe  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "check_fake_probe", module)
    monkeypatch.setitem(PROBES, "fake", "check_fake_probe:probe")
    monkeypatch.setitem(PROBES, "missing", "check_not_installed_module:probe")
    rows = {r.gateway: r for r in check(good)}
    assert rows["cgi"].ok
    assert not rows["fake"].ok and "body differs" in rows["fake"].reason
    assert not rows["missing"].ok and "not available" in rows["missing"].reason


def test_parse_cgi_response() -> None:
    response = parse_cgi_response(b"Status: 404 Nope\r\nX-A: 1\r\n\r\nbody\r\n\r\nmore")
    assert response.status == "404 Nope"
    assert response.headers == [("X-A", "1")]
    assert response.body == b"body\r\n\r\nmore"
    with pytest.raises(ValueError):
        parse_cgi_response(b"Status: 200 OK\r\n")


def test_probe_request_meta() -> None:
    meta = ProbeRequest(
        "POST", "/caf%C3%A9", "a=1", [("Content-Type", "text/x"), ("X-Y", "z")], b"abc"
    ).meta()
    assert meta["PATH_INFO"] == "/caf\xc3\xa9"
    assert meta["CONTENT_LENGTH"] == "3"
    assert meta["CONTENT_TYPE"] == "text/x"
    assert meta["HTTP_X_Y"] == "z"
    assert meta["REQUEST_URI"] == "/caf%C3%A9?a=1"


@pytest.fixture
def broken_app_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "check_broken_app.py"
    path.write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return ['str body']\n"
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield path
    sys.modules.pop("check_broken_app", None)


def test_cli_check_broken_app_exit_1(
    broken_app_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", f"{broken_app_file}:app"]) == 1
    out = capsys.readouterr().out
    data_lines = out.splitlines()[1:]
    assert data_lines and all("FAIL" in line for line in data_lines)
    cgi_line = next(line for line in data_lines if line.startswith("cgi "))
    assert "500" in cgi_line
    assert "bytes" in cgi_line  # the reason says what was wrong


def test_format_table_aligns_columns() -> None:
    from wsgigate.check import Row

    table = format_table([Row("direct", "200 OK", True), Row("longer name", "500 X", False, "why")])
    lines = table.splitlines()
    assert lines[1].index("200 OK") == lines[2].index("500 X") == lines[0].index("status")
    assert lines[2].endswith("FAIL  why")


def test_gateway_losing_a_repeated_header_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def cookies(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")]
        )
        return [b"x"]

    module = type(sys)("check_fake_cookie_probe")

    def probe(app: Any, request: ProbeRequest) -> Any:
        # a gateway that folds repeated headers into a dict keeps only the last cookie
        return parse_cgi_response(
            b"Status: 200 OK\r\ncontent-type: text/plain\r\nset-cookie: b=2\r\n\r\nx"
        )

    module.probe = probe  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "check_fake_cookie_probe", module)
    monkeypatch.setitem(PROBES, "folding", "check_fake_cookie_probe:probe")
    rows = {r.gateway: r for r in check(cookies)}
    assert rows["cgi"].ok, rows["cgi"].reason
    assert not rows["folding"].ok
    assert "Set-Cookie: a=1" in rows["folding"].reason


def test_bare_assertion_reason_names_the_failed_check() -> None:
    def reads_without_size(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body = environ["wsgi.input"].read()  # wsgiref's validator wants read(size)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    rows = check(reads_without_size, ProbeRequest("POST", "/", body=b"abc"))
    direct = rows[0]
    assert not direct.ok
    assert "read()" in direct.reason and "len(args) == 1" in direct.reason
