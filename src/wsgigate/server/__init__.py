"""The server runtime every socket gateway (FastCGI, SCGI) shares.

::

    bind specs ──> open_listeners() ──> Arbiter (pre-fork, signals, heartbeats)
                                          └─> Worker x N (selector + bounded thread pool)
                                                └─> ConnectionHandler.handle(conn)   <- protocol

A gateway writes a :class:`ConnectionHandler` (its ``handle(conn)`` serves the requests of one
connection; ``overloaded(conn)`` answers when the pool is full) and calls :func:`run_server`.
Bind parsing, unix socket care, systemd and fd 0 inheritance, workers, threads, graceful
shutdown, recycling, heartbeats and the access log live here once.
"""

from __future__ import annotations

import logging
import os

from wsgigate.server.accesslog import COMBINED, AccessLog
from wsgigate.server.bind import BindSpec, Listener, open_listeners, parse_bind
from wsgigate.server.config import ServerConfig
from wsgigate.server.worker import (
    OVERLOADED_ANSWER,
    Connection,
    ConnectionHandler,
    Worker,
    linger,
    recv_body,
    send_closing,
)

__all__ = [
    "COMBINED",
    "OVERLOADED_ANSWER",
    "AccessLog",
    "BindSpec",
    "Connection",
    "ConnectionHandler",
    "Listener",
    "ServerConfig",
    "Worker",
    "open_listeners",
    "linger",
    "parse_bind",
    "recv_body",
    "run_server",
    "send_closing",
]

log = logging.getLogger("wsgigate.error")


def _ensure_logging() -> None:
    """Called from Python without any logging set up: show our INFO lines on stderr."""
    root = logging.getLogger()
    ours = logging.getLogger("wsgigate")
    if root.handlers or ours.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    )
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)


def run_server(handler: ConnectionHandler, config: ServerConfig) -> None:
    """Bind, serve until SIGTERM/SIGINT, clean up (unix socket files we created are removed).

    Logs one ``<name> listening on <address>`` line per socket with the address actually bound
    (port 0 becomes the real port), which is what tests and scripts wait for.
    """
    config.check()
    _ensure_logging()
    if config.umask is not None:
        os.umask(config.umask)
    listeners = open_listeners(
        config.bind,
        backlog=config.backlog,
        socket_mode=config.socket_mode,
        socket_owner=config.socket_owner,
    )
    status_listener = None
    scoreboard = None
    if config.status_path or config.status_bind:
        from wsgigate.server.status import Scoreboard

        scoreboard = Scoreboard()
        scoreboard.set_wanted(config.workers or 1)
    try:
        for listener in listeners:
            log.info("%s listening on %s (pid %d)", config.name, listener.address, os.getpid())
        if config.status_bind:
            (status_listener,) = open_listeners(
                [config.status_bind],
                backlog=64,
                socket_mode=config.socket_mode,
                socket_owner=config.socket_owner,
            )
            log.info(
                "status listening on http://%s/ (pid %d)", status_listener.address, os.getpid()
            )
        if config.workers == 0:
            log.info("single process mode: %d thread(s)", config.threads)
            slot = scoreboard.claim(os.getpid()) if scoreboard is not None else -1
            Worker(
                listeners,
                handler,
                config,
                scoreboard=scoreboard,
                slot=slot,
                status_listener=status_listener,
            ).run()
        else:
            from wsgigate.server.arbiter import Arbiter

            log.info("%d worker(s) x %d thread(s)", config.workers, config.threads)
            Arbiter(
                listeners,
                handler,
                config,
                scoreboard=scoreboard,
                status_listener=status_listener,
            ).run()
        log.info("%s stopped", config.name)
    finally:
        for listener in listeners if status_listener is None else [*listeners, status_listener]:
            listener.remove_file()
            listener.close()
