"""The response path (wsgigate.core.run_app, start_response checks): PEP 3333 as an app meets it.

A recording ResponseWriter shows exactly what a gateway would have been told, in order.
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsgigate.core import (
    ErrorStream,
    FileWrapper,
    InputStream,
    Outcome,
    build_environ,
    cgi_response_head,
    run_app,
    validate_headers,
    validate_status,
)
from wsgigate.errors import ApplicationError

App = Callable[[dict[str, Any], Any], Iterable[bytes]]


class Recorder:
    """A ResponseWriter that records every call; ``fail_at`` makes the Nth call raise."""

    def __init__(self, fail_at: str | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_at = fail_at

    def _record(self, *call: Any) -> None:
        self.calls.append(call)
        if self.fail_at == call[0]:
            raise BrokenPipeError(32, "Broken pipe")

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self._record("start", status, list(headers))

    def write(self, data: bytes) -> None:
        self._record("write", data)

    def finish(self, data: bytes) -> None:
        self._record("finish", data)

    @property
    def body(self) -> bytes:
        return b"".join(c[1] for c in self.calls if c[0] in ("write", "finish"))

    @property
    def status(self) -> str:
        starts = [c for c in self.calls if c[0] == "start"]
        assert len(starts) == 1, self.calls
        return str(starts[0][1])

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] == "start"][0][2]  # type: ignore[no-any-return]


def make_environ(method: str = "GET", path: str = "/x", body: bytes = b"") -> dict[str, Any]:
    meta = {"REQUEST_METHOD": method, "PATH_INFO": path}
    if body:
        meta["CONTENT_LENGTH"] = str(len(body))
    return build_environ(
        meta,
        stdin=InputStream(io.BytesIO(body), len(body)),
        errors=ErrorStream(),
        multithread=False,
        multiprocess=False,
        run_once=False,
    )


def run(
    app: App, writer: Recorder | None = None, debug: bool = False, **env: Any
) -> tuple[Outcome, Recorder]:
    writer = writer or Recorder()
    outcome = run_app(app, make_environ(**env), writer, debug=debug)  # type: ignore[arg-type]
    return outcome, writer


def test_outcome_made_by_hand_has_its_defaults() -> None:
    """A gateway answering by itself makes an Outcome (slots, so the defaults come from
    __init__); run_app's exchange, an Outcome made without __init__, has every field set."""
    assert vars_of(Outcome()) == {"status": 0, "sent": 0, "complete": False, "disconnected": False}
    made = Outcome(400, 12, True)
    assert vars_of(made) == {"status": 400, "sent": 12, "complete": True, "disconnected": False}
    outcome, _ = run(lambda environ, start_response: [])  # never calls start_response
    assert vars_of(outcome) == {"status": 500, "sent": 22, "complete": True, "disconnected": False}


def vars_of(outcome: Outcome) -> dict[str, Any]:
    return {name: getattr(outcome, name) for name in Outcome.__slots__}


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "wsgigate.error" and r.levelno >= logging.ERROR]


class Closing:
    """An app iterable that records close() and can raise during iteration."""

    def __init__(self, chunks: list[Any], raise_at: int | None = None) -> None:
        self.chunks = chunks
        self.raise_at = raise_at
        self.closed = 0

    def __iter__(self) -> Iterator[Any]:
        for i, chunk in enumerate(self.chunks):
            if i == self.raise_at:
                raise RuntimeError("boom in iteration")
            yield chunk
        if self.raise_at == len(self.chunks):
            raise RuntimeError("boom at the end")

    def close(self) -> None:
        self.closed += 1


def simple(
    body: list[Any], status: str = "200 OK", headers: list[tuple[str, str]] | None = None
) -> App:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response(status, headers if headers is not None else [("Content-Type", "text/x")])
        return body

    return app


# -- the happy paths -------------------------------------------------------------------------


def test_one_chunk_list_leaves_in_one_finish() -> None:
    outcome, w = run(simple([b"hello"]))
    assert w.calls == [("start", "200 OK", [("Content-Type", "text/x")]), ("finish", b"hello")]
    assert (outcome.status, outcome.sent, outcome.complete, outcome.disconnected) == (
        200,
        5,
        True,
        False,
    )


def test_many_chunks_list_writes_all_but_last() -> None:
    _, w = run(simple([b"a", b"b", b"c"]))
    assert [c[0] for c in w.calls] == ["start", "write", "write", "finish"]
    assert w.body == b"abc"


