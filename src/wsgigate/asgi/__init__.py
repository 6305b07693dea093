"""Run a WSGI application as an ASGI 3 application: ``WSGIApp(app)`` under uvicorn, hypercorn...

One request takes this path::

    event loop                                   worker thread (bounded pool, one per loop)
    ──────────                                   ─────────────
    scope -> CGI meta-variables
    first receive() (a GET's whole body)
    submit ─────────────────────────────────────> build_environ + run_app(app, environ, channel)
                                                   wsgi.input.read() ──> receive() on the loop
                                                   write(chunk): queue it, wake the loop once,
    send(start), send(body chunks) <── wake ────   wait only while the queue is over its window
                                                   finish(last) + close(): end, wake the loop
    send(last chunk, more_body=False)

A response whose body is a list (the common case) costs two hand-overs: one to the worker and one
back, carrying head, body and the end of the request together. Streamed bodies are queued up to
:data:`WINDOW` bytes: the worker runs ahead of the client by that much and no more, so a slow
client never makes the server hold a whole body (backpressure), and the request body is pulled
from ``receive()`` as the app reads it, one message ahead. ``http.disconnect`` (or a ``send``
that fails) makes the app's next ``write`` raise, the core closes the app's iterable and the
worker is free.

Only the standard library is imported here; servers are imported by the command line alone.
"""

from __future__ import annotations

import asyncio
import io
import threading
from concurrent.futures import Future as ConcurrentFuture
from queue import SimpleQueue

from wsgigate.core import (
    ErrorStream,
    FileWrapper,
    InputStream,
    build_environ,
    content_length,
    run_app,
    unicode_to_wsgi,
    unquote_to_wsgi,
)
from wsgigate.errors import ApplicationError, ClientDisconnected, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, MutableMapping
    from typing import Any
    from wsgiref.types import WSGIApplication

    from wsgigate.core import Outcome

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]

__all__ = ["WSGIApp", "DEFAULT_THREADS", "WINDOW", "environ_meta"]

DEFAULT_THREADS = 16
"""Worker threads per event loop: WSGI apps block on databases and files, so more than cores."""

WINDOW = 256 * 1024
"""Response bytes a worker may queue ahead of the client before it waits (per request)."""

_POLL = 1.0  # seconds between checks that the event loop still runs, while a worker waits

_SPECIAL_HEADERS = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
_header_keys: dict[bytes, str] = {}  # b"user-agent" -> "HTTP_USER_AGENT", bounded cache
_HEADER_KEYS_MAX = 512


def _header_key(name: bytes) -> str | None:
    """CGI name of an ASGI header name; ``None`` for names CGI cannot tell apart (``a_b``)."""
    key = _header_keys.get(name)
    if key is not None:
        return key
    text = name.decode("latin-1").lower()
    if "_" in text:
        # X-Forwarded_For and X-Forwarded-For would both become HTTP_X_FORWARDED_FOR: a client
        # could spoof what a front end set. nginx, Apache and gunicorn drop such headers too.
        return None
    key = _SPECIAL_HEADERS.get(text) or "HTTP_" + text.upper().replace("-", "_")
    if len(_header_keys) < _HEADER_KEYS_MAX:
        _header_keys[name] = key
    return key


def _without_root(path: str, root: str) -> str:
    """``path`` minus the mount point ``root`` when ``path`` lies under it (segment-wise)."""
    if root and path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
        return path[len(root) :]
    return path


