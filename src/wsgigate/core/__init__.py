"""The one WSGI implementation every gateway calls.

A gateway turns its input into CGI-style meta-variables and a body stream, then calls
:func:`build_environ` and :func:`run_app`; it turns what :func:`run_app` hands its
:class:`ResponseWriter` back into its own wire format. Nothing here does I/O of its own, and
nothing here imports more than the CGI cold start can afford (no ``logging``, ``re`` or
``typing`` at import time).

Every module a CGI request loads costs it about 1% of a bare interpreter start (see
docs/benchmarks.md), so the modules on that path (this package, ``wsgigate``, ``wsgigate.cgi``)
also go without ``from __future__ import annotations`` (annotations naming typing-only things
are quoted instead) and import ``wsgigate.errors`` only where an error is raised or caught.
"""

from wsgigate.core.environ import (
    ErrorStream,
    FileWrapper,
    InputStream,
    build_environ,
    content_length,
    unicode_to_wsgi,
    unquote_to_wsgi,
)
from wsgigate.core.response import cgi_response_head, validate_headers, validate_status
from wsgigate.core.runner import Outcome, ResponseWriter, run_app

__all__ = [
    "ErrorStream",
    "FileWrapper",
    "InputStream",
    "Outcome",
    "ResponseWriter",
    "build_environ",
    "cgi_response_head",
    "content_length",
    "run_app",
    "unicode_to_wsgi",
    "unquote_to_wsgi",
    "validate_headers",
    "validate_status",
]