def test_tuple_and_empty_list() -> None:
    _, w = run(simple((b"x", b"y")))  # type: ignore[arg-type]
    assert w.body == b"xy"
    outcome, w = run(simple([]))
    assert w.calls == [("start", "200 OK", [("Content-Type", "text/x")]), ("finish", b"")]
    assert outcome.complete


def test_generator_body_streams_then_finishes_empty() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"one"
        yield b"two"

    outcome, w = run(app)
    assert w.calls == [
        ("start", "200 OK", []),
        ("write", b"one"),
        ("write", b"two"),
        ("finish", b""),
    ]
    assert outcome.sent == 6 and outcome.complete


def test_generator_calling_start_response_lazily() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        yield b""  # nothing yet: start_response comes late, which PEP 3333 allows
        start_response("201 Created", [])
        yield b"made"

    _, w = run(app)
    assert w.status == "201 Created" and w.body == b"made"


def test_bytearray_and_memoryview_chunks_are_sent_as_bytes() -> None:
    _, w = run(simple([bytearray(b"ab"), memoryview(b"cd")]))
    assert w.body == b"abcd"
    assert all(type(c[1]) is bytes for c in w.calls if c[0] in ("write", "finish"))


# -- headers only with the first non-empty chunk ---------------------------------------------


def test_empty_chunks_do_not_send_the_head() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b""
        yield b""
        yield b"data"

    _, w = run(app)
    assert w.calls == [("start", "200 OK", []), ("write", b"data"), ("finish", b"")]


def test_empty_chunk_then_raise_gives_a_clean_500(error_log: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        yield b""
        raise RuntimeError("late failure")

    outcome, w = run(app)
    assert w.status == "500 Internal Server Error"
    assert ("Content-Type", "text/html") not in w.headers
    assert w.body == b"Internal Server Error\n"
    assert b"late failure" not in w.body
    assert outcome.status == 500 and outcome.complete
    assert len(errors_logged(error_log)) == 1


# -- write() callable ------------------------------------------------------------------------


def test_write_callable_comes_before_the_iterable() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"first ")
        write(b"")
        write(b"second ")
        return [b"third"]

    _, w = run(app)
    assert w.calls == [
        ("start", "200 OK", []),
        ("write", b"first "),
        ("write", b"second "),
        ("finish", b"third"),
    ]


def test_write_then_raise_cuts_off(error_log: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"partial")
        raise ValueError("after write")

    outcome, w = run(app)
    assert w.calls == [("start", "200 OK", []), ("write", b"partial")]
    assert not outcome.complete
    records = errors_logged(error_log)
    assert len(records) == 1 and "cut off" in records[0].getMessage()
    assert records[0].exc_info is not None


def test_write_str_is_refused() -> None:
    seen: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        try:
            write("text")
        except ApplicationError as exc:
            seen.append(exc)
        return [b"ok"]

    _, w = run(app)
    assert len(seen) == 1 and w.body == b"ok"


# -- status validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "status",
    [
        "200OK",
        "20 OK",
        "2000 OK",
        "200",
        "",
        " 200 OK",
        "200 OK\n",
        "200 OK\r\nX-Injected: 1",
        "abc OK",
        "099 Low",
        "\u0662\u0660\u0660 OK",  # Arabic-Indic digits: str.isdigit() says yes
        b"200 OK",
        200,
        None,
    ],
)
def test_bad_status_is_refused(status: Any) -> None:
    with pytest.raises(ApplicationError):
        validate_status(status)


def test_status_outside_latin1_is_refused() -> None:
    # the head is serialized as latin-1: a status it cannot encode must fail in start_response,
    # not later in the gateway (where it would look like a disconnected client)
    with pytest.raises(ApplicationError):
        validate_status("200 \u2713 fine")


@pytest.mark.parametrize(
    ("status", "code"),
    [("200 OK", 200), ("404 Not Found", 404), ("599 X", 599), ("200 Ol\xe9", 200)],
)
def test_good_status(status: str, code: int) -> None:
    assert validate_status(status) == code


@pytest.mark.parametrize("status", ["200OK", b"200 OK", "200 OK\n", "20 OK"])
def test_bad_status_in_app_gives_500(status: Any, error_log: pytest.LogCaptureFixture) -> None:
    outcome, w = run(simple([b"body"], status=status))
    assert w.status == "500 Internal Server Error"
    assert outcome.status == 500
    records = errors_logged(error_log)
    assert len(records) == 1 and isinstance(records[0].exc_info[1], ApplicationError)  # type: ignore[index]