def environ_meta(scope: Scope) -> dict[str, str]:
    """CGI meta-variables (PEP 3333 native strings) for an ASGI ``http`` scope; pure.

    ``root_path`` becomes SCRIPT_NAME; PATH_INFO comes from ``raw_path`` percent-decoded to bytes
    (so ``%2F`` and non-UTF-8 bytes reach the app as sent), else from ``path``, in both cases
    without the ``root_path`` prefix that ASGI servers now include. Repeated headers are joined
    with ``", "`` (RFC 9110 section 5.3), cookies with ``"; "`` (RFC 6265 section 5.4).
    """
    root = unicode_to_wsgi(scope.get("root_path", ""))
    raw_path = scope.get("raw_path")
    if raw_path:
        path = unquote_to_wsgi(raw_path.partition(b"?")[0].decode("latin-1"))
    else:
        path = unicode_to_wsgi(scope.get("path", ""))
    query = scope.get("query_string", b"")
    meta = {
        "REQUEST_METHOD": scope.get("method", "GET"),
        "SCRIPT_NAME": root,
        "PATH_INFO": _without_root(path, root),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_PROTOCOL": "HTTP/" + scope.get("http_version", "1.1"),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "wsgigate",
    }
    meta["REQUEST_URI"] = (raw_path.decode("latin-1") if raw_path else path) + (
        "?" + meta["QUERY_STRING"] if query else ""
    )
    server = scope.get("server")
    if server and server[1] is not None:
        meta["SERVER_NAME"] = str(server[0])
        meta["SERVER_PORT"] = str(server[1])
    client = scope.get("client")
    if client:
        meta["REMOTE_ADDR"] = str(client[0])
        meta["REMOTE_PORT"] = str(client[1])
    if scope.get("scheme") in ("https", "wss"):
        meta["HTTPS"] = "on"
    for raw_name, raw_value in scope.get("headers", ()):
        key = _header_key(bytes(raw_name))
        if key is None:
            continue
        value = bytes(raw_value).decode("latin-1")
        if key in meta:
            meta[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
        else:
            meta[key] = value
    return meta


class _Channel:
    """One request between the event loop and its worker; the worker's ``ResponseWriter``.

    The worker appends to ``chunks`` under ``lock`` and wakes the loop once per batch (the
    ``signalled`` flag); the loop takes the whole batch, sends it, and takes its size off
    ``queued``, waking the worker (``space``) if it waits for room in the window. ``gone`` means
    the client went away: the worker's next write raises.
    """

    __slots__ = (
        "loop",
        "receive",
        "lock",
        "space",
        "chunks",
        "queued",
        "head",
        "last",
        "ended",
        "outcome",
        "gone",
        "signalled",
        "waiter",
        "body_done",
        "ahead",
        "pathsend",
        "hops",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, receive: Receive, body_done: bool) -> None:
        self.loop = loop
        self.receive = receive
        self.lock = threading.Lock()
        self.space: threading.Event | None = None  # created when a worker first waits for room
        self.chunks: list[bytes] = []
        self.queued = 0
        self.head: tuple[str, list[tuple[str, str]]] | None = None
        self.last = False  # finish() was called: the final chunk is queued
        self.ended = False  # the worker is done with the request (close() called)
        self.outcome: Outcome | None = None
        self.gone = False
        self.signalled = False
        self.waiter: asyncio.Future[None] | None = None
        self.body_done = body_done  # receive() has reported more_body=False
        self.ahead: ConcurrentFuture[Message] | None = None  # the next body message, asked for
        self.pathsend: tuple[str, int] | None = None  # (path, size): the server sends the file
        self.hops = 0  # worker -> loop hand-overs (for tests and profiling)

    # ---- worker side: ResponseWriter ---------------------------------------------------------

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.head = (status, headers)  # leaves with the first chunk

    def send_file(self, wrapper: FileWrapper, length: int | None) -> int | None:
        """The core offers the app's file: have the server send a whole regular file from its
        path (``http.response.pathsend``) instead of the worker reading it."""
        if type(wrapper) is not PathFileWrapper:  # the server does not offer pathsend
            return None
        target = _whole_file(wrapper)
        if target is None or (length is not None and length != target[1]):
            return None
        self.pathsend = target
        return target[1]

    def write(self, data: bytes) -> None:
        with self.lock:
            if self.gone:
                raise ClientDisconnected("client disconnected")
            self.chunks.append(data)
            self.queued += len(data)
            wake = not self.signalled
            self.signalled = True
        if wake:
            self._signal()
        while True:
            with self.lock:
                if self.gone:
                    raise ClientDisconnected("client disconnected")
                if self.queued < WINDOW:
                    return
                space = self.space
                if space is None:
                    space = self.space = threading.Event()
                space.clear()
            if not space.wait(_POLL) and self.loop.is_closed():
                self.disconnected()

    def finish(self, data: bytes) -> None:
        with self.lock:
            if self.gone:
                raise ClientDisconnected("client disconnected")
            self.chunks.append(data)
            self.last = True  # no wake: end() follows right after close(), with one wake for both

    def end(self, outcome: Outcome | None) -> None:
        with self.lock:
            self.outcome = outcome
            self.ended = True
            wake = not self.signalled
            self.signalled = True
        if wake:
            self._signal()

    def _signal(self) -> None:
        self.hops += 1
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop is closed: nobody will ever send this response
            self.disconnected()

    def _wake(self) -> None:  # on the loop
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _ask(self) -> ConcurrentFuture[Message]:
        """Have the loop call ``receive()`` for the next body message (worker side)."""
        self.hops += 1
        pull = _receive(self.receive)
        try:
            return asyncio.run_coroutine_threadsafe(pull, self.loop)
        except RuntimeError:  # the loop is closed: the server is gone
            pull.close()
            raise ClientDisconnected("server stopped while reading the body") from None

    def read_message(self) -> tuple[bytes, bool]:
        """The next request body message (worker side): ``(body, more)``.

        One message is asked for ahead, while the app works on this one: the loop receives
        while the worker reads, and the server still holds all but one message (backpressure).
        """
        if self.gone:
            raise ClientDisconnected("client disconnected")
        future, self.ahead = self.ahead or self._ask(), None
        while True:
            try:
                message = future.result(_POLL)
                break
            except TimeoutError:
                if self.loop.is_closed() or self.gone:
                    future.cancel()
                    raise ClientDisconnected("server stopped while reading the body") from None
            except BaseException as exc:  # cancelled (server shutdown) or receive() failed
                raise ClientDisconnected(f"receive() failed: {exc!r}") from exc
        if message.get("type") != "http.request":
            self.disconnected()
            raise ClientDisconnected("client disconnected while sending the body")
        more = bool(message.get("more_body", False))
        if more and not self.gone:
            self.ahead = self._ask()
        else:
            self.body_done = True
        return bytes(message.get("body", b"")), more

    def forget_ahead(self) -> None:
        """Drop a body message asked for that the app will never read (the request is over)."""
        ahead, self.ahead = self.ahead, None
        if ahead is not None:
            ahead.cancel()

    def disconnected(self) -> None:
        """The client is gone (loop side): release a waiting worker; its next write raises."""
        with self.lock:
            self.gone = True
            if self.space is not None:
                self.space.set()

    # ---- loop side ---------------------------------------------------------------------------

    async def pump(self, send: Send) -> None:
        """Send what the worker queues until it has ended; raise if the response was cut off."""
        loop = self.loop
        started = False
        watcher: asyncio.Task[None] | None = None
        try:
            while True:
                with self.lock:
                    chunks, self.chunks = self.chunks, []
                    ended, last, gone = self.ended, self.last, self.gone
                    waiter = None
                    if not chunks and not ended:
                        self.signalled = False
                        waiter = self.waiter = loop.create_future()
                if waiter is not None:
                    if watcher is None and started and self.body_done and not gone:
                        watcher = loop.create_task(self._watch())
                    if watcher is None or watcher.done():
                        await waiter
                    else:
                        await asyncio.wait((waiter, watcher), return_when=asyncio.FIRST_COMPLETED)
                    continue
                if chunks and not gone:
                    size = sum(map(len, chunks))
                    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    try:
                        if not started:
                            status, headers = self.head  # type: ignore[misc]
                            fields = [
                                # Django's Set-Cookie values start with a space; h11
                                # (uvicorn without httptools) refuses a value that does
                                (n.lower().encode("latin-1"), v.strip(" \t").encode("latin-1"))
                                for n, v in headers
                            ]
                            if self.pathsend is not None and all(
                                name != b"content-length" for name, _ in fields
                            ):
                                fields.append((b"content-length", b"%d" % self.pathsend[1]))
                            await send(
                                {
                                    "type": "http.response.start",
                                    "status": int(status[:3]),
                                    "headers": fields,
                                }
                            )
                            started = True
                        if last and self.pathsend is not None:
                            await send({"type": "http.response.pathsend", "path": self.pathsend[0]})
                        elif body or last:
                            await send(
                                {"type": "http.response.body", "body": body, "more_body": not last}
                            )
                    except OSError:  # some servers raise once the client is gone
                        self.disconnected()
                    with self.lock:
                        self.queued -= size
                        if self.space is not None:
                            self.space.set()
                if ended:
                    outcome = self.outcome
                    if last or self.gone or (outcome is not None and outcome.disconnected):
                        return
                    raise ApplicationError("response cut off: the application failed mid-response")
        except BaseException:
            self.disconnected()  # cancelled (server shutdown) or a send failed: free the worker
            raise
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _watch(self) -> None:
        """Wait for ``http.disconnect`` while a streamed response is on its way."""
        try:
            while (await self.receive()).get("type") != "http.disconnect":
                pass
        except Exception:  # a receive() that fails: the client is as good as gone
            pass
        self.disconnected()


async def _receive(receive: Receive) -> Message:
    return await receive()  # run_coroutine_threadsafe wants a coroutine; receive() may not be one


class _BodyReader:
    """The raw stream under ``wsgi.input``: body messages pulled from ``receive()`` on demand."""

    __slots__ = ("channel", "data", "pos", "more")

    def __init__(self, channel: _Channel, first: bytes, more: bool) -> None:
        self.channel = channel
        self.data = first
        self.pos = 0
        self.more = more

    def read(self, size: int = -1, /) -> bytes:
        while self.pos >= len(self.data):
            if not self.more:
                return b""
            self.data, self.more = self.channel.read_message()
            self.pos = 0
        if size < 0 or size >= len(self.data) - self.pos:
            data = self.data[self.pos :] if self.pos else self.data
            self.data, self.pos = b"", 0
            return data
        end = self.pos + size
        data = self.data[self.pos : end]
        self.pos = end
        return data


class _Workers:
    """A pool of at most ``size`` threads running ``(function, args)`` items from one queue.

    Lighter than ``ThreadPoolExecutor`` (no future per item: the channel reports back). Threads
    start on demand; ``idle`` counts the ones waiting that no queued item has claimed yet.
    Daemon threads, so a server that stops without a lifespan shutdown still exits.
    """

    __slots__ = ("size", "queue", "threads", "idle", "lock")

    def __init__(self, size: int) -> None:
        self.size = size
        self.queue: SimpleQueue[tuple[Callable[..., object], tuple[Any, ...]] | None] = (
            SimpleQueue()
        )
        self.threads: list[threading.Thread] = []
        self.idle = 0
        self.lock = threading.Lock()

    def submit(self, function: Callable[..., object], *args: Any) -> None:
        with self.lock:
            if self.idle:
                self.idle -= 1
            elif len(self.threads) < self.size:
                thread = threading.Thread(
                    target=self._work, name=f"wsgigate-asgi-{len(self.threads)}", daemon=True
                )
                self.threads.append(thread)
                thread.start()
        self.queue.put((function, args))

    def _work(self) -> None:
        get, lock = self.queue.get, self.lock
        while True:
            item = get()
            if item is None:
                return
            function, args = item
            try:
                function(*args)
            except BaseException as exc:  # run_app catches app errors; this is our own bug
                _log_error("wsgigate.asgi worker failed", exc)
            del item, function, args
            with lock:
                self.idle += 1

    def stop(self) -> None:
        """Have every thread end once the items queued before are done."""
        for _ in self.threads:
            self.queue.put(None)

    def shutdown(self) -> None:
        """Let the running items finish, then stop every thread and wait for them."""
        self.stop()
        for thread in self.threads:
            if thread is not threading.current_thread():
                thread.join()
        self.threads.clear()


def _log_error(message: str, exc: BaseException) -> None:
    import logging

    logging.getLogger("wsgigate.error").error("%s", message, exc_info=exc)


class WSGIApp:
    """An ASGI 3 application that runs the WSGI application ``app`` in a pool of threads.

    ``threads``: worker threads per event loop (default :data:`DEFAULT_THREADS`); requests beyond
    that wait for a free worker. ``on_startup`` / ``on_shutdown``: callables run (in a thread)
    when the server sends the lifespan events. ``debug=True`` shows tracebacks in 500 responses.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        threads: int = DEFAULT_THREADS,
        debug: bool = False,
        on_startup: Iterable[Callable[[], object]] = (),
        on_shutdown: Iterable[Callable[[], object]] = (),
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        self.app = app
        self.threads = threads
        self.debug = debug
        self.on_startup = list(on_startup)
        self.on_shutdown = list(on_shutdown)
        self._pools: dict[asyncio.AbstractEventLoop, _Workers] = {}  # one per event loop
        self._pools_lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1000})  # before accept: HTTP 403
        else:
            raise ValueError(f"wsgigate.asgi.WSGIApp cannot serve {kind!r} scopes")

    def _workers_for(self, loop: asyncio.AbstractEventLoop) -> _Workers:
        workers = self._pools.get(loop)
        if workers is None:
            with self._pools_lock:
                for old in [old for old in self._pools if old.is_closed()]:
                    self._pools.pop(old).stop()  # a restarted server, tests: let them end
                workers = self._pools.setdefault(loop, _Workers(self.threads))
        return workers

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        workers = self._workers_for(loop)
        message = await receive()  # without a body the whole request is here: no hop to read it
        if message.get("type") != "http.request":
            return  # http.disconnect before we started
        first = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        meta = environ_meta(scope)
        try:
            length = content_length(meta)
        except ProtocolError as exc:
            await _plain_response(send, exc.status_hint, str(exc))
            return
        channel = _Channel(loop, receive, body_done=not more)
        raw = _BodyReader(channel, first, more) if more else io.BytesIO(first)
        environ = build_environ(
            meta,
            stdin=InputStream(raw, length),
            errors=ErrorStream(),
            multithread=True,
            multiprocess=True,
            run_once=False,
            url_scheme="https" if meta.get("HTTPS") else "http",
        )
        environ["asgi.scope"] = scope
        if "http.response.pathsend" in (scope.get("extensions") or ()):
            environ["wsgi.file_wrapper"] = PathFileWrapper
        channel.waiter = loop.create_future()
        workers.submit(self._run, environ, channel)
        try:
            await channel.pump(send)
        finally:
            channel.forget_ahead()

    def _run(self, environ: dict[str, Any], channel: _Channel) -> None:
        outcome = None
        try:
            outcome = run_app(self.app, environ, channel, debug=self.debug)
        finally:
            channel.end(outcome)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            kind = message.get("type")
            if kind == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        await asyncio.to_thread(hook)
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif kind == "lifespan.shutdown":
                try:
                    for hook in self.on_shutdown:
                        await asyncio.to_thread(hook)
                    await asyncio.to_thread(self.shutdown, asyncio.get_running_loop())
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return

    def shutdown(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Wait for running requests, then stop the worker threads of ``loop`` (default: all).

        The lifespan shutdown calls this for its own loop; a later request starts new workers.
        """
        with self._pools_lock:
            if loop is None:
                pools = list(self._pools.values())
                self._pools.clear()
            else:
                pool = self._pools.pop(loop, None)
                pools = [pool] if pool is not None else []
        for workers in pools:
            workers.shutdown()


class PathFileWrapper(FileWrapper):
    """``wsgi.file_wrapper`` when the server offers ``http.response.pathsend``: the core offers
    it to :meth:`_Channel.send_file`, and it iterates like the core's wrapper wherever the file
    cannot be sent by path."""

    __slots__ = ()


def _whole_file(wrapper: FileWrapper) -> tuple[str, int] | None:
    """``(absolute path, size)`` of a regular file read from its start, else ``None``."""
    import os
    import stat

    filelike = wrapper.filelike
    name = getattr(filelike, "name", None)
    if not isinstance(name, str) or not os.path.isabs(name):
        return None
    try:
        if filelike.tell() != 0:
            return None
        info = os.fstat(filelike.fileno())
        if not stat.S_ISREG(info.st_mode) or os.stat(name).st_ino != info.st_ino:
            return None  # not a plain file, or the name now points elsewhere
    except (AttributeError, OSError, ValueError):
        return None
    return name, info.st_size


async def _plain_response(send: Send, status: int, text: str) -> None:
    body = (text + "\n").encode("utf-8", "replace")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
