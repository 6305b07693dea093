"""Server settings, shared by every socket gateway, and their command-line options.

Option names follow gunicorn where gunicorn has one (``--bind``, ``--workers``, ``--threads``,
``--timeout``, ``--graceful-timeout``, ``--keep-alive``, ``--max-requests``,
``--max-requests-jitter``, ``--backlog``, ``--umask``, ``--access-logfile``,
``--access-logformat``), so an operator moving from gunicorn keeps their habits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wsgigate.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping
    from typing import Any


@dataclass
class ServerConfig:
    """Everything the runtime needs besides the protocol handler.

    ``workers=0`` is single-process mode: no arbiter, the one worker runs in this process (no
    respawn, no recycling, SIGHUP ignored). ``workers>=1`` forks that many worker processes
    under an arbiter that restarts them.
    """

    bind: list[str] = field(default_factory=list)
    workers: int = 1
    threads: int = 4
    queue: int = 0  # connections waiting for a thread; 0 = the default, 1024
    backlog: int = 2048
    timeout: float = 30.0  # a worker silent this long (or with every thread stuck) is killed
    graceful_timeout: float = 30.0
    keepalive: float = 75.0  # idle kept-alive connection lifetime
    max_requests: int = 0
    max_requests_jitter: int = 0
    umask: int | None = None
    socket_mode: int | None = None
    socket_owner: str | None = None
    access_log_format: str | None = None
    forwarded_allow_ips: str | None = None  # proxies whose X-Forwarded-Proto is believed
    # operations (server/status.py): status and ping pages, slow log, per-request timeout
    status_path: str = ""  # e.g. "/status": answered in front of the app
    ping_path: str = ""  # e.g. "/ping": answers "pong"
    status_bind: str = ""  # a separate plain-HTTP listener for the status (and /ping)
    slow_request_timeout: float = 0.0  # log the stack of a request running longer; 0 = off
    request_timeout: float = 0.0  # stop a request running longer (500); 0 = off
    name: str = "wsgigate"  # protocol name for log lines, e.g. "fastcgi"

    def check(self) -> None:
        """One-line errors for impossible values."""
        if self.workers < 0:
            raise ConfigurationError(
                f"--workers {self.workers}: must be 0 (single process) or more"
            )
        if self.threads < 0:
            raise ConfigurationError(
                f"--threads {self.threads}: must be 0 (no pool: the worker serves) or more"
            )
        for name in (
            "timeout",
            "graceful_timeout",
            "keepalive",
            "slow_request_timeout",
            "request_timeout",
        ):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"--{name.replace('_', '-')} must not be negative")
        if self.max_requests < 0 or self.max_requests_jitter < 0:
            raise ConfigurationError(
                "--max-requests and --max-requests-jitter must not be negative"
            )
        if self.queue < 0:
            raise ConfigurationError("--queue must not be negative")
        for name in ("status_path", "ping_path"):
            value = getattr(self, name)
            if value and not value.startswith("/"):
                raise ConfigurationError(f"--{name.replace('_', '-')} {value!r}: must start with /")
        if self.status_bind:
            from wsgigate.server.bind import parse_bind

            parse_bind(self.status_bind)
        if self.access_log_format:
            from wsgigate.server.accesslog import check_format

            check_format(self.access_log_format)
        if self.forwarded_allow_ips is not None:
            self.forwarded_scheme()

    def forwarded_scheme(self) -> Callable[[Mapping[str, str]], str | None] | None:
        """The handlers' ``X-Forwarded-Proto`` reader, or None when none is trusted."""
        if self.forwarded_allow_ips is None:
            return None
        from wsgigate.forwarded import forwarded_scheme_from_option

        return forwarded_scheme_from_option(self.forwarded_allow_ips)

    @property
    def queue_size(self) -> int:
        return self.queue or 1024


def _octal(text: str) -> int:
    import argparse

    try:
        return int(text, 8)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not octal, e.g. 022 or 660") from None


