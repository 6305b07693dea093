"""``wsgigate asgi MODULE:APP --server uvicorn|hypercorn``: serve a WSGI app from an ASGI server.

The only module of wsgigate that imports an ASGI server, and only the one asked for. Both
servers handle SIGINT/SIGTERM gracefully (finish running requests, then lifespan shutdown,
which stops the worker threads).
"""

from __future__ import annotations

from wsgigate.asgi import DEFAULT_THREADS, WSGIApp
from wsgigate.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

SERVERS = ("uvicorn", "hypercorn")


def serve(
    app: WSGIApplication,
    *,
    server: str = "uvicorn",
    bind: str = "127.0.0.1:8000",
    threads: int = DEFAULT_THREADS,
    root_path: str = "",
    debug: bool = False,
    log_level: str = "info",
) -> None:
    """Serve ``app`` through :class:`WSGIApp` with ``server`` on ``bind`` until stopped."""
    from wsgigate.server.bind import parse_bind

    if threads < 1:
        raise ConfigurationError(f"--threads {threads}: expected at least 1")
    spec = parse_bind(bind)
    if spec.kind not in ("tcp", "unix"):
        raise ConfigurationError(f"bind {bind!r}: the ASGI servers take HOST:PORT or unix:/path")
    if spec.mode is not None:
        raise ConfigurationError(f"bind {bind!r}: the ASGI servers do not set a socket mode")
    asgi_app = WSGIApp(app, threads=threads, debug=debug)
    if server == "uvicorn":
        try:
            import uvicorn
        except ImportError:
            raise ConfigurationError(
                "uvicorn is not installed: pip install 'wsgigate[asgi]'"
            ) from None
        uvicorn.run(
            asgi_app,
            host=spec.host or "127.0.0.1",
            port=spec.port,
            uds=spec.path or None,
            root_path=root_path,
            lifespan="on",
            log_level=log_level,
        )
    elif server == "hypercorn":
        try:
            from hypercorn.asyncio import serve as hypercorn_serve
            from hypercorn.config import Config
        except ImportError:
            raise ConfigurationError(
                "hypercorn is not installed: pip install 'wsgigate[asgi]'"
            ) from None
        import asyncio
        import logging
        import signal

        config = Config()
        config.bind = [f"unix:{spec.path}" if spec.kind == "unix" else str(spec)]
        config.root_path = root_path
        config.loglevel = log_level.upper()
        # through the root logger the command line set up: one format, each line once
        config.accesslog = logging.getLogger("hypercorn.access")
        config.errorlog = logging.getLogger("hypercorn.error")

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, stop.set)
            await hypercorn_serve(asgi_app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

        asyncio.run(main())
    else:
        raise ConfigurationError(f"unknown ASGI server {server!r}; use one of {', '.join(SERVERS)}")
