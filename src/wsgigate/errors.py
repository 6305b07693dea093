"""Exceptions raised by wsgigate.

One root, split by whose fault it is::

    WsgigateError
    ├── ProtocolError          the peer (web server, client, event) sent something we refuse
    │                          .status_hint: the HTTP status that fits, when one does
    ├── ApplicationError       the WSGI application broke the WSGI contract (PEP 3333)
    ├── ClientDisconnected     the other side went away while we were still answering
    └── ConfigurationError     wsgigate was called or configured wrongly (bad app spec, bind, ...)
        └── AppLoadError       MODULE:APP could not be loaded
"""


class WsgigateError(Exception):
    """Root of every exception wsgigate raises on purpose."""


class ProtocolError(WsgigateError):
    """The peer broke its protocol; ``status_hint`` is the HTTP status to answer with, if any."""

    def __init__(self, message: str, status_hint: int = 400) -> None:
        super().__init__(message)
        self.status_hint = status_hint


class ApplicationError(WsgigateError):
    """The application broke the WSGI contract (bad status, header, second start_response...)."""


class ClientDisconnected(WsgigateError, ConnectionError):
    """The client or front end closed the connection before the response was complete."""


class ConfigurationError(WsgigateError):
    """wsgigate was configured or invoked wrongly; the message is one line for the user."""


class AppLoadError(ConfigurationError):
    """MODULE:APP could not be resolved to a WSGI callable."""