def test_non_latin1_status_in_app_gives_500_not_a_disconnect(
    error_log: pytest.LogCaptureFixture,
) -> None:
    class CGIStyle(Recorder):
        def start(self, status: str, headers: list[tuple[str, str]]) -> None:
            cgi_response_head(status, headers)
            super().start(status, headers)

    outcome, w = run(simple([b"body"], status="200 \u2713"), writer=CGIStyle())
    assert w.status == "500 Internal Server Error"
    assert not outcome.disconnected


# -- header validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Ok", "a\r\nSet-Cookie: evil=1")],
        [("X-Ok", "a\nb")],
        [("X-Ok", "a\rb")],
        [("X-Ok", "a\0b")],
        [("X-Ok", "a\x0bb")],  # vertical tab: str.splitlines() breaks lines there
        [("X-Ok", "a\x0cb")],
        [("X-Ok", "a\x1bb")],
        [("X-Ok", "a\x7fb")],
        [("X-Ok", "a\x01")],
        [("X-Ok", b"bytes")],
        [("X-Ok", 5)],
        [(b"X-Ok", "v")],
        [("X Ok", "v")],
        [("X-Ok:", "v")],
        [("", "v")],
        [("X-\xe9", "v")],
        [("X-Ok\r\n", "v")],
        [("Connection", "close")],
        [("connection", "keep-alive")],
        [("Transfer-Encoding", "chunked")],
        [("Keep-Alive", "timeout=5")],
        [("Upgrade", "websocket")],
        [("X-Ok", "snow \u2603")],
        [("X-Ok", "v", "extra")],
        [["X-Ok", "v"]],
        ["X-Ok: v"],
        [("Content-Length", "12x")],
        [("Content-Length", "-1")],
        [("Content-Length", "")],
        (("X-Ok", "v"),),
        {"X-Ok": "v"},
        [([1], "v")],
    ],
)
def test_bad_headers_are_refused(headers: Any) -> None:
    with pytest.raises(ApplicationError):
        validate_headers(headers)


def test_good_headers_and_content_length() -> None:
    assert validate_headers([("Content-Type", "text/plain"), ("X-Latin", "caf\xe9")]) is None
    assert validate_headers([("X-Tab", "a\tb"), ("X-Obs-Text", "\xa0\xad\x85\xff")]) is None
    assert validate_headers([("content-length", "12"), ("Set-Cookie", "a=1")]) == 12
    assert validate_headers([]) is None
    # a name proven valid once (cached) is still checked for its value next time
    with pytest.raises(ApplicationError):
        validate_headers([("Content-Type", "x\ny")])


def test_bad_header_in_app_gives_500_and_one_record(error_log: pytest.LogCaptureFixture) -> None:
    outcome, w = run(simple([b"x"], headers=[("Connection", "close")]))
    assert w.status == "500 Internal Server Error"
    records = errors_logged(error_log)
    assert len(records) == 1
    assert "hop-by-hop" in str(records[0].exc_info[1])  # type: ignore[index]


def test_unhashable_header_name_is_an_application_error(
    error_log: pytest.LogCaptureFixture,
) -> None:
    outcome, w = run(simple([b"x"], headers=[([1], "v")]))  # type: ignore[list-item]
    assert w.status == "500 Internal Server Error"
    assert isinstance(errors_logged(error_log)[0].exc_info[1], ApplicationError)  # type: ignore[index]


# -- exc_info (PEP 3333) ---------------------------------------------------------------------


def test_second_start_response_without_exc_info_is_an_error() -> None:
    seen: list[BaseException] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        try:
            start_response("404 Not Found", [])
        except ApplicationError as exc:
            seen.append(exc)
        return [b"first wins"]

    _, w = run(app)
    assert len(seen) == 1
    assert w.status == "200 OK" and w.body == b"first wins"


def test_exc_info_before_head_replaces_status_and_headers() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-First", "1")])
        try:
            raise KeyError("handled")
        except KeyError:
            start_response("503 Service Unavailable", [("X-Second", "2")], sys.exc_info())
        return [b"sorry"]

    outcome, w = run(app)
    assert w.calls == [
        ("start", "503 Service Unavailable", [("X-Second", "2")]),
        ("finish", b"sorry"),
    ]
    assert outcome.status == 503 and outcome.complete


def test_exc_info_before_any_start_response_is_allowed() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        try:
            raise KeyError("x")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())
        return [b"oops"]

    _, w = run(app)
    assert w.status == "500 Oops"


