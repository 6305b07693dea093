"""The deadline for a request head: a client that trickles its head in holds no thread for long.

A pool thread takes a connection as soon as it is readable and reads the request head (FastCGI
BEGIN_REQUEST and PARAMS, the SCGI netstring) with blocking ``recv`` calls. The socket timeout
bounds each call, not their sum, so a peer sending a byte every few seconds (slowloris) would
hold the thread for ever, and enough of them would make the arbiter kill the whole worker
(``--timeout``: every thread stuck), taking its other requests along. The head must instead be
complete within :func:`head_timeout` seconds of the first wait for it; a late one closes only
its own connection. Front ends send the head in one write, so this never cuts a real one.
"""

from __future__ import annotations

import time

from wsgigate.errors import ClientDisconnected

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

    from wsgigate.server.config import ServerConfig

HEAD_TIMEOUT = 10.0  # seconds, at most; half of --timeout when that is shorter


class HeadTimeout(ClientDisconnected):
    """The request head was not complete in time; the connection is closed."""


def head_timeout(config: ServerConfig) -> float:
    """Seconds a request head may take: 10, or half of ``--timeout`` (before the worker kill)."""
    return min(HEAD_TIMEOUT, config.timeout / 2) if config.timeout else HEAD_TIMEOUT


def recv_head(sock: socket.socket, size: int, deadline: float, limit: float) -> bytes:
    """``sock.recv(size)``, giving up with :class:`HeadTimeout` at ``deadline`` (monotonic)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise HeadTimeout(f"request head not complete after {limit:g}s (slow client): closing")
    timeout = sock.gettimeout()
    if timeout is not None and timeout <= left:
        return sock.recv(size)  # the socket's own timeout comes first
    sock.settimeout(left)
    try:
        return sock.recv(size)
    except TimeoutError:
        raise HeadTimeout(
            f"request head not complete after {limit:g}s (slow client): closing"
        ) from None
    finally:
        sock.settimeout(timeout)
