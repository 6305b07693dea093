"""The SCGI server: the sans-I/O parser on the shared server runtime, requests through the core.

One request per connection (SCGI has no keep-alive)::

    bytes ─> SCGIParser ─> Request(headers: meta as latin-1 strings)
          ─> fix_apache_path_info(), fix_script_name() (SCRIPT_NAME / PATH_INFO per front end)
          ─> core.build_environ(stdin=InputStream bounded by CONTENT_LENGTH)
          ─> core.run_app(writer) ─> CGI head + first chunk in one send ─> close

The request body is not buffered: ``wsgi.input`` reads pull bytes off the socket on the app's
thread as the app asks, and never past ``CONTENT_LENGTH`` (the parser requires it), so
``wsgi.input.read()`` returns at the end of the body instead of waiting for an end of stream
that a web server never sends (flup's SCGI server hangs there). A malformed header (see
:mod:`wsgigate.protocols.scgi`) is answered ``400`` (``431`` when over ``max_header_size``) with
one log line, and the connection closed; the worker keeps serving. The end of the response is
the end of the connection: unread body bytes are drained briefly first, so that the web server
reads the whole response instead of a reset.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time

from wsgigate.core import (
    ErrorStream,
    InputStream,
    build_environ,
    cgi_response_head,
    run_app,
    unquote_to_wsgi,
)
from wsgigate.errors import ClientDisconnected, ConfigurationError, ProtocolError
from wsgigate.fastcgi.server import fix_script_name
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols.scgi import DEFAULT_MAX_HEADER_SIZE, Body, EndOfBody, Request, SCGIParser
from wsgigate.server import (
    OVERLOADED_ANSWER,
    Connection,
    ConnectionHandler,
    ServerConfig,
    linger,
    recv_body,
    run_server,
)
from wsgigate.server.headwait import head_timeout, recv_head

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any
    from wsgiref.types import WSGIApplication

__all__ = ["SCGIHandler", "add_arguments", "fix_apache_path_info", "main", "serve"]

log = logging.getLogger("wsgigate.error")

DEFAULT_BIND = "127.0.0.1:4000"  # the SCGI reference server's and flup's default port
RECV_SIZE = 65536  # a larger recv() buffer is mmap()ed per call (see fastcgi/server.py)
LINGER_SECONDS = 2.0
LINGER_BYTES = 64 << 20
REASONS = {400: "Bad Request", 431: "Request Header Fields Too Large"}


def fix_apache_path_info(meta: dict[str, str]) -> None:
    """Apache mod_proxy_scgi with ``proxy-scgi-pathinfo``: decode PATH_INFO, redo SCRIPT_NAME.

    Without the variable, Apache sends SCRIPT_NAME = the whole decoded path and no PATH_INFO,
    which :func:`~wsgigate.fastcgi.server.fix_script_name` splits like nginx's FastCGI params.
    With it (``SetEnvIf Request_URI . proxy-scgi-pathinfo``; Apache forwards the variable
    itself, which is how it is recognised), Apache 2.4 sends PATH_INFO = the path after the
    ProxyPass prefix still percent-encoded, and SCRIPT_NAME = the decoded path shortened by the
    length of that encoded PATH_INFO: ``/x%20y/z`` arrives as SCRIPT_NAME ``/x y``, PATH_INFO
    ``/x%20y/z``. PATH_INFO is decoded here and SCRIPT_NAME recomputed from REQUEST_URI, so the
    app sees the same split with the variable as without it.
    """
    if "proxy-scgi-pathinfo" not in meta or "PATH_INFO" not in meta:
        return
    raw = meta["PATH_INFO"]
    path_info = unquote_to_wsgi(raw)
    if path_info != raw:
        uri = unquote_to_wsgi(meta.get("REQUEST_URI", "").partition("?")[0])
        meta["SCRIPT_NAME"] = uri[: len(uri) - len(path_info)] if uri.endswith(path_info) else ""
    meta["PATH_INFO"] = path_info


class _Exchange:
    """One request: the body reader ``InputStream`` pulls from, and the ResponseWriter."""

    __slots__ = ("sock", "parser", "left", "head", "ended")

    def __init__(self, sock: socket.socket, parser: SCGIParser) -> None:
        self.sock = sock
        self.parser = parser
        self.left = b""  # part of a Body event beyond what read() asked for
        self.head = b""
        self.ended = False  # the whole body was read

    def read(self, size: int = -1, /) -> bytes:
        if self.left:
            chunk = self.left
        else:
            parser = self.parser
            while True:
                event = parser.next_event()
                if isinstance(event, Body):
                    chunk = event.data
                    break
                if event is NEED_DATA:
                    parser.receive_data(recv_body(self.sock, RECV_SIZE))
                    continue
                if isinstance(event, ConnectionClosed):
                    raise ClientDisconnected("the web server closed the connection mid-body")
                self.ended = True  # EndOfBody
                return b""
        if 0 <= size < len(chunk):
            self.left = chunk[size:]
            return chunk[:size]
        self.left = b""
        return chunk

    def body_read(self) -> bool:
        """Whether the app read the whole body (then the connection can close at once)."""
        if self.ended:
            return True
        if self.left:
            return False
        event = self.parser.next_event()
        if isinstance(event, Body):
            self.left = event.data
            return False
        if isinstance(event, EndOfBody):
            self.ended = True
            return True
        return event is not NEED_DATA  # ConnectionClosed: the web server closed its side

    # -- the ResponseWriter the core calls ----------------------------------------------------

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.head = cgi_response_head(status, headers)

    def write(self, data: bytes) -> None:
        if self.head:
            data = self.head + data
            self.head = b""
        self.sock.sendall(data)

    def finish(self, data: bytes) -> None:
        self.write(data)


class SCGIHandler(ConnectionHandler):
    """Serves SCGI connections for one WSGI app (the runtime calls it from pool threads)."""

    name = "scgi"

    def __init__(
        self,
        app: WSGIApplication,
        config: ServerConfig,
        *,
        script_name: str | None = None,
        debug: bool = False,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
    ) -> None:
        from wsgigate.server.status import with_operations

        self.app = with_operations(app, config)  # --status-path / --ping-path, when set
        self.script_name = script_name
        self.debug = debug
        self.forwarded = config.forwarded_scheme()  # --forwarded-allow-ips, or None
        self.max_header_size = max_header_size
        self.multithread = config.threads > 1
        self.multiprocess = config.workers > 1
        self.head_timeout = head_timeout(config)

    def handle(self, conn: Connection) -> bool:
        """Serve the connection's one request; always False (SCGI closes after a response)."""
        sock = conn.sock
        parser = SCGIParser(max_header_size=self.max_header_size)
        head_by = 0.0  # the head's deadline, from its first read (server/headwait.py)
        try:
            while True:
                # A new connection has nothing parsed yet: read first (one parse, not two).
                if head_by:
                    parser.receive_data(recv_head(sock, RECV_SIZE, head_by, self.head_timeout))
                else:  # the first read finds what woke the worker: no deadline to set yet
                    parser.receive_data(sock.recv(RECV_SIZE))
                    head_by = time.monotonic() + self.head_timeout
                event = parser.next_event()
                if isinstance(event, Request):
                    break
                if event is not NEED_DATA:
                    return False  # closed before a complete header: nothing to answer
            self._serve(conn, parser, event)
        except ProtocolError as exc:
            log.warning("scgi: refusing a request from %s: %s", _peer(conn), exc)
            self._refuse(conn, exc.status_hint)
        except BlockingIOError:  # SO_RCVTIMEO/SO_SNDTIMEO, the socket's --timeout
            log.info("scgi: connection from %s timed out (--timeout)", _peer(conn))
        except (OSError, ClientDisconnected) as exc:
            log.info("scgi: connection from %s lost: %s", _peer(conn), exc)
        return False

    def _serve(self, conn: Connection, parser: SCGIParser, request: Request) -> None:
        meta = request.headers
        started = conn.begin_request(meta)
        fix_apache_path_info(meta)
        fix_script_name(meta, self.script_name)
        exchange = _Exchange(conn.sock, parser)
        environ = build_environ(
            meta,
            stdin=InputStream(exchange, request.content_length),
            errors=ErrorStream(),
            multithread=self.multithread,
            multiprocess=self.multiprocess,
            run_once=False,
            url_scheme=self.forwarded(meta) if self.forwarded is not None else None,
        )
        outcome = run_app(self.app, environ, exchange, debug=self.debug)
        conn.end_request(environ, outcome.status, outcome.sent, started)
        if not outcome.complete:
            return
        if not request.content_length and meta.get("REQUEST_METHOD") in ("GET", "HEAD"):
            return  # no body, none expected: close at once
        if exchange.body_read() and exchange.ended:
            _take_extra(conn.sock, parser)
        if not exchange.body_read() or parser.trailing:
            _linger(conn.sock)
        if parser.trailing:
            log.warning(
                "scgi: %s sent %d byte(s) after the CONTENT_LENGTH of %d: the request body "
                "was cut short (nginx with scgi_request_buffering off sends a wrong length; "
                "see docs/scgi.md)",
                _peer(conn),
                parser.trailing,
                request.content_length,
            )

    def _refuse(self, conn: Connection, status: int) -> None:
        reason = REASONS.get(status, "Bad Request")
        body = f"{status} {reason}\n".encode()
        head = cgi_response_head(
            f"{status} {reason}",
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
        )
        with contextlib.suppress(OSError):
            conn.sock.sendall(head + body)
            _linger(conn.sock, 0.25)

    def overloaded(self, conn: Connection) -> None:
        """Every thread busy, queue full: a 503 at once, then a short drain and close."""
        with contextlib.suppress(OSError):
            conn.sock.sendall(OVERLOADED_ANSWER)
            _linger(conn.sock, 0.1)
        log.warning(
            "scgi: all %d threads busy and the queue full: answered 503",
            conn.worker.config.threads,
        )


