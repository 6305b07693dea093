"""SCGI gateway: ``serve(app, bind=..., workers=..., threads=...)`` on the shared server runtime.

The wire format lives in :mod:`wsgigate.protocols.scgi` (sans-I/O); this package does I/O::

    from wsgigate.scgi import serve
    serve(app, bind="unix:/run/app.sock", workers=2, threads=8)

``serve`` is :func:`wsgigate.scgi.server.serve`, imported on first use.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from wsgigate.scgi.server import SCGIHandler, serve

__all__ = ["SCGIHandler", "serve"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from wsgigate.scgi import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
