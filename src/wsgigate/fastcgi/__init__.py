"""FastCGI gateway: the server (``serve``) and a client (:mod:`wsgigate.fastcgi.client`).

The wire format lives in :mod:`wsgigate.protocols.fastcgi` (sans-I/O); this package does I/O.
"""

from __future__ import annotations
