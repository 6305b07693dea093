"""FastCGI gateway: the server (``serve``) and a client (:mod:`wsgigate.fastcgi.client`).

The wire format lives in :mod:`wsgigate.protocols.fastcgi` (sans-I/O); this package does I/O::

    from wsgigate.fastcgi import serve
    serve(app, bind="unix:/run/app.sock", workers=2, threads=8)

``serve`` is :func:`wsgigate.fastcgi.server.serve`, imported on first use so that the client
(a health check) does not load the server runtime.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from wsgigate.fastcgi.server import fix_script_name, serve

__all__ = ["fix_script_name", "serve"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from wsgigate.fastcgi import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