def _take_extra(sock: socket.socket, parser: SCGIParser) -> None:
    """Feed the parser what already follows the body: bytes there mean a wrong CONTENT_LENGTH.

    (``recv`` with ``MSG_DONTWAIT`` still waits on a socket with a timeout: Python polls first.)
    """
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        extra = sock.recv(RECV_SIZE)
    except OSError:
        return
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)
    if extra:
        parser.receive_data(extra)


def _linger(sock: socket.socket, seconds: float = LINGER_SECONDS) -> None:
    linger(sock, seconds, LINGER_BYTES)


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
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
    **options: Any,
) -> None:
    """Serve ``app`` over SCGI until SIGTERM/SIGINT.

    ``bind``: one spec or a list (``HOST:PORT``, ``[::1]:PORT``, ``unix:/path[,MODE]``,
    ``fd://N``, ``systemd``); by default the sockets systemd or the parent (fd 0) passed, else
    127.0.0.1:4000. ``workers=0`` runs one process without an arbiter. Other options are the
    fields of :class:`wsgigate.server.ServerConfig` (``timeout``, ``graceful_timeout``,
    ``max_requests``, ``socket_mode``, ``access_log_format``...).
    """
    from wsgigate.server.config import config_from_options

    config = config_from_options(
        "scgi", DEFAULT_BIND, bind=bind, workers=workers, threads=threads, **options
    )
    handler = SCGIHandler(
        app, config, script_name=script_name, debug=debug, max_header_size=max_header_size
    )
    run_server(handler, config)


