"""The FastCGI server: the sans-I/O codec on the shared server runtime, requests through the core.

Per connection (one pool thread while it has requests ready, parked between them)::

    bytes ─> FastCGIConnection ─> BeginRequest, Params ─> meta (latin-1 native strings)
          ─> fix_script_name() ─> core.build_environ(stdin=InputStream over the STDIN stream)
          ─> core.run_app(writer) ─> STDOUT records (head + first chunk together) ─> END_REQUEST

The request body is not buffered: ``wsgi.input`` reads pull STDIN records off the socket on
the app's thread as the app asks for them. ``CONTENT_LENGTH`` bounds the body when present;
without it (nginx ``fastcgi_request_buffering off`` with a chunked upload) the body ends with
the empty STDIN record. ``FCGI_KEEP_CONN`` is honoured: a kept connection waits for the next
request (unread STDIN of the last one is dropped by the codec), otherwise the connection is
closed after a lingering drain of unread STDIN (an early close makes mod_proxy_fcgi see
resets). ABORT_REQUEST closes the app's iterator. Malformed records close that connection with
one log line; the worker keeps serving.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from collections import deque

from wsgigate.core import (
    ErrorStream,
    InputStream,
    build_environ,
    cgi_response_head,
    content_length,
    run_app,
    unquote_to_wsgi,
)
from wsgigate.errors import ClientDisconnected, ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols.fastcgi import (
    AUTHORIZER,
    FILTER,
    HEADER,
    OVERLOADED,
    RESPONDER,
    UNKNOWN_TYPE,
    VERSION,
    AbortRequest,
    BeginRequest,
    Data,
    DataEnd,
    FastCGIConnection,
    Params,
    RequestError,
    Stdin,
    StdinEnd,
)
from wsgigate.server import (
    OVERLOADED_ANSWER,
    Connection,
    ConnectionHandler,
    ServerConfig,
    linger,
    recv_body,
    run_server,
    send_closing,
)
from wsgigate.server.headwait import head_timeout, recv_head

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import MutableMapping
    from typing import Any
    from wsgiref.types import WSGIApplication

__all__ = ["FastCGIHandler", "add_arguments", "fix_script_name", "main", "serve"]

log = logging.getLogger("wsgigate.error")

DEFAULT_BIND = "127.0.0.1:9000"  # PHP-FPM's default
RECV_SIZE = 65536  # a larger recv() buffer is mmap()ed per call: ~17 µs more per recv
PENDING_INPUT_LIMIT = 1 << 20  # body bytes buffered while checking for ABORT_REQUEST
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 << 20
ROLE_NAMES = {RESPONDER: "RESPONDER", AUTHORIZER: "AUTHORIZER", FILTER: "FILTER"}
# A record after the last END_REQUEST, in the same write: nginx keeps a connection for reuse only
# when END_REQUEST ends what it read, so this one is closed instead of pooled. Sent when a
# stopping worker closes a kept unix-socket connection (over TCP the FIN travels with the
# answer). A management record (request id 0) of type UNKNOWN_TYPE: valid FastCGI, answering
# nothing in particular, never read by a web server that is done with the connection.
_NOT_FOR_REUSE = HEADER.pack(VERSION, UNKNOWN_TYPE, 0, 8, 0) + bytes(8)


def fix_script_name(meta: MutableMapping[str, str], script_name: str | None = None) -> None:
    """Split the request path into SCRIPT_NAME and PATH_INFO the way the app is mounted.

    nginx's stock ``fastcgi_params`` send ``SCRIPT_NAME=$fastcgi_script_name`` (the whole path)
    and no PATH_INFO; Apache mod_proxy_fcgi and lighttpd without ``fix-root-scriptname`` do the
    same. An app mounted at ``/`` (``script_name`` None) then gets SCRIPT_NAME ``""`` and
    PATH_INFO the whole path. A front end that already splits (``fastcgi_split_path_info``
    with a non-empty PATH_INFO) is trusted. With ``script_name`` (``--script-name /app``) the
    whole path is split at that mount point; ``"/"`` re-joins any split the front end made
    (lighttpd without fix-root-scriptname cuts ``/a/b`` into ``/a`` + ``/b``). Without
    SCRIPT_NAME and PATH_INFO, the path of REQUEST_URI is used.
    """
    path_info = meta.get("PATH_INFO", "")
    script = meta.get("SCRIPT_NAME", "")
    if script_name is None:
        if path_info:
            return
        if not script:
            uri = meta.get("REQUEST_URI", "")
            script = unquote_to_wsgi(uri.partition("?")[0]) if uri else ""
        meta["SCRIPT_NAME"] = ""
        meta["PATH_INFO"] = script
        return
    mount = script_name.rstrip("/")
    path = script + path_info
    if not path:
        uri = meta.get("REQUEST_URI", "")
        path = unquote_to_wsgi(uri.partition("?")[0]) if uri else ""
    if path == mount or path.startswith(mount + "/"):
        meta["SCRIPT_NAME"] = mount
        meta["PATH_INFO"] = path[len(mount) :]
    else:  # outside the mount point: leave the path whole rather than invent one
        meta["SCRIPT_NAME"] = ""
        meta["PATH_INFO"] = path


class _Stream:
    """One input stream of a request (STDIN, or DATA for FILTER): raw reader for InputStream."""

    __slots__ = ("exchange", "chunks", "ended", "size")

    def __init__(self, exchange: _Exchange) -> None:
        self.exchange = exchange
        self.chunks: deque[bytes] = deque()
        self.ended = False
        self.size = 0

    def push(self, data: bytes) -> None:
        self.chunks.append(data)
        self.size += len(data)

    def read(self, size: int = -1, /) -> bytes:
        exchange = self.exchange
        while not self.chunks:
            if self.ended:
                return b""
            if exchange.aborted:
                raise ClientDisconnected("the web server aborted the request (ABORT_REQUEST)")
            if exchange.closed:
                raise ClientDisconnected("the web server closed the connection")
            exchange.pump(block=True)
        chunk = self.chunks.popleft()
        if 0 <= size < len(chunk):
            self.chunks.appendleft(chunk[size:])
            chunk = chunk[:size]
        self.size -= len(chunk)
        return chunk


class _Exchange:
    """One request on a connection: its input streams, the event pump and the response writer."""

    __slots__ = (
        "conn",
        "sock",
        "codec",
        "request_id",
        "role",
        "stdin",
        "data",
        "aborted",
        "closed",
        "head",
        "poller",
        "keep_conn",
        "closing",
    )

    def __init__(self, conn: Connection, codec: FastCGIConnection, begin: BeginRequest) -> None:
        self.conn = conn
        self.sock = conn.sock
        self.codec = codec
        self.request_id = begin.request_id
        self.role = begin.role
        self.stdin = _Stream(self)
        # FCGI_DATA comes only with the FILTER role (the codec refuses it otherwise)
        self.data = _Stream(self) if begin.role == FILTER else self.stdin
        self.aborted = False
        self.closed = False
        self.head = b""
        self.poller: select.poll | None = None
        self.keep_conn = begin.keep_conn
        self.closing = False  # the answer went with the end of stream: close, do not keep

    def _events(self) -> bool:
        """Dispatch the events already buffered; True if any concerned this request."""
        codec = self.codec
        progressed = False
        while True:
            event = codec.next_event()
            if event is NEED_DATA:
                return progressed
            progressed = True
            if isinstance(event, Stdin):
                self.stdin.push(event.data)
            elif isinstance(event, StdinEnd):
                self.stdin.ended = True
            elif isinstance(event, Data):
                self.data.push(event.data)
            elif isinstance(event, DataEnd):
                self.data.ended = True
            elif isinstance(event, AbortRequest):
                self.aborted = True
            elif isinstance(event, ConnectionClosed):
                self.closed = True
                return True
            else:  # a BeginRequest/Params of a multiplexed request: not asked for (MPXS_CONNS=0)
                raise ProtocolError(f"unexpected {type(event).__name__} while a request is active")

    def pump(self, block: bool) -> None:
        """Read what the web server sent (waiting for it if ``block``) and dispatch it."""
        if self._events() and block:
            return
        pending = self.codec.data_to_send()  # answers the codec made by itself
        if pending:
            self.sock.sendall(pending)
        if not block:
            if self.poller is None:
                self.poller = select.poll()
                self.poller.register(self.sock, select.POLLIN)
            if not self.poller.poll(0):
                return
        while not self.closed:
            data = recv_body(self.sock, RECV_SIZE)
            self.codec.receive_data(data)
            if self._events() or not block:
                return

    # -- the ResponseWriter the core calls ----------------------------------------------------

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.head = cgi_response_head(status, headers)

    def write(self, data: bytes) -> None:
        if self.head:
            data = self.head + data
            self.head = b""
        codec = self.codec
        codec.stdout(self.request_id, data)
        self.sock.sendall(codec.data_to_send())
        # Between chunks of a streamed response, notice ABORT_REQUEST (and a closed peer)
        # without waiting; a large unread upload is not buffered beyond a bound for this.
        if self.stdin.size < PENDING_INPUT_LIMIT:
            self.pump(block=False)
        if self.aborted:
            raise ClientDisconnected("the web server aborted the request (ABORT_REQUEST)")
        if self.closed:
            raise ClientDisconnected("the web server closed the connection")

    def finish(self, data: bytes) -> None:
        if self.head:
            data = self.head + data
            self.head = b""
        codec = self.codec
        # A kept connection closes after this answer too when the worker is stopping (one
        # request at a time per connection: nothing else can be on its way before the answer).
        closing = not self.keep_conn or self.conn.stopping
        if closing and not self.stdin.ended and self.stdin.size < PENDING_INPUT_LIMIT:
            # See whether the end of STDIN is already here (nginx sends it with the PARAMS),
            # so the lingering drain before the close is only done when needed.
            self._events()
            if not self.stdin.ended:
                self.pump(block=False)
        if data:
            codec.stdout(self.request_id, data)
        codec.end_request(self.request_id)
        if closing and self.keep_conn:
            # The web server would put this connection back in its pool: the close must reach
            # it with the answer, not after (see send_closing).
            send_closing(self.sock, codec.data_to_send(), _NOT_FOR_REUSE)
            self.closing = True
        else:
            self.sock.sendall(codec.data_to_send())


class FastCGIHandler(ConnectionHandler):
    """Serves FastCGI connections for one WSGI app (the runtime calls it from pool threads)."""

    name = "fastcgi"

    def __init__(
        self,
        app: WSGIApplication,
        config: ServerConfig,
        *,
        script_name: str | None = None,
        debug: bool = False,
    ) -> None:
        from wsgigate.server.status import with_operations

        self.app = with_operations(app, config)  # --status-path / --ping-path, when set
        self.script_name = script_name
        self.debug = debug
        self.forwarded = config.forwarded_scheme()  # --forwarded-allow-ips, or None
        self.multithread = config.threads > 1
        self.multiprocess = config.workers > 1
        self.max_conns = max(config.workers, 1) * max(config.threads, 1)
        self.head_timeout = head_timeout(config)

    def _codec(self) -> FastCGIConnection:
        return FastCGIConnection(max_conns=self.max_conns, max_reqs=1, multiplex=False)

    def handle(self, conn: Connection) -> bool:
        codec: FastCGIConnection = conn.state
        sock = conn.sock
        # Once this call has read something, a connection with no request under way and no
        # partial record goes back to the worker: what woke it may have been the trailing
        # empty STDIN record of the last request, and waiting here for the next request would
        # hold a --threads 0 worker (and the connections behind it) until one came.
        received = False
        head_by = 0.0  # the head's deadline, from its first read (server/headwait.py)
        try:
            if codec is None:  # a new connection: nothing buffered yet, read what woke us
                codec = conn.state = self._codec()
                codec.receive_data(sock.recv(RECV_SIZE))
                head_by = time.monotonic() + self.head_timeout
                received = True
            while True:
                try:
                    event = codec.next_event()
                except RequestError as exc:
                    self._refuse(conn, codec, exc)
                    continue
                if event is NEED_DATA:
                    pending = codec.data_to_send()
                    if pending:
                        sock.sendall(pending)
                    if codec.should_close:
                        return False
                    if received and not codec.buffered and not codec.active_requests:
                        return True  # kept: parked by the worker (closed once rested if stopping)
                    if head_by:
                        data = recv_head(sock, RECV_SIZE, head_by, self.head_timeout)
                    else:  # the first read finds what woke the worker: no deadline to set
                        data = sock.recv(RECV_SIZE)
                        head_by = time.monotonic() + self.head_timeout
                    codec.receive_data(data)
                    received = True
                    continue
                if isinstance(event, ConnectionClosed):
                    return False
                if isinstance(event, BeginRequest):
                    head_by = head_by or time.monotonic() + self.head_timeout
                    if not self._serve(conn, codec, event, head_by):
                        return False
                    received = True
                    head_by = 0.0
                    if codec.should_close:
                        return False
                    continue
                raise ProtocolError(f"{type(event).__name__} outside a request")
        except ProtocolError as exc:
            log.warning("fastcgi: closing the connection from %s: %s", _peer(conn), exc)
            return False
        except BlockingIOError:  # SO_RCVTIMEO/SO_SNDTIMEO, the socket's --timeout
            log.info("fastcgi: connection from %s timed out (--timeout)", _peer(conn))
            return False
        except (OSError, ClientDisconnected) as exc:
            log.info("fastcgi: connection from %s lost: %s", _peer(conn), exc)
            return False

    def _serve(
        self, conn: Connection, codec: FastCGIConnection, begin: BeginRequest, head_by: float
    ) -> bool:
        """Run one request; False when the connection must close (peer gone, response cut)."""
        exchange = _Exchange(conn, codec, begin)
        # Wait for the whole PARAMS stream (the codec collects it across records).
        while True:
            try:
                event = codec.next_event()
            except RequestError as exc:
                self._refuse(conn, codec, exc)
                return True
            if event is NEED_DATA:
                data = recv_head(conn.sock, RECV_SIZE, head_by, self.head_timeout)
                codec.receive_data(data)
                continue
            if isinstance(event, Params):
                break
            if isinstance(event, AbortRequest):
                codec.end_request(begin.request_id)
                conn.sock.sendall(codec.data_to_send())
                return True
            if isinstance(event, ConnectionClosed):
                return False
            raise ProtocolError(f"{type(event).__name__} before the PARAMS of request ended")
        meta = event.params
        started = conn.begin_request(meta)
        fix_script_name(meta, self.script_name)
        meta["FCGI_ROLE"] = ROLE_NAMES.get(begin.role, str(begin.role))
        try:
            length = content_length(meta)
        except ProtocolError as exc:
            self._answer(conn, codec, begin.request_id, exc.status_hint, str(exc))
            conn.end_request(meta, exc.status_hint, 0, started)
            return True
        if begin.role == AUTHORIZER:
            length = 0  # an authorizer gets the request head only (FastCGI 1.0 section 6.3)
        environ = build_environ(
            meta,
            stdin=InputStream(exchange.stdin, length),
            errors=ErrorStream(),
            multithread=self.multithread,
            multiprocess=self.multiprocess,
            run_once=False,
            url_scheme=self.forwarded(meta) if self.forwarded is not None else None,
        )
        if begin.role == FILTER:
            data_length = meta.get("FCGI_DATA_LENGTH", "")
            environ["wsgigate.fastcgi.data"] = InputStream(
                exchange.data, int(data_length) if data_length.isdigit() else None
            )
        outcome = run_app(self.app, environ, exchange, debug=self.debug)
        conn.end_request(environ, outcome.status, outcome.sent, started)
        if exchange.closed:
            return False
        if not outcome.complete:
            if outcome.disconnected and exchange.aborted:
                # ABORT_REQUEST: the web server still waits for our END_REQUEST.
                with contextlib.suppress(Exception):
                    codec.end_request(begin.request_id)
                conn.sock.sendall(codec.data_to_send())
                return True
            # The app failed mid-response, or the socket broke: no END_REQUEST, so the web
            # server knows the response is cut off.
            return False
        if codec.should_close or exchange.closing:
            self._linger(conn, exchange)  # unread STDIN, or the close resets the answer
        return not exchange.closing

    def _answer(
        self, conn: Connection, codec: FastCGIConnection, request_id: int, status: int, why: str
    ) -> None:
        reason = {400: "Bad Request", 431: "Request Header Fields Too Large"}.get(status, "Error")
        body = f"{status} {reason}\n".encode()
        head = cgi_response_head(
            f"{status} {reason}",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        log.warning("fastcgi: request %d from %s refused: %s", request_id, _peer(conn), why)
        codec.stdout(request_id, head + body)
        codec.end_request(request_id)
        conn.sock.sendall(codec.data_to_send())

    def _refuse(self, conn: Connection, codec: FastCGIConnection, exc: RequestError) -> None:
        self._answer(conn, codec, exc.request_id, exc.status_hint, str(exc))

    def _linger(self, conn: Connection, exchange: _Exchange) -> None:
        """Before a close: read (and drop) unread STDIN, briefly."""
        if not (exchange.stdin.ended or exchange.closed):
            linger(conn.sock, LINGER_SECONDS, LINGER_BYTES)

    def overloaded(self, conn: Connection) -> None:
        """Every thread busy, queue full: a 503 and END_REQUEST(FCGI_OVERLOADED), quickly."""
        sock = conn.sock
        codec = self._codec()
        deadline = time.monotonic() + 0.25
        request_id = 0
        with contextlib.suppress(OSError, ProtocolError):
            while not request_id and time.monotonic() < deadline:
                sock.settimeout(max(deadline - time.monotonic(), 0.01))
                data = sock.recv(RECV_SIZE)
                codec.receive_data(data)
                while (event := codec.next_event()) is not NEED_DATA:
                    if isinstance(event, BeginRequest):
                        request_id = event.request_id
                        break
                    if isinstance(event, ConnectionClosed):
                        return
                if not data:
                    return
            if not request_id:
                return
            codec.stdout(request_id, OVERLOADED_ANSWER)
            codec.end_request(request_id, protocol_status=OVERLOADED)
            sock.sendall(codec.data_to_send())
            linger(sock, 0.1)  # no reset before they read it
        log.warning(
            "fastcgi: all %d threads busy and the queue full: answered 503 (FCGI_OVERLOADED)",
            conn.worker.config.threads,
        )


def _peer(conn: Connection) -> str:
    return conn.peer_host or conn.listener.address


def serve(
    app: WSGIApplication,
    bind: str | list[str] | None = None,
    *,
    workers: int = 1,
    threads: int = 4,
    script_name: str | None = None,
    debug: bool = False,
    **options: Any,
) -> None:
    """Serve ``app`` over FastCGI until SIGTERM/SIGINT.

    ``bind``: one spec or a list (``HOST:PORT``, ``[::1]:PORT``, ``unix:/path[,MODE]``,
    ``fd://N``, ``systemd``); by default the sockets systemd or the parent (fd 0) passed, else
    127.0.0.1:9000. ``workers=0`` runs one process without an arbiter. Other options are the
    fields of :class:`wsgigate.server.ServerConfig` (``timeout``, ``graceful_timeout``,
    ``max_requests``, ``socket_mode``, ``access_log_format``...).
    """
    from wsgigate.server.config import config_from_options

    config = config_from_options(
        "fastcgi", DEFAULT_BIND, bind=bind, workers=workers, threads=threads, **options
    )
    run_server(FastCGIHandler(app, config, script_name=script_name, debug=debug), config)


# -- ``wsgigate fastcgi MODULE:APP`` (the entry in wsgigate.cli.COMMANDS calls these) -----------


def add_arguments(parser: argparse.ArgumentParser, default_bind: str = DEFAULT_BIND) -> None:
    """The command's options; ``wsgigate scgi`` shares them (with its own default address)."""
    from wsgigate.server.config import add_server_arguments

    parser.add_argument(
        "app", metavar="MODULE:APP", help="the WSGI app, e.g. myapp:app or app.py:app"
    )
    parser.add_argument(
        "--script-name",
        metavar="PATH",
        help="the app's mount point when the front end sends the whole path as SCRIPT_NAME "
        "(nginx's stock fastcgi_params); default: mounted at /",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show tracebacks to clients in 500 responses (never in production)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error", "critical"],
        help="least severe level logged to stderr (default: info)",
    )
    add_server_arguments(parser, default_bind)


def main(args: argparse.Namespace) -> int:
    import sys

    from wsgigate.loader import load_app
    from wsgigate.server.config import config_from_args, configure_access_log

    app = load_app(args.app)
    config = config_from_args(args, "fastcgi", DEFAULT_BIND)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    configure_access_log(args.access_logfile)
    handler = FastCGIHandler(app, config, script_name=args.script_name, debug=args.debug)
    run_server(handler, config)
    return 0