def add_server_arguments(parser: argparse.ArgumentParser, default_bind: str) -> None:
    """The runtime's options, for ``wsgigate fastcgi`` / ``wsgigate scgi``."""
    group = parser.add_argument_group("server")
    group.add_argument(
        "-b",
        "--bind",
        action="append",
        default=[],
        metavar="ADDRESS",
        help=f"HOST:PORT, [::1]:PORT, unix:/path[,MODE], fd://N or systemd; repeatable "
        f"(default: systemd sockets or fd 0 when inherited, else {default_bind})",
    )
    group.add_argument(
        "-w",
        "--workers",
        type=int,
        default=1,
        help="worker processes; 0 = single process, no arbiter (default: 1)",
    )
    group.add_argument(
        "--threads",
        type=int,
        default=4,
        help="threads per worker (default: 4); 0 = no thread pool: each worker serves one "
        "request at a time on its main thread (the least CPU per request; a slow request "
        "holds the worker)",
    )
    group.add_argument(
        "--queue",
        type=int,
        default=0,
        help="connections a worker holds waiting for a thread; beyond it a request is answered "
        "503 / FCGI_OVERLOADED (default: 1024). With several workers, a worker whose threads "
        "are all busy stops accepting and leaves new connections to its siblings",
    )
    group.add_argument("--backlog", type=int, default=2048, help="listen() backlog")
    group.add_argument(
        "-t",
        "--timeout",
        type=float,
        default=30.0,
        help="kill a worker that stops answering the arbiter, or whose every thread has been "
        "stuck in one request, for this many seconds; also the longest one socket read or "
        "write waits (per system call: a peer that keeps taking bytes slowly is not cut off; "
        "--request-timeout bounds a whole request) (default: 30)",
    )
    group.add_argument(
        "--graceful-timeout",
        type=float,
        default=30.0,
        help="on SIGTERM, seconds to finish in-flight requests (default: 30)",
    )
    group.add_argument(
        "--keep-alive",
        dest="keepalive",
        type=float,
        default=75.0,
        help="seconds an idle kept-alive connection stays open (default: 75)",
    )
    group.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="recycle a worker after this many requests; 0 = never (default: 0)",
    )
    group.add_argument(
        "--max-requests-jitter",
        type=int,
        default=0,
        help="add up to this many requests at random to --max-requests, per worker",
    )
    from wsgigate.forwarded import add_forwarded_argument

    add_forwarded_argument(group)
    group.add_argument("--umask", type=_octal, help="process umask, octal (e.g. 007)")
    group.add_argument(
        "--socket-mode", type=_octal, help="mode of unix socket files, octal (e.g. 660)"
    )
    group.add_argument("--socket-owner", metavar="USER[:GROUP]", help="owner of unix socket files")
    group.add_argument(
        "--access-logfile",
        default="-",
        metavar="FILE",
        help="where access log lines go; '-' = stdout (default), 'none' = no access log",
    )
    group.add_argument(
        "--access-logformat",
        metavar="FORMAT",
        help="access log format with gunicorn atoms (default: Apache combined)",
    )
    ops = parser.add_argument_group("operations")
    ops.add_argument(
        "--status-path",
        default="",
        metavar="PATH",
        help="answer this path with the server's status (JSON; ?openmetrics for OpenMetrics) "
        "instead of the app, e.g. /status; restrict access to it in the front end",
    )
    ops.add_argument(
        "--ping-path", default="", metavar="PATH", help="answer this path with 'pong', e.g. /ping"
    )
    ops.add_argument(
        "--status-bind",
        default="",
        metavar="ADDRESS",
        help="serve the status (and /ping) over plain HTTP on this separate address, "
        "e.g. 127.0.0.1:9101 (answered by the arbiter)",
    )
    ops.add_argument(
        "--slow-request-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="log the Python stack of a request still running after this long; 0 = off",
    )
    ops.add_argument(
        "--request-timeout",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stop a request running longer than this: an exception is raised in its thread "
        "(a 500 unless the response has started); 0 = off",
    )


def config_from_args(args: argparse.Namespace, name: str, default_bind: str) -> ServerConfig:
    from wsgigate.server.bind import default_binds

    config = ServerConfig(
        bind=list(args.bind) or default_binds(default_bind),
        workers=args.workers,
        threads=args.threads,
        queue=args.queue,
        backlog=args.backlog,
        timeout=args.timeout,
        graceful_timeout=args.graceful_timeout,
        keepalive=args.keepalive,
        max_requests=args.max_requests,
        max_requests_jitter=args.max_requests_jitter,
        umask=args.umask,
        socket_mode=args.socket_mode,
        socket_owner=args.socket_owner,
        access_log_format=args.access_logformat,
        forwarded_allow_ips=args.forwarded_allow_ips,
        status_path=args.status_path,
        ping_path=args.ping_path,
        status_bind=args.status_bind,
        slow_request_timeout=args.slow_request_timeout,
        request_timeout=args.request_timeout,
        name=name,
    )
    config.check()
    return config


def config_from_options(name: str, default_bind: str, **options: Any) -> ServerConfig:
    """A ServerConfig from ``serve(app, bind=..., workers=..., ...)`` keyword arguments."""
    from wsgigate.server.bind import default_binds

    bind = options.pop("bind", None)
    if bind is None:
        binds = default_binds(default_bind)
    elif isinstance(bind, str):
        binds = [bind]
    else:
        binds = list(bind)
    known = set(ServerConfig.__dataclass_fields__)
    unknown = set(options) - known
    if unknown:
        raise ConfigurationError(f"unknown server option(s): {', '.join(sorted(unknown))}")
    config = ServerConfig(bind=binds, name=name, **options)
    config.check()
    return config


def configure_access_log(target: str) -> None:
    """Send ``wsgigate.access`` lines, unadorned, to a file or stdout (``-``); ``none`` = off."""
    import logging
    import sys

    logger = logging.getLogger("wsgigate.access")
    logger.propagate = False
    for old in list(logger.handlers):
        logger.removeHandler(old)
    if target.lower() == "none":
        logger.disabled = True
        return
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.FileHandler(target, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