def test_exc_info_after_head_reraises_the_original(error_log: pytest.LogCaptureFixture) -> None:
    raised: list[BaseException] = []

    class Original(Exception):
        pass

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        yield b"head is out"
        try:
            raise Original("the real problem")
        except Original:
            try:
                start_response("500 Error", [], sys.exc_info())
            except BaseException as exc:
                raised.append(exc)
                raise

    outcome, w = run(app)
    assert len(raised) == 1 and type(raised[0]) is Original
    assert w.calls == [("start", "200 OK", []), ("write", b"head is out")]
    assert not outcome.complete
    records = errors_logged(error_log)
    assert len(records) == 1
    assert type(records[0].exc_info[1]) is Original  # type: ignore[index]


def test_exc_info_with_invalid_replacement_keeps_nothing_sent() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        try:
            raise KeyError("x")
        except KeyError:
            start_response("bad", [], sys.exc_info())
        return [b""]

    outcome, w = run(app)
    assert w.status == "500 Internal Server Error"


# -- close() always --------------------------------------------------------------------------


def closing_app(body: Closing, status: str = "200 OK") -> App:
    def app(environ: dict[str, Any], start_response: Any) -> Closing:
        start_response(status, [])
        return body

    return app


def test_close_called_on_success() -> None:
    body = Closing([b"a", b"b"])
    outcome, _ = run(closing_app(body))
    assert body.closed == 1 and outcome.complete


@pytest.mark.parametrize("raise_at", [0, 1, 2])
def test_close_called_when_iteration_raises(raise_at: int) -> None:
    body = Closing([b"a", b"b"], raise_at=raise_at)
    run(closing_app(body))
    assert body.closed == 1


@pytest.mark.parametrize("fail_at", ["start", "write", "finish"])
def test_close_called_when_client_disconnects(fail_at: str) -> None:
    body = Closing([b"a", b"b"])
    outcome, w = run(closing_app(body), writer=Recorder(fail_at=fail_at))
    assert body.closed == 1
    assert outcome.disconnected and not outcome.complete
    assert w.calls[-1][0] == fail_at  # nothing more was attempted after the failure


def test_close_called_when_start_response_refuses() -> None:
    closed: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        try:
            start_response("200OK", [])  # inside the iterable: the iterable exists to close
            yield b"never"
        finally:
            closed.append(True)

    outcome, w = run(app)
    assert closed == [True]
    assert w.status == "500 Internal Server Error"


def test_close_called_when_body_is_not_bytes() -> None:
    body = Closing(["text"])
    run(closing_app(body))
    assert body.closed == 1


def test_close_raising_is_logged_not_raised(error_log: pytest.LogCaptureFixture) -> None:
    class BadClose(Closing):
        def close(self) -> None:
            raise OSError("close failed")

    outcome, w = run(closing_app(BadClose([b"ok"])))
    assert w.body == b"ok" and outcome.complete
    assert any("close()" in r.getMessage() for r in errors_logged(error_log))


def test_generator_close_runs_finally_on_disconnect() -> None:
    cleaned: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        try:
            while True:
                yield b"forever"
        finally:
            cleaned.append(True)

    outcome, _ = run(app, writer=Recorder(fail_at="write"))
    assert cleaned == [True] and outcome.disconnected


# -- application errors ----------------------------------------------------------------------


def failing_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    raise ZeroDivisionError("secret detail")


def test_exception_before_head_is_a_short_500(error_log: pytest.LogCaptureFixture) -> None:
    outcome, w = run(failing_app)
    assert w.status == "500 Internal Server Error"
    assert w.body == b"Internal Server Error\n"
    assert ("Content-Length", str(len(w.body))) in w.headers
    assert b"secret" not in w.body  # no traceback to clients unless debug
    assert outcome.status == 500 and outcome.complete
    records = errors_logged(error_log)
    assert len(records) == 1
    assert type(records[0].exc_info[1]) is ZeroDivisionError  # type: ignore[index]
    assert "GET /x" in records[0].getMessage()


def test_debug_shows_the_traceback() -> None:
    _, w = run(failing_app, debug=True)
    assert w.status == "500 Internal Server Error"
    assert b"Traceback" in w.body and b"ZeroDivisionError: secret detail" in w.body
    assert ("Content-Length", str(len(w.body))) in w.headers


