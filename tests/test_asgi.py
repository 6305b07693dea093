"""wsgigate.asgi.WSGIApp driven in-process by a small ASGI client (no server)."""

from __future__ import annotations

import asyncio
import io
import os
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from wsgigate import asgi
from wsgigate.asgi import WSGIApp, environ_meta
from wsgigate.errors import ApplicationError, ClientDisconnected

Environ = dict[str, Any]


def make_scope(
    path: str = "/",
    *,
    raw_path: bytes | None = None,
    root_path: str = "",
    query: bytes = b"",
    method: str = "GET",
    headers: Iterable[tuple[bytes, bytes]] = (),
    **extra: Any,
) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "root_path": root_path,
        "query_string": query,
        "headers": [(b"host", b"example.org"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    if raw_path is not None:
        scope["raw_path"] = raw_path
    scope.update(extra)
    return scope


class Client:
    """An ASGI server stand-in: feeds body messages, records what the app sends."""

    def __init__(
        self,
        body: Iterable[bytes] = (b"",),
        *,
        disconnect: asyncio.Event | None = None,
        send_gate: asyncio.Semaphore | None = None,
        send_error: BaseException | None = None,
    ) -> None:
        parts = list(body)
        self.messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
            for i, part in enumerate(parts)
        ]
        self.received = 0  # how many messages the app pulled
        self.sent: list[dict[str, Any]] = []
        self.disconnect = disconnect
        self.send_gate = send_gate
        self.send_error = send_error

    async def receive(self) -> dict[str, Any]:
        if self.received < len(self.messages):
            self.received += 1
            return self.messages[self.received - 1]
        if self.disconnect is not None:
            await self.disconnect.wait()
        else:
            await asyncio.Event().wait()  # a live client: nothing more, ever
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.send_gate is not None:
            await self.send_gate.acquire()
        if self.send_error is not None and message["type"] == "http.response.body":
            raise self.send_error
        self.sent.append(message)

    @property
    def status(self) -> int:
        status: int = self.sent[0]["status"]
        return status

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.sent[0]["headers"])

    @property
    def body(self) -> bytes:
        return b"".join(m["body"] for m in self.sent if m["type"] == "http.response.body")


def run(app: WSGIApp, scope: dict[str, Any], client: Client) -> Client:
    async def main() -> None:
        try:
            await app(scope, client.receive, client.send)
        finally:
            await asyncio.to_thread(app.shutdown)

    asyncio.run(main())
    return client


