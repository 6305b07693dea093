"""A small blocking FastCGI client: the web server's side, for health checks, monitoring, tests.

::

    from wsgigate.fastcgi.client import http_params, request

    response = request("unix:/run/app.sock", http_params("GET", "/health"), timeout=5)
    response.status, response.headers, response.body    # 200, [...], b"ok"
    response.stderr, response.app_status                 # what the app logged, its exit status

``wsgigate fastcgi-request --connect ADDRESS /path`` is the same from the command line (exit
status 0 for a 2xx/3xx answer, 1 for any other, 2 when no FastCGI answer came), usable as a
Docker HEALTHCHECK against wsgigate, PHP-FPM or any FastCGI server. Addresses: ``HOST:PORT``,
``[V6]:PORT``, ``unix:/path`` or a plain ``/path`` to a unix socket.
"""

from __future__ import annotations

import socket
import sys
import time
from typing import NamedTuple

from wsgigate.errors import ConfigurationError, ProtocolError
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols.fastcgi import (
    REQUEST_COMPLETE,
    RESPONDER,
    EndRequest,
    FastCGIClientConnection,
    GetValuesResult,
    Stderr,
    Stdout,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Mapping

__all__ = ["Response", "connect", "get_values", "http_params", "parse_address", "request"]

PROTOCOL_STATUS_NAMES = {
    0: "REQUEST_COMPLETE",
    1: "CANT_MPX_CONN",
    2: "OVERLOADED",
    3: "UNKNOWN_ROLE",
}


class Response(NamedTuple):
    """What the application sent for one request."""

    stdout: bytes
    stderr: bytes
    app_status: int
    protocol_status: int = REQUEST_COMPLETE

    def _split(self) -> tuple[int, list[tuple[str, str]], bytes]:
        data = self.stdout
        end, sep = data.find(b"\r\n\r\n"), 4
        lf = data.find(b"\n\n")
        if end < 0 or 0 <= lf < end:
            end, sep = lf, 2
        if end < 0:
            raise ProtocolError(f"response has no end of headers: {data[:80]!r}", 502)
        status = 0
        headers = []
        for line in data[:end].decode("latin-1").splitlines():
            name, colon, value = line.partition(":")
            if not colon:
                raise ProtocolError(f"malformed response header line {line[:80]!r}", 502)
            if name.strip().lower() == "status":
                code = value.strip()[:3]
                if not (code.isascii() and code.isdigit()):
                    raise ProtocolError(f"malformed Status header {value.strip()[:40]!r}", 502)
                status = int(code)
            else:
                headers.append((name.strip(), value.strip()))
        if not status:  # RFC 3875 6.3.2/6.3.3: a Location without Status is a redirect
            status = 302 if any(n.lower() == "location" for n, _ in headers) else 200
        return status, headers, data[end + sep :]

    @property
    def status(self) -> int:
        """The HTTP status code (``Status:`` header; 200, or 302 with ``Location``)."""
        return self._split()[0]

    @property
    def headers(self) -> list[tuple[str, str]]:
        return self._split()[1]

    @property
    def body(self) -> bytes:
        return self._split()[2]


def parse_address(address: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    """``HOST:PORT``, ``[V6]:PORT``, ``unix:/path`` or ``/path`` -> (family, sockaddr)."""
    if address.startswith("unix:"):
        address = address[5:]
        if not address:
            raise ConfigurationError("unix: address without a path")
        return socket.AF_UNIX, address
    if address.startswith(("/", "./")):
        return socket.AF_UNIX, address
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"FastCGI address {address!r}: expected HOST:PORT, [V6]:PORT or unix:/path"
        )
    if host.startswith("[") and host.endswith("]"):
        return socket.AF_INET6, (host[1:-1], int(port))
    if ":" in host:
        raise ConfigurationError(f"FastCGI address {address!r}: put IPv6 hosts in brackets")
    return socket.AF_INET, (host or "127.0.0.1", int(port))


def connect(address: str, timeout: float = 10.0) -> socket.socket:
    family, sockaddr = parse_address(address)
    if family == socket.AF_UNIX:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(sockaddr)
        except BaseException:
            sock.close()
            raise
        return sock
    assert isinstance(sockaddr, tuple)
    sock = socket.create_connection(sockaddr, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def http_params(
    method: str = "GET",
    target: str = "/",
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    script_name: str = "",
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """CGI params for an HTTP request, as a web server mounted at ``script_name`` sends them.

    ``target`` is the percent-encoded path with an optional ``?query``; ``extra`` adds or
    replaces params (e.g. ``SCRIPT_FILENAME`` for PHP-FPM).
    """
    from wsgigate.check import ProbeRequest

    path, _, query = target.partition("?")
    params = ProbeRequest(method, path, query, headers, body).meta()
    params["SERVER_SOFTWARE"] = "wsgigate-fastcgi-request"
    if script_name:
        path_info = params["PATH_INFO"]
        if path_info.startswith(script_name):
            params["SCRIPT_NAME"] = script_name
            params["PATH_INFO"] = path_info[len(script_name) :]
    params.update(extra or {})
    return params


def _exchange(
    address: str, client: FastCGIClientConnection, timeout: float
) -> Iterable[Stdout | Stderr | EndRequest | GetValuesResult]:
    deadline = time.monotonic() + timeout
    with connect(address, timeout) as sock:
        sock.sendall(client.data_to_send())
        while True:
            event = client.next_event()
            if event is NEED_DATA:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no complete answer from {address} within {timeout}s")
                sock.settimeout(left)
                client.receive_data(sock.recv(262144))
                continue
            if isinstance(event, ConnectionClosed):
                raise ProtocolError(f"{address} closed the connection before answering", 502)
            if isinstance(event, Stdout | Stderr | EndRequest | GetValuesResult):
                yield event


def request(
    address: str,
    params: Mapping[str, str] | Iterable[tuple[str | bytes, str | bytes]],
    body: bytes = b"",
    timeout: float = 10.0,
    *,
    role: int = RESPONDER,
    record_size: int = 65535,
) -> Response:
    """Send one request (without FCGI_KEEP_CONN) and wait for END_REQUEST.

    Raises :class:`OSError` (refused, unreachable), :class:`TimeoutError`, or
    :class:`~wsgigate.errors.ProtocolError` when the peer does not speak FastCGI properly.
    """
    client = FastCGIClientConnection(record_size=record_size)
    client.begin_request(1, role, keep_conn=False)
    client.params(1, params)
    client.stdin(1, body)
    client.end_stdin(1)
    stdout: list[bytes] = []
    stderr: list[bytes] = []
    for event in _exchange(address, client, timeout):
        if isinstance(event, Stdout):
            stdout.append(event.data)
        elif isinstance(event, Stderr):
            stderr.append(event.data)
        elif isinstance(event, EndRequest):
            return Response(
                b"".join(stdout), b"".join(stderr), event.app_status, event.protocol_status
            )
    raise AssertionError("unreachable")  # pragma: no cover


def get_values(
    address: str,
    names: Iterable[str] = ("FCGI_MAX_CONNS", "FCGI_MAX_REQS", "FCGI_MPXS_CONNS"),
    timeout: float = 10.0,
) -> dict[str, str]:
    """Ask a FastCGI server for its FCGI_GET_VALUES variables."""
    client = FastCGIClientConnection()
    client.get_values(names)
    for event in _exchange(address, client, timeout):
        if isinstance(event, GetValuesResult):
            return {k.decode("latin-1"): v.decode("latin-1") for k, v in event.values.items()}
    raise AssertionError("unreachable")  # pragma: no cover


# -- the ``wsgigate fastcgi-request`` command (options in wsgigate.cli) -------------------------


def main(args: argparse.Namespace) -> int:
    """Exit status: 0 for 2xx/3xx, 1 for any other status, 2 when no FastCGI answer came."""
    headers = []
    for header in args.header:
        name, sep, value = header.partition(":")
        if not sep:
            raise ConfigurationError(f"--header {header!r}: expected 'Name: value'")
        headers.append((name.strip(), value.strip()))
    extra = {}
    for param in args.param:
        name, sep, value = param.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"--param {param!r}: expected NAME=VALUE")
        extra[name] = value
    body = args.data.encode() if args.data is not None else b""
    params = http_params(
        args.method, args.target, headers, body, script_name=args.script_name, extra=extra
    )
    try:
        response = request(args.connect, params, body, args.timeout)
        if response.stderr and not args.quiet:
            sys.stderr.buffer.write(response.stderr)
            sys.stderr.flush()
        if response.protocol_status != REQUEST_COMPLETE:
            code = response.protocol_status
            name = PROTOCOL_STATUS_NAMES.get(code, str(code))
            print(f"wsgigate: fastcgi-request {args.connect}: refused ({name})", file=sys.stderr)
            return 1
        status = response.status
    except (OSError, ProtocolError) as exc:  # OSError covers TimeoutError and refusals
        reason = str(exc) or type(exc).__name__
        print(f"wsgigate: fastcgi-request {args.connect}: {reason}", file=sys.stderr)
        return 2
    if not args.quiet:
        out = sys.stdout.buffer
        out.write(response.stdout if args.include else response.body)
        out.flush()
    return 0 if 200 <= status < 400 else 1