# -- ``wsgigate scgi MODULE:APP`` (the entry in wsgigate.cli.COMMANDS calls these) ---------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``wsgigate fastcgi`` options (with SCGI's default address), plus the header limit."""
    from wsgigate.fastcgi.server import add_arguments as fastcgi_arguments

    fastcgi_arguments(parser, DEFAULT_BIND)
    parser.add_argument(
        "--max-header-size",
        type=int,
        default=DEFAULT_MAX_HEADER_SIZE,
        metavar="BYTES",
        help="largest SCGI header (netstring) accepted; larger is answered 431 "
        f"(default: {DEFAULT_MAX_HEADER_SIZE})",
    )


def main(args: argparse.Namespace) -> int:
    import sys

    from wsgigate.loader import load_app
    from wsgigate.server.config import config_from_args, configure_access_log

    if args.max_header_size < 1:
        raise ConfigurationError(f"--max-header-size {args.max_header_size}: must be at least 1")
    app = load_app(args.app)
    config = config_from_args(args, "scgi", DEFAULT_BIND)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    configure_access_log(args.access_logfile)
    handler = SCGIHandler(
        app,
        config,
        script_name=args.script_name,
        debug=args.debug,
        max_header_size=args.max_header_size,
    )
    run_server(handler, config)
    return 0
