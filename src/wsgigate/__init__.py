"""wsgigate: run one WSGI application on CGI, FastCGI, SCGI, AWS Lambda and ASGI servers.

``import wsgigate`` stays cheap (the CGI gateway imports this package on every request);
gateways are imported when used.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
    from wsgiref.types import WSGIApplication

__version__ = "0.1.0.dev0"
__all__ = ["__version__", "run"]


def run(app: "WSGIApplication", **options: "Any") -> None:
    """Detect how this process was started (CGI, inherited socket, Lambda, ...) and serve ``app``.

    See :func:`wsgigate.host.detect` for the rules; ``options`` go to the chosen gateway.
    """
    from wsgigate.host import serve

    serve(app, **options)
