"""Gaps found auditing issue #5 against the tests: raw non-ASCII in events, an app failing
mid-body, a body shorter than its Content-Length, `lambda invoke` building the event from
options, and the per-request fast paths of the shared core the Lambda gateway relies on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.lambda_events import BUILDERS, parse_response
from tests.support import EXAMPLES
from wsgigate.aws_lambda import make_handler
from wsgigate.cli import main
from wsgigate.core import ErrorStream, InputStream, build_environ, validate_headers, validate_status
from wsgigate.errors import ApplicationError

SOURCES = sorted(BUILDERS)


def echo_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    seen = {key: value for key, value in environ.items() if isinstance(value, str)}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(seen).encode()]


@pytest.mark.parametrize("source", SOURCES)
def test_raw_non_ascii_path_and_query_are_latin1_native_strings(source: str) -> None:
    """A client may send raw UTF-8 in the path or query; front ends hand it over as text.
    PEP 3333 wants native strings whose code points are the bytes: every value latin-1."""
    event = BUILDERS[source](path="/caf\u00e9/\u20ac", query="q=\u20ac&r=\u00e9")
    status, _, body = parse_response(source, make_handler(echo_app)(event, None))
    assert status == 200
    seen = json.loads(body)
    for key, value in seen.items():
        value.encode("latin-1")  # raises if a value is not a native string
        assert key.isascii()
    assert seen["PATH_INFO"] == "/caf\u00e9/\u20ac".encode().decode("latin-1")
    raw_query = "q=\u20ac&r=\u00e9".encode().decode("latin-1")
    if source == "rest":  # REST events carry decoded parameters: re-encoded
        assert seen["QUERY_STRING"] == "q=%E2%82%AC&r=%C3%A9"
    else:
        assert seen["QUERY_STRING"] == raw_query
    assert seen["REQUEST_URI"].endswith("?" + seen["QUERY_STRING"])


def _failing_mid_body(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first part, "
    raise RuntimeError("broke mid-body")


@pytest.mark.parametrize("source", SOURCES)
def test_app_failing_mid_body_is_a_500_not_half_a_body(
    source: str, error_log: pytest.LogCaptureFixture
) -> None:
    """Nothing has left the function yet when the app fails: a clean 500, never a 200 with
    half a body (a streamed answer would be cut off instead: see test_lambda_runtime)."""
    handler = make_handler(_failing_mid_body)
    status, _, body = parse_response(source, handler(BUILDERS[source](path="/x"), None))
    assert status == 500
    assert b"first part" not in body and b"broke" not in body
    assert "broke mid-body" in error_log.text  # the core logged the traceback
    assert "failed mid-response" in error_log.text
    # The handler keeps serving.
    assert parse_response(source, make_handler(echo_app)(BUILDERS[source](), None))[0] == 200


def test_body_shorter_than_its_content_length_is_a_500(
    error_log: pytest.LogCaptureFixture,
) -> None:
    def short(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"abc"]

    answer = make_handler(short)(BUILDERS["http_api"](), None)
    assert answer["statusCode"] == 500
    assert "less than its Content-Length" in error_log.text


def test_invoke_builds_the_event_from_options(capsys: pytest.CaptureFixture[str]) -> None:
    """`wsgigate lambda invoke APP --method/--path/--header/--data`, per source."""
    spec = str(EXAMPLES / "hello.py") + ":app"
    for source in ("rest", "http_api", "alb", "lattice"):
        argv = ["lambda", "invoke", spec, "--source", source, "--method", "POST"]
        argv += ["--path", "/echo", "--header", "X-Test: 1", "--data", "posted", "--body"]
        assert main(argv) == 0, source
        assert capsys.readouterr().out == "posted", source
    argv = ["lambda", "invoke", spec, "--source", "function_url", "--path", "/cookies"]
    assert main(argv) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["statusCode"] == 200
    assert answer["cookies"] == ["a=1; Path=/", "b=2; Path=/"]


# --- the shared core's fast paths: a cache hit must never accept what validation refuses ---


def test_header_cache_refuses_a_bad_value_after_a_good_one() -> None:
    assert validate_headers([("X-Cached", "fine")]) is None
    assert validate_headers([("X-Cached", "fine")]) is None  # from the cache
    with pytest.raises(ApplicationError, match="control character"):
        validate_headers([("X-Cached", "bad\r\nSet-Cookie: x=1")])
    with pytest.raises(ApplicationError, match="must be str"):
        validate_headers([("X-Cached", ["fine"])])  # unhashable: no cache lookup error
    with pytest.raises(ApplicationError, match="hop-by-hop"):
        validate_headers([("X-Cached", "fine"), ("Connection", "close")])


def test_content_length_comes_from_each_response() -> None:
    for length in ("14", "0", "14", "7"):
        assert validate_headers([("Content-Length", length), ("X-A", "b")]) == int(length)
    assert validate_headers([("X-A", "b")]) is None  # the cache keeps no length around


def test_status_cache_refuses_what_validation_refuses() -> None:
    assert validate_status("200 OK") == 200
    assert validate_status("200 OK") == 200
    for bad in ("200", "2000 OK", "200 O\nK", "abc OK"):
        with pytest.raises(ApplicationError):
            validate_status(bad)


def test_build_environ_reuse_makes_the_meta_dict_the_environ() -> None:
    meta = {"REQUEST_METHOD": "POST", "HTTP_PROXY": "evil", "HTTP_CONTENT_TYPE": "text/x"}
    common: dict[str, Any] = {
        "stdin": InputStream(None, 0),
        "errors": ErrorStream(),
        "multithread": False,
        "multiprocess": False,
        "run_once": False,
    }
    copied = build_environ(dict(meta), **common)
    reused_meta = dict(meta)
    reused = build_environ(reused_meta, reuse=True, **common)
    assert reused is reused_meta
    assert copied == reused
    assert "HTTP_PROXY" not in reused and reused["CONTENT_TYPE"] == "text/x"
    kept = dict(meta)
    assert build_environ(kept, **common) is not kept and kept == meta  # default: untouched


@pytest.mark.parametrize("source", sorted(BUILDERS))
def test_wsgi_input_over_an_event_body(source: str) -> None:
    """The body of an event is wholly in memory: wsgi.input serves it line by line, in parts
    and by iteration, and then reports its end."""
    seen: list[object] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen.append(environ["CONTENT_LENGTH"])
        seen.append(stream.readline())
        seen.append(stream.read(3))
        seen.append(list(stream))
        seen.append((stream.read(), stream.readline()))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    event = BUILDERS[source](method="POST", body=b"line 1\nline 2\nrest")
    assert parse_response(source, make_handler(app)(event, None))[0] == 200
    assert seen == ["18", b"line 1\n", b"lin", [b"e 2\n", b"rest"], (b"", b"")]

    def bodiless(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        seen[:] = ["CONTENT_LENGTH" in environ, stream.read(), stream.readline(), list(stream)]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    assert parse_response(source, make_handler(bodiless)(BUILDERS[source](), None))[0] == 200
    assert seen == [False, b"", b"", []]
