"""The ``wsgigate check`` probe for SCGI: one request through the real connection handler.

No server is started: the handler serves one end of a socket pair on a thread; the other end
sends the request as a web server would (netstring header, then the body) and reads the CGI
response until the handler closes its side.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from wsgigate.protocols.scgi import encode_request
from wsgigate.scgi.server import SCGIHandler
from wsgigate.server import BindSpec, Connection, Listener, ServerConfig, Worker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from wsgigate.check import ProbeRequest, ProbeResponse


def probe(app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
    from wsgigate.check import parse_cgi_response

    config = ServerConfig(workers=1, threads=1)
    handler = SCGIHandler(app, config)
    worker = Worker([], handler, config)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(30)
        theirs.settimeout(30)
        conn = Connection(ours, "", Listener(ours, BindSpec("fd"), "check"), worker)

        def serve() -> None:
            handler.handle(conn)
            with contextlib.suppress(OSError):  # the runtime closes it: the end of the response
                ours.shutdown(socket.SHUT_RDWR)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        meta = {k: v for k, v in request.meta().items() if k != "CONTENT_LENGTH"}
        theirs.sendall(encode_request(meta, request.body))
        chunks = []
        while chunk := theirs.recv(65536):
            chunks.append(chunk)
        thread.join(30)
    return parse_cgi_response(b"".join(chunks))