def capture_environ(**app_options: Any) -> tuple[WSGIApp, list[Environ]]:
    seen: list[Environ] = []

    def wsgi(environ: Environ, start_response: Any) -> list[bytes]:
        seen.append(dict(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    return WSGIApp(wsgi, **app_options), seen


def environ_for(scope: dict[str, Any]) -> Environ:
    app, seen = capture_environ()
    client = run(app, scope, Client())
    assert client.status == 200
    return seen[0]


# ---- scope -> environ ----------------------------------------------------------------------


def test_basic_environ() -> None:
    env = environ_for(make_scope("/hello", query=b"a=1&b=2", method="GET"))
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/hello"
    assert env["QUERY_STRING"] == "a=1&b=2"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == "8000"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == "50000"
    assert env["HTTP_HOST"] == "example.org"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True
    assert env["wsgi.input"].read() == b""
    assert env["asgi.scope"]["path"] == "/hello"


def test_raw_path_is_percent_decoded_to_bytes() -> None:
    # %2F stays a distinct byte sequence decoded to "/", %FF is not UTF-8 and must survive.
    meta = environ_meta(make_scope("/a/b c/\xff", raw_path=b"/a%2Fb%20c/%FF/caf%C3%A9"))
    assert meta["PATH_INFO"] == "/a/b c/\xff/caf\xc3\xa9"
    assert meta["REQUEST_URI"] == "/a%2Fb%20c/%FF/caf%C3%A9"


def test_raw_path_with_query_is_cut_at_question_mark() -> None:
    meta = environ_meta(make_scope("/x", raw_path=b"/x?y=1", query=b"y=1"))
    assert meta["PATH_INFO"] == "/x"
    assert meta["QUERY_STRING"] == "y=1"


def test_path_without_raw_path_is_reencoded_utf8_as_latin1() -> None:
    meta = environ_meta(make_scope("/café/ü"))
    assert meta["PATH_INFO"] == "/caf\xc3\xa9/\xc3\xbc"
    assert meta["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/ü"


@pytest.mark.parametrize(
    ("root", "path", "raw", "script", "info"),
    [
        ("/app", "/app/x", None, "/app", "/x"),  # path includes root_path (ASGI now)
        ("/app", "/app/x", b"/app/x", "/app", "/x"),
        ("/app", "/app", b"/app", "/app", ""),
        ("/app", "/x", None, "/app", "/x"),  # older servers: path without root_path
        ("/app", "/application", None, "/app", "/application"),  # not a segment boundary
        ("/mnt ü", "/mnt ü/y", b"/mnt%20%C3%BC/y", "/mnt \xc3\xbc", "/y"),
    ],
)
def test_root_path_becomes_script_name(
    root: str, path: str, raw: bytes | None, script: str, info: str
) -> None:
    meta = environ_meta(make_scope(path, raw_path=raw, root_path=root))
    assert (meta["SCRIPT_NAME"], meta["PATH_INFO"]) == (script, info)


def test_query_string_bytes_are_latin1() -> None:
    meta = environ_meta(make_scope(query=b"a=1&a=2&n=caf%C3%A9&raw=\xe9"))
    assert meta["QUERY_STRING"] == "a=1&a=2&n=caf%C3%A9&raw=\xe9"


def test_headers_repeated_joined_cookies_with_semicolon() -> None:
    env = environ_for(
        make_scope(
            headers=[
                (b"accept", b"text/html"),
                (b"accept", b"text/plain"),
                (b"cookie", b"a=1"),
                (b"cookie", b"b=2"),
                (b"x-latin", b"caf\xe9"),
                (b"content-type", b"text/plain"),
                (b"content-length", b"0"),
                (b"x-forwarded_for", b"spoofed"),
                (b"proxy", b"http://evil"),
            ],
            method="POST",
        )
    )
    assert env["HTTP_ACCEPT"] == "text/html, text/plain"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert env["HTTP_X_LATIN"] == "caf\xe9"
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "0"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env
    assert "HTTP_X_FORWARDED_FOR" not in env  # underscore names are dropped, not merged
    assert "HTTP_PROXY" not in env  # httpoxy


def test_scheme_server_and_client() -> None:
    env = environ_for(make_scope(scheme="https", http_version="2", server=None, client=None))
    assert env["wsgi.url_scheme"] == "https"
    assert env["HTTPS"] == "on"
    assert env["SERVER_PROTOCOL"] == "HTTP/2"
    assert env["SERVER_NAME"] == "example.org"  # from Host when the server tuple is missing
    assert env["SERVER_PORT"] == "443"
    assert "REMOTE_ADDR" not in env


def test_unix_socket_server_tuple_falls_back_to_host() -> None:
    meta = environ_meta(make_scope(server=("/run/app.sock", None)))
    assert "SERVER_NAME" not in meta  # build_environ takes it from Host


# ---- responses -----------------------------------------------------------------------------


def hello(environ: Environ, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def test_list_body_leaves_in_one_hop_as_start_plus_final_body() -> None:
    app = WSGIApp(hello)
    hops: list[int] = []
    original = asgi._Channel.end

    def end(self: asgi._Channel, outcome: Any) -> None:
        original(self, outcome)
        hops.append(self.hops)

    asgi._Channel.end = end  # type: ignore[method-assign]
    try:
        client = run(app, make_scope(), Client())
    finally:
        asgi._Channel.end = original  # type: ignore[method-assign]
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert client.sent[1] == {"type": "http.response.body", "body": b"hello", "more_body": False}
    assert client.status == 200
    assert (b"content-type", b"text/plain") in client.headers
    assert hops == [1]  # one worker -> loop hand-over for the whole response


def test_streamed_body_in_order_and_terminated() -> None:
    def wsgi(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        for i in range(50):
            yield b"%d," % i

    client = run(WSGIApp(wsgi), make_scope(), Client())
    assert client.body == b"".join(b"%d," % i for i in range(50))
    assert client.sent[-1]["more_body"] is False
    assert all(m["more_body"] for m in client.sent[1:-1])


def test_write_callable_and_empty_body() -> None:
    def wsgi(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("204 No Content", [])
        write(b"")
        return []

    client = run(WSGIApp(wsgi), make_scope(), Client())
    assert client.status == 204
    assert client.sent[1:] == [{"type": "http.response.body", "body": b"", "more_body": False}]

    def writer(environ: Environ, start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [])
        write(b"a")
        write(b"b")
        return [b"c"]

    assert run(WSGIApp(writer), make_scope(), Client()).body == b"abc"


def test_exception_before_head_is_500(error_log: pytest.LogCaptureFixture) -> None:
    def broken(environ: Environ, start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    client = run(WSGIApp(broken), make_scope(), Client())
    assert client.status == 500
    assert b"boom" not in client.body
    assert any("application raised" in r.getMessage() for r in error_log.records)
    debug = run(WSGIApp(broken, debug=True), make_scope(), Client())
    assert b"RuntimeError: boom" in debug.body


def test_exc_info_replaces_head_before_body() -> None:
    def wsgi(environ: Environ, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("X-A", "1")])
        try:
            raise ValueError("late")
        except ValueError:
            import sys

            start_response("503 Service Unavailable", [("X-B", "2")], sys.exc_info())
        return [b"sorry"]

    client = run(WSGIApp(wsgi), make_scope(), Client())
    assert client.status == 503
    assert (b"x-b", b"2") in client.headers
    assert client.body == b"sorry"


def test_exception_after_head_cuts_the_response_off(error_log: pytest.LogCaptureFixture) -> None:
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"part"
            raise RuntimeError("mid-stream")

        def close(self) -> None:
            closed.set()

    def wsgi(environ: Environ, start_response: Any) -> Body:
        start_response("200 OK", [])
        return Body()

    client = Client()
    with pytest.raises(ApplicationError, match="cut off"):
        run(WSGIApp(wsgi), make_scope(), client)
    assert closed.is_set()
    assert client.sent[-1]["more_body"] is True  # never claimed complete
    assert any("cut off" in r.getMessage() for r in error_log.records)


# ---- request bodies ------------------------------------------------------------------------


def echo(environ: Environ, start_response: Any) -> list[bytes]:
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


def test_body_in_many_messages_with_and_without_content_length() -> None:
    parts = [b"a" * 1000, b"", b"b" * 70000, b"c"]
    total = str(sum(map(len, parts))).encode()
    scope = make_scope(method="POST", headers=[(b"content-length", total)])
    assert run(WSGIApp(echo), scope, Client(parts)).body == b"".join(parts)
    chunked = make_scope(method="POST", headers=[(b"transfer-encoding", b"chunked")])
    assert run(WSGIApp(echo), chunked, Client(parts)).body == b"".join(parts)


def test_readline_and_iteration_across_messages() -> None:
    def lines(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        first = stream.readline()
        rest = list(stream)
        start_response("200 OK", [])
        return [b"|".join([first, *rest])]

    client = run(WSGIApp(lines), make_scope(method="POST"), Client([b"one\ntw", b"o\nthr", b"ee"]))
    assert client.body == b"one\n|two\n|three"


def test_body_is_pulled_only_as_the_app_reads() -> None:
    def reads_one_block(environ: Environ, start_response: Any) -> list[bytes]:
        data = environ["wsgi.input"].read(10)
        start_response("200 OK", [])
        return [data]

    client = Client([b"0123456789"] + [b"x" * 100] * 50)
    run(WSGIApp(reads_one_block), make_scope(method="POST"), client)
    assert client.body == b"0123456789"
    assert client.received == 1  # the other 50 messages stayed with the server


def test_disconnect_during_upload_raises_in_the_app() -> None:
    errors: list[BaseException] = []

    def reader(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as exc:
            errors.append(exc)
            raise
        start_response("200 OK", [])
        return [b"unreachable"]

    gone = asyncio.Event()
    gone.set()
    client = Client([b"x"], disconnect=gone)
    client.messages[0]["more_body"] = True
    run(WSGIApp(reader), make_scope(method="POST"), client)
    assert errors
    assert client.sent == []  # nobody to answer


def test_short_body_against_content_length_raises_in_the_app() -> None:
    errors: list[BaseException] = []

    def reader(environ: Environ, start_response: Any) -> list[bytes]:
        try:
            environ["wsgi.input"].read()
        except ClientDisconnected as exc:
            errors.append(exc)
        start_response("400 Bad Request", [])
        return [b""]

    scope = make_scope(method="POST", headers=[(b"content-length", b"10")])
    assert run(WSGIApp(reader), scope, Client([b"abc"])).status == 400
    assert errors


def test_invalid_content_length_is_400_without_calling_the_app() -> None:
    app, seen = capture_environ()
    scope = make_scope(method="POST", headers=[(b"content-length", b"12x")])
    client = run(app, scope, Client())
    assert client.status == 400
    assert seen == []


def test_disconnect_before_the_request_is_read() -> None:
    app, seen = capture_environ()
    gone = asyncio.Event()
    gone.set()
    client = Client([], disconnect=gone)
    run(app, make_scope(), client)
    assert seen == [] and client.sent == []


# ---- backpressure and disconnects ----------------------------------------------------------


def test_slow_client_bounds_what_the_worker_runs_ahead() -> None:
    produced = [0]
    chunk = b"x" * 65536

    def wsgi(environ: Environ, start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [])
        for _ in range(64):  # 4 MiB
            produced[0] += len(chunk)
            yield chunk

    async def main() -> tuple[int, int]:
        gate = asyncio.Semaphore(0)
        client = Client(send_gate=gate)
        app = WSGIApp(wsgi)
        task = asyncio.create_task(app(make_scope(), client.receive, client.send))
        ahead = 0
        for _ in range(200):
            gate.release()
            await asyncio.sleep(0.002)
            ahead = max(ahead, produced[0] - len(client.body))
            if task.done():
                break
        while not task.done():
            gate.release()
            await asyncio.sleep(0)
        await task
        await asyncio.to_thread(app.shutdown)
        return ahead, len(client.body)

    ahead, sent = asyncio.run(main())
    assert sent == 64 * 65536
    assert ahead <= asgi.WINDOW + 2 * 65536


def closing_stream(record: list[str], delay: float = 0.02) -> Any:
    class Body:
        def __iter__(self) -> Iterator[bytes]:
            while True:
                yield b"tick\n"
                time.sleep(delay)

        def close(self) -> None:
            record.append("closed")

    def wsgi(environ: Environ, start_response: Any) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    return wsgi


def test_http_disconnect_closes_the_iterator_and_frees_the_worker() -> None:
    record: list[str] = []

    async def main() -> float:
        gone = asyncio.Event()
        client = Client(disconnect=gone)
        app = WSGIApp(closing_stream(record), threads=1)
        task = asyncio.create_task(app(make_scope(), client.receive, client.send))
        while len(client.sent) < 3:
            await asyncio.sleep(0.01)
        gone.set()
        start = time.monotonic()
        await asyncio.wait_for(task, 2)
        elapsed = time.monotonic() - start
        # the single worker is free again: a second request is answered
        second = Client()
        app.app = hello
        await asyncio.wait_for(app(make_scope(), second.receive, second.send), 2)
        assert second.body == b"hello"
        await asyncio.to_thread(app.shutdown)
        return elapsed

    elapsed = asyncio.run(main())
    assert record == ["closed"]
    assert elapsed < 1


def test_failing_send_closes_the_iterator() -> None:
    record: list[str] = []
    client = Client(send_error=OSError("connection reset"))
    run(WSGIApp(closing_stream(record, delay=0)), make_scope(), client)
    assert record == ["closed"]


def test_cancelled_request_frees_the_worker() -> None:
    record: list[str] = []

    async def main() -> None:
        client = Client()
        app = WSGIApp(closing_stream(record))
        task = asyncio.create_task(app(make_scope(), client.receive, client.send))
        while len(client.sent) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.to_thread(app.shutdown)  # returns only once the worker is done

    asyncio.run(main())
    assert record == ["closed"]


# ---- threads, lifespan, websocket ----------------------------------------------------------


def test_thread_pool_bounds_concurrency() -> None:
    running = [0, 0]  # now, peak
    lock = threading.Lock()

    def slow(environ: Environ, start_response: Any) -> list[bytes]:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        start_response("200 OK", [])
        return [b"."]

    async def main() -> list[bytes]:
        app = WSGIApp(slow, threads=3)
        clients = [Client() for _ in range(9)]
        await asyncio.gather(*(app(make_scope(), c.receive, c.send) for c in clients))
        await asyncio.to_thread(app.shutdown)
        return [c.body for c in clients]

    assert asyncio.run(main()) == [b"."] * 9
    assert running[1] == 3


def test_threads_option_is_validated() -> None:
    with pytest.raises(ValueError, match="threads"):
        WSGIApp(hello, threads=0)
    assert WSGIApp(hello).threads == asgi.DEFAULT_THREADS


def test_a_new_event_loop_gets_its_own_workers() -> None:
    app = WSGIApp(hello)
    pools = []
    for _ in range(2):

        async def once() -> bytes:
            client = Client()
            await app(make_scope(), client.receive, client.send)
            pools.append(app._pools[asyncio.get_running_loop()])
            return client.body

        assert asyncio.run(once()) == b"hello"
    assert pools[0] is not pools[1]
    assert list(app._pools.values()) == [pools[1]]  # the closed loop's pool was let go
    app.shutdown()
    assert app._pools == {}


def test_event_loops_in_two_threads_each_get_workers() -> None:
    app = WSGIApp(hello, threads=2)
    bodies: list[bytes] = []

    def serve_in_a_thread() -> None:
        async def many() -> None:
            for _ in range(20):
                client = Client()
                await app(make_scope(), client.receive, client.send)
                bodies.append(client.body)

        asyncio.run(many())

    threads = [threading.Thread(target=serve_in_a_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert bodies == [b"hello"] * 40
    app.shutdown()


def lifespan(app: WSGIApp, *events: str) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue = [{"type": f"lifespan.{e}"} for e in events]

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    return sent


def test_lifespan_runs_hooks_and_stops_the_workers() -> None:
    calls: list[str] = []
    app = WSGIApp(
        hello,
        on_startup=[lambda: calls.append("up")],
        on_shutdown=[lambda: calls.append("down")],
    )
    sent = lifespan(app, "startup", "shutdown")
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert calls == ["up", "down"]
    assert app._pools == {}


def test_lifespan_startup_failure_is_reported() -> None:
    def fail() -> None:
        raise RuntimeError("no database")

    sent = lifespan(WSGIApp(hello, on_startup=[fail]), "startup")
    assert sent[0]["type"] == "lifespan.startup.failed"
    assert "no database" in sent[0]["message"]


def test_websocket_is_refused_cleanly() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(WSGIApp(hello)({"type": "websocket", "path": "/"}, receive, send))
    assert sent == [{"type": "websocket.close", "code": 1000}]


def test_unknown_scope_type_raises() -> None:
    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(message: dict[str, Any]) -> None:
        pass

    with pytest.raises(ValueError, match="cannot serve"):
        asyncio.run(WSGIApp(hello)({"type": "telepathy"}, nothing, ignore))


def test_app_giving_up_on_a_short_body_ends_the_request_quietly() -> None:
    def strict(environ: Environ, start_response: Any) -> list[bytes]:
        environ["wsgi.input"].read()  # raises ClientDisconnected: 3 of 10 bytes
        start_response("200 OK", [])
        return [b"unreachable"]

    scope = make_scope(method="POST", headers=[(b"content-length", b"10")])
    client = run(WSGIApp(strict), scope, Client([b"abc"]))  # no ApplicationError
    assert client.sent == []


def test_check_probe_matches_the_direct_call() -> None:
    from wsgigate.check import ProbeRequest, check

    def app(environ: Environ, start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response("200 OK", [("Content-Type", "text/plain")])
        query = environ["QUERY_STRING"].encode()
        return [environ["PATH_INFO"].encode("latin-1"), b"|", query, body]

    request = ProbeRequest("POST", "/caf%C3%A9/%FF", "a=1&a=2", [("X-Y", "z")], b"data")
    rows = {row.gateway: row for row in check(app, request)}
    assert rows["asgi"].ok, rows["asgi"].reason
    from wsgigate.asgi.probe import probe

    response = probe(app, request)
    assert response.status == "200 OK"
    assert response.body == b"/caf\xc3\xa9/\xff|a=1&a=2data"


def test_body_read_after_the_loop_closed_is_a_disconnect() -> None:
    loop = asyncio.new_event_loop()
    loop.close()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    channel = asgi._Channel(loop, receive, body_done=False)
    with pytest.raises(ClientDisconnected, match="server stopped"):
        channel.read_message()
    with pytest.raises(ClientDisconnected):
        channel.write(b"x")  # waking a closed loop marks the client gone
        channel.write(b"y")


def test_upload_is_read_one_message_ahead_at_most() -> None:
    pulled: list[int] = []

    def counting(environ: Environ, start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        for _ in range(5):
            stream.read(100)
            pulled.append(client.received)
        start_response("200 OK", [])
        return [b""]

    client = Client([b"x" * 100] * 50)
    run(WSGIApp(counting), make_scope(method="POST"), client)
    # message 1 comes with the request; reading message k asks for message k + 1 ahead (the loop
    # may not have run that receive() yet when the app looks): never more than one ahead
    assert all(k + 1 <= count <= k + 2 for k, count in enumerate(pulled))
    assert client.received in (5, 6)


# ---- wsgi.file_wrapper and http.response.pathsend ------------------------------------------


class UnreadableFile(io.FileIO):
    """A real file whose contents the bridge must not read when the server sends it by path."""

    def read(self, size: int = -1, /) -> bytes:
        raise AssertionError("the worker read a file the server was to send")


def file_app(path: str, *, length: bool = False, opener: Any = open) -> Any:
    def wsgi(environ: Environ, start_response: Any) -> Any:
        headers = [("Content-Type", "application/octet-stream")]
        if length:
            headers.append(("Content-Length", str(os.path.getsize(path))))
        start_response("200 OK", headers)
        return environ["wsgi.file_wrapper"](opener(path, "rb"), 4096)

    return wsgi


PATHSEND = {"http.response.pathsend": {}}


def test_file_is_sent_by_path_when_the_server_offers_pathsend(tmp_path: Path) -> None:
    data = os.urandom(10000)
    target = tmp_path / "blob.bin"
    target.write_bytes(data)
    for length in (False, True):  # with the app's own Content-Length too (Flask's send_file)
        unreadable = file_app(str(target), length=length, opener=lambda p, m: UnreadableFile(p))
        client = run(WSGIApp(unreadable), make_scope(extensions=PATHSEND), Client())
        assert client.status == 200
        assert [v for n, v in client.headers if n == b"content-length"] == [b"10000"]
        assert client.sent[1:] == [{"type": "http.response.pathsend", "path": str(target)}]


def test_file_with_a_wrong_content_length_is_not_sent_by_path(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    target.write_bytes(b"x" * 100)

    def wrong_length(environ: Environ, start_response: Any) -> Any:
        start_response("200 OK", [("Content-Length", "50")])
        return environ["wsgi.file_wrapper"](open(target, "rb"))  # noqa: SIM115

    client = run(WSGIApp(wrong_length), make_scope(extensions=PATHSEND), Client())
    assert all(m["type"] != "http.response.pathsend" for m in client.sent)
    assert client.body == b"x" * 50  # the core's Content-Length rule: truncated to what it said


def test_file_is_streamed_when_pathsend_is_not_offered_or_not_possible(tmp_path: Path) -> None:
    data = os.urandom(10000)
    target = tmp_path / "blob.bin"
    target.write_bytes(data)
    cases = [
        (make_scope(), {}),  # no extension
        (make_scope(method="HEAD", extensions=PATHSEND), {}),
    ]
    for scope, options in cases:
        client = run(WSGIApp(file_app(str(target), **options)), scope, Client())
        assert client.body == data, (scope["method"], options)
        assert all(m["type"] != "http.response.pathsend" for m in client.sent)

    def seeked(path: str, mode: str) -> Any:
        handle = open(path, mode)  # noqa: SIM115 (the wrapper closes it)
        handle.seek(10)
        return handle

    client = run(
        WSGIApp(file_app(str(target), opener=seeked)), make_scope(extensions=PATHSEND), Client()
    )
    assert client.body == data[10:]  # not the whole file: read by the worker


def test_pathsend_closes_the_applications_file(tmp_path: Path) -> None:
    target = tmp_path / "blob.bin"
    target.write_bytes(b"x" * 100)
    opened: list[Any] = []

    def opener(path: str, mode: str) -> Any:
        opened.append(open(path, mode))  # noqa: SIM115 (closed by the wrapper)
        return opened[-1]

    client = run(
        WSGIApp(file_app(str(target), opener=opener)), make_scope(extensions=PATHSEND), Client()
    )
    assert client.sent[-1]["type"] == "http.response.pathsend"
    assert opened[0].closed
