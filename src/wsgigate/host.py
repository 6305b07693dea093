"""Tell from its surroundings how this process was started, and serve the app that way.

Rules, first match wins:

1. ``GATEWAY_INTERFACE`` is set: a web server ran us as a CGI script.
2. ``AWS_LAMBDA_RUNTIME_API`` is set: we are a Lambda function (custom runtime or image).
3. systemd passed sockets (``LISTEN_FDS`` with ``LISTEN_PID`` equal to our pid), or fd 0 is a
   listening socket (how Apache mod_fcgid, lighttpd ``bin-path`` and spawn-fcgi start a
   backend): serve FastCGI on it (``protocol="scgi"`` for SCGI).
4. Otherwise: a local development HTTP server.
"""

from __future__ import annotations

import os

from wsgigate.errors import ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any
    from wsgiref.types import WSGIApplication

# Gateways that serve a listening socket, by protocol name: module, function.
SOCKET_GATEWAYS: dict[str, tuple[str, str]] = {
    "fastcgi": ("wsgigate.fastcgi", "serve"),
    "scgi": ("wsgigate.scgi", "serve"),
}


def fd0_is_listening_socket() -> bool:
    """True if file descriptor 0 is a socket in the listening state."""
    import socket
    import stat

    try:
        if not stat.S_ISSOCK(os.fstat(0).st_mode):
            return False
        fd = os.dup(0)
    except OSError:
        return False
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        os.close(fd)  # socket() does not take ownership when it fails
        return False
    try:
        return bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except OSError:
        return False
    finally:
        sock.close()


def systemd_sockets(environ: Mapping[str, str]) -> int:
    """How many sockets systemd passed us (0 when LISTEN_FDS is absent or meant for another pid)."""
    fds = environ.get("LISTEN_FDS", "")
    if not fds.isdigit():
        return 0
    if environ.get("LISTEN_PID", str(os.getpid())) != str(os.getpid()):
        return 0
    return int(fds)


def detect(environ: Mapping[str, str] | None = None) -> str:
    """Return ``"cgi"``, ``"lambda"``, ``"socket"`` or ``"http"`` (see the module docstring)."""
    env = os.environ if environ is None else environ
    if "GATEWAY_INTERFACE" in env:
        return "cgi"
    if "AWS_LAMBDA_RUNTIME_API" in env:
        return "lambda"
    if systemd_sockets(env) or fd0_is_listening_socket():
        return "socket"
    return "http"


def serve(
    app: WSGIApplication,
    *,
    protocol: str = "fastcgi",
    bind: str | None = None,
    debug: bool = False,
    **options: Any,
) -> None:
    """Serve ``app`` the way :func:`detect` says this process is meant to."""
    import importlib

    kind = detect()
    if kind == "cgi":
        from wsgigate import cgi

        cgi.run(app, debug=debug)
        return
    if kind == "lambda":
        target = ("wsgigate.aws_lambda.runtime", "run")
        kwargs: dict[str, Any] = {"debug": debug, **options}
    elif kind == "socket":
        if protocol not in SOCKET_GATEWAYS:
            raise ConfigurationError(f"unknown protocol {protocol!r}; use fastcgi or scgi")
        target = SOCKET_GATEWAYS[protocol]
        inherited = "systemd" if systemd_sockets(os.environ) else "fd://0"
        kwargs = {"bind": bind or inherited, "debug": debug, **options}
    else:
        from wsgigate import devserver

        devserver.serve(app, bind=bind or "127.0.0.1:8000", debug=debug)
        return
    try:
        module = importlib.import_module(target[0])
    except ModuleNotFoundError as exc:
        if exc.name and target[0].startswith(exc.name):
            raise ConfigurationError(
                f"this process looks like a {kind} host, but {target[0]} is not in this "
                "wsgigate installation"
            ) from None
        raise
    getattr(module, target[1])(app, **kwargs)