def test_exception_after_head_cuts_off(error_log: pytest.LogCaptureFixture) -> None:
    body = Closing([b"a", b"b", b"c"], raise_at=2)
    outcome, w = run(closing_app(body))
    assert w.calls == [("start", "200 OK", []), ("write", b"a"), ("write", b"b")]
    assert not outcome.complete and not outcome.disconnected
    assert outcome.status == 200 and outcome.sent == 2
    records = errors_logged(error_log)
    assert len(records) == 1 and records[0].exc_info is not None


def test_no_start_response_is_a_500(error_log: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        return [b"forgot start_response"]

    outcome, w = run(app)
    assert w.status == "500 Internal Server Error"
    assert b"forgot" not in w.body
    assert len(errors_logged(error_log)) == 1


def test_no_start_response_with_empty_body_is_a_500() -> None:
    _, w = run(lambda environ, start_response: [])
    assert w.status == "500 Internal Server Error"


@pytest.mark.parametrize(
    "body", [["text"], "a str body", b"raw bytes, not a list", ["text", b"ok"], None, [1]]
)
def test_non_bytes_body_is_a_500(body: Any, error_log: pytest.LogCaptureFixture) -> None:
    outcome, w = run(simple(body))
    assert w.status == "500 Internal Server Error"
    assert len(errors_logged(error_log)) == 1


def test_str_chunk_after_head_cuts_off(error_log: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[Any]:
        start_response("200 OK", [])
        yield b"good"
        yield "bad"

    outcome, w = run(app)
    assert w.status == "200 OK" and w.body == b"good" and not outcome.complete
    assert isinstance(errors_logged(error_log)[0].exc_info[1], ApplicationError)  # type: ignore[index]


def test_500_writer_failure_counts_as_disconnect() -> None:
    outcome, w = run(failing_app, writer=Recorder(fail_at="finish"))
    assert outcome.disconnected and not outcome.complete


def test_base_exceptions_are_not_swallowed_but_close_still_runs() -> None:
    body = Closing([b"a"])

    def app(environ: dict[str, Any], start_response: Any) -> Closing:
        start_response("200 OK", [])
        return body

    class Stop(Recorder):
        def finish(self, data: bytes) -> None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(app, writer=Stop())
    assert body.closed == 1


# -- Content-Length --------------------------------------------------------------------------


def test_longer_body_is_truncated_and_logged_once(error_log: pytest.LogCaptureFixture) -> None:
    app = simple([b"12345", b"67890", b"abc"], headers=[("Content-Length", "7")])
    outcome, w = run(app)
    assert w.body == b"1234567"
    assert outcome.sent == 7 and outcome.complete
    records = errors_logged(error_log)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert "more than its Content-Length" in records[0].getMessage()


def test_longer_single_chunk_truncated_one_record(error_log: pytest.LogCaptureFixture) -> None:
    outcome, w = run(simple([b"hello world"], headers=[("Content-Length", "5")]))
    assert w.calls[-1] == ("finish", b"hello")
    records = errors_logged(error_log)
    assert len(records) == 1, [r.getMessage() for r in records]


def test_content_length_zero_with_body(error_log: pytest.LogCaptureFixture) -> None:
    outcome, w = run(simple([b"unexpected"], headers=[("Content-Length", "0")]))
    assert w.body == b"" and w.status == "200 OK"
    assert len(errors_logged(error_log)) == 1


def test_shorter_body_is_logged_and_cut_off(error_log: pytest.LogCaptureFixture) -> None:
    # the client was promised 10 bytes and got 3: it must see the connection end, not wait
    outcome, w = run(simple([b"abc"], headers=[("Content-Length", "10")]))
    assert w.body == b"abc"
    assert not outcome.complete
    assert "finish" not in [c[0] for c in w.calls]
    records = errors_logged(error_log)
    assert len(records) == 1 and "7 bytes less" in records[0].getMessage()


def test_exact_content_length_is_quiet(error_log: pytest.LogCaptureFixture) -> None:
    outcome, w = run(simple([b"ab", b"cd"], headers=[("Content-Length", "4")]))
    assert w.body == b"abcd" and outcome.complete
    assert errors_logged(error_log) == []


@pytest.mark.parametrize("status", ["304 Not Modified", "204 No Content"])
def test_bodiless_status_with_content_length_is_not_short(
    status: str, error_log: pytest.LogCaptureFixture
) -> None:
    outcome, _ = run(simple([], status=status, headers=[("Content-Length", "1234")]))
    assert outcome.complete
    assert errors_logged(error_log) == []


def test_head_request_with_content_length_and_no_body_is_fine(
    error_log: pytest.LogCaptureFixture,
) -> None:
    outcome, _ = run(simple([], headers=[("Content-Length", "1234")]), method="HEAD")
    assert outcome.complete
    assert errors_logged(error_log) == []


# -- wsgi.errors and file_wrapper through the app ---------------------------------------------


def test_wsgi_errors_lines_become_records(error_log: pytest.LogCaptureFixture) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.errors"].write("one\ntwo\n")
        environ["wsgi.errors"].write("unterminated")
        start_response("200 OK", [])
        return [b""]

    run(app)
    lines = [r.getMessage() for r in error_log.records if r.name == "wsgigate.error"]
    # the last line has no newline and the app never flushed: it must not be lost
    assert lines == ["one", "two", "unterminated"]


def test_file_wrapper_through_run_app(tmp_path: Any) -> None:
    data = b"0123456789" * 10_000
    (tmp_path / "f.bin").write_bytes(data)
    files: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", str(len(data)))])
        f = open(tmp_path / "f.bin", "rb")  # noqa: SIM115 - closed by the wrapper's close()
        files.append(f)
        return environ["wsgi.file_wrapper"](f, 32768)

    outcome, w = run(app)
    assert w.body == data and outcome.complete
    assert files[0].closed
    assert isinstance(FileWrapper(io.BytesIO()), FileWrapper)


# -- the CGI-style head ----------------------------------------------------------------------


def test_cgi_response_head() -> None:
    head = cgi_response_head("404 Not Found", [("Content-Type", "text/plain"), ("X-A", "caf\xe9")])
    assert head == b"Status: 404 Not Found\r\nContent-Type: text/plain\r\nX-A: caf\xe9\r\n\r\n"


def test_app_reading_input_through_run_app() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]

    _, w = run(app, method="POST", body=b"posted bytes")
    assert w.body == b"posted bytes"


# -- properties over any body and Content-Length ----------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=6), max_size=6),
    declared=st.none() | st.integers(0, 30),
    as_list=st.booleans(),
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_response_invariants(
    chunks: list[bytes], declared: int | None, as_list: bool, method: str
) -> None:
    headers = [] if declared is None else [("Content-Length", str(declared))]

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", headers)
        return list(chunks) if as_list else iter(chunks)

    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("wsgigate.error")
    logger.addHandler(handler)
    try:
        outcome, w = run(app, method=method)
    finally:
        logger.removeHandler(handler)

    names = [c[0] for c in w.calls]
    assert names.count("start") == 1 and names[0] == "start"
    assert all(c[1] for c in w.calls if c[0] == "write"), "empty write reached the gateway"
    total = b"".join(chunks)
    expected = total if declared is None else total[:declared]
    assert w.body == expected and outcome.sent == len(expected)
    short = declared is not None and len(total) < declared and method != "HEAD"
    assert outcome.complete == (not short)
    assert names.count("finish") == (0 if short else 1)
    longer = declared is not None and len(total) > declared
    assert len(records) == (1 if longer or short else 0), [r.getMessage() for r in records]


# -- writers that send files themselves (ResponseWriter.send_file) ---------------------------


class FileSender(Recorder):
    """Takes over files whose length matches, as the ASGI bridge does with pathsend."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.offered: list[int | None] = []

    def send_file(self, wrapper: FileWrapper, length: int | None) -> int | None:
        self.offered.append(length)
        return self.size if length in (None, self.size) else None


def file_app(status: str = "200 OK", length: str | None = None) -> App:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response(status, [("Content-Length", length)] if length else [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 10))

    return app


def test_a_writer_may_send_the_apps_file_itself() -> None:
    for length in (None, "10"):
        writer = FileSender(10)
        outcome, _ = run(file_app(length=length), writer)
        assert writer.offered == [None if length is None else 10]
        assert [c[0] for c in writer.calls] == ["start", "finish"] and writer.body == b""
        assert outcome.complete and outcome.sent == 10


def test_file_is_iterated_when_the_writer_declines_or_is_not_offered() -> None:
    writer = FileSender(10)
    outcome, _ = run(file_app(length="5"), writer)  # declined: the length does not match
    assert writer.offered == [5] and writer.body == b"x" * 5 and outcome.complete
    for app, method in ((file_app("206 Partial Content"), "GET"), (file_app(), "HEAD")):
        writer = FileSender(10)
        run(app, writer, method=method)
        assert writer.offered == []  # only a whole GET answered 200 is offered
