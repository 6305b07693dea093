"""A local HTTP/1.1 server for development: ``wsgigate run`` outside any host.

Threaded, on the standard library's ``http.server``, running the app through the same core as
every gateway, so what works here behaves the same behind CGI, FastCGI or Lambda. It is not
meant to face the internet; the banner says so.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from wsgigate import __version__
from wsgigate.core import (
    ErrorStream,
    InputStream,
    build_environ,
    content_length,
    run_app,
    unquote_to_wsgi,
)
from wsgigate.errors import ClientDisconnected, ConfigurationError, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from wsgiref.types import WSGIApplication

SERVER_SOFTWARE = f"wsgigate-dev/{__version__}"


def parse_host_port(bind: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` to a (host, port) pair."""
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigurationError(f"bind {bind!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    return host.strip("[]") or "127.0.0.1", int(port)


class HTTPWriter:
    """HTTP/1.1 framing: Content-Length when the body is known at once, chunked otherwise."""

    __slots__ = ("handler", "status", "headers", "chunked", "head_only", "head_pending")

    def __init__(self, handler: WSGIRequestHandler, head_only: bool) -> None:
        self.handler = handler
        self.head_only = head_only
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.chunked = False
        self.head_pending = False

    def start(self, status: str, headers: list[tuple[str, str]]) -> None:
        self.status, self.headers = status, headers
        self.head_pending = True
        if status[:1] == "1" or status[:3] in ("204", "304"):
            self.head_only = True  # a body here would be read as the next response

    def _head(self, body_length: int | None) -> bytes:
        lines = [f"HTTP/1.1 {self.status}\r\n", f"Server: {SERVER_SOFTWARE}\r\n"]
        lines += [f"Date: {self.handler.date_time_string()}\r\n"]
        has_length = False
        for name, value in self.headers:
            lines.append(f"{name}: {value}\r\n")
            has_length = has_length or name.lower() == "content-length"
        bodiless = self.head_only or self.status[:1] == "1" or self.status[:3] in ("204", "304")
        if not has_length and not bodiless:
            if body_length is not None:
                lines.append(f"Content-Length: {body_length}\r\n")
            elif self.handler.request_version == "HTTP/1.1":
                self.chunked = True
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                self.handler.close_connection = True
        if self.handler.close_connection:
            lines.append("Connection: close\r\n")
        elif self.handler.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive\r\n")  # else a 1.0 client waits for the close
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    def _send(self, data: bytes) -> None:
        self.handler.wfile.write(data)

    def write(self, data: bytes) -> None:
        out = self._head(None) if self.head_pending else b""
        self.head_pending = False
        if not self.head_only:
            out += b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data
        self._send(out)

    def finish(self, data: bytes) -> None:
        out = self._head(len(data)) if self.head_pending else b""
        self.head_pending = False
        if not self.head_only:
            if self.chunked:
                out += (b"%x\r\n%s\r\n" % (len(data), data) if data else b"") + b"0\r\n\r\n"
            else:
                out += data
        self._send(out)


class WSGIRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = SERVER_SOFTWARE
    server: WSGIDevServer

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
        except OSError:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.send_error(414)
            return
        if not self.raw_requestline:
            self.close_connection = True
            return
        if not self.parse_request():
            return
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.send_error(411, "chunked request bodies are not supported by the dev server")
            self.close_connection = True
            return
        self.run_wsgi()
        self.wfile.flush()

    def meta(self) -> dict[str, str]:
        path, _, query = self.path.partition("?")
        if "://" in path:  # absolute-form request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        host, port = self.server.server_address[:2]
        meta = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_wsgi(path),
            "QUERY_STRING": query,
            "REQUEST_URI": self.path,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version,
            "SERVER_SOFTWARE": SERVER_SOFTWARE,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": str(self.client_address[1]),
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if "_" in name:  # Foo_Bar would alias Foo-Bar: drop it, as nginx and Apache do
                continue
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                key = key[5:]
            if key in meta and key.startswith("HTTP_"):
                meta[key] += ("; " if key == "HTTP_COOKIE" else ", ") + value
            else:
                meta[key] = value
        return meta

    def run_wsgi(self) -> None:
        meta = self.meta()
        try:
            if len(set(self.headers.get_all("Content-Length", ()))) > 1:
                raise ProtocolError("conflicting Content-Length headers")
            body_length = content_length(meta) or 0
        except ProtocolError as exc:
            # a body we cannot frame would be parsed as the next request: answer and close
            self.close_connection = True
            self.send_error(400, str(exc))
            return
        body = InputStream(self.rfile, body_length)
        environ = build_environ(
            meta,
            stdin=body,
            errors=ErrorStream(),
            multithread=True,
            multiprocess=False,
            run_once=False,
        )
        writer = HTTPWriter(self, head_only=self.command == "HEAD")
        outcome = run_app(self.server.app, environ, writer, debug=self.server.debug)
        if not outcome.complete:
            self.close_connection = True
        else:
            # Unread body bytes would be parsed as the next request.
            try:
                body.drain()
            except (ClientDisconnected, OSError):
                self.close_connection = True  # the client left mid-body: nothing to answer
        self.log_request(outcome.status, outcome.sent)

    def log_message(self, format: str, *args: Any) -> None:
        import logging

        logging.getLogger("wsgigate.access").info(
            "%s - - [%s] %s", self.client_address[0], self.log_date_time_string(), format % args
        )


class WSGIDevServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: WSGIApplication, debug: bool) -> None:
        import socket

        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, WSGIRequestHandler)
        self.app = app
        self.debug = debug


def make_server(
    app: WSGIApplication, bind: str = "127.0.0.1:8000", debug: bool = False
) -> WSGIDevServer:
    address = parse_host_port(bind)
    try:
        return WSGIDevServer(address, app, debug)
    except OSError as exc:
        raise ConfigurationError(f"bind {bind!r}: cannot listen there: {exc}") from None


def serve(app: WSGIApplication, *, bind: str = "127.0.0.1:8000", debug: bool = False) -> None:
    """Serve ``app`` over HTTP until interrupted."""
    server = make_server(app, bind, debug)
    host, port = str(server.server_address[0]), server.server_address[1]
    shown = f"[{host}]" if ":" in str(host) else host
    print(
        f"wsgigate development server on http://{shown}:{port}/ "
        "(for development only: use a real gateway in production; Ctrl+C to stop)",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
