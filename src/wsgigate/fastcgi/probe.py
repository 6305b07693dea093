"""The ``wsgigate check`` probe for FastCGI: one request through the real connection handler.

No server is started: the handler serves one end of a socket pair on a thread, the codec's
client side writes the request on the other end (PARAMS in 8 KiB records, as cgi-fcgi does)
and reads the STDOUT records back.
"""

from __future__ import annotations

import socket
import threading

from wsgigate.fastcgi.server import FastCGIHandler
from wsgigate.protocols import NEED_DATA, ConnectionClosed
from wsgigate.protocols.fastcgi import EndRequest, FastCGIClientConnection, Stdout
from wsgigate.server import BindSpec, Connection, Listener, ServerConfig, Worker

TYPE_CHECKING = False
if TYPE_CHECKING:
    from wsgiref.types import WSGIApplication

    from wsgigate.check import ProbeRequest, ProbeResponse


def probe(app: WSGIApplication, request: ProbeRequest) -> ProbeResponse:
    from wsgigate.check import parse_cgi_response

    config = ServerConfig(workers=1, threads=1)
    handler = FastCGIHandler(app, config)
    worker = Worker([], handler, config)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(30)
        theirs.settimeout(30)
        conn = Connection(ours, "", Listener(ours, BindSpec("fd"), "check"), worker)
        thread = threading.Thread(target=handler.handle, args=(conn,), daemon=True)
        thread.start()
        client = FastCGIClientConnection(record_size=8192)
        client.begin_request(1, keep_conn=False)
        client.params(1, request.meta())
        client.stdin(1, request.body)
        client.end_stdin(1)
        theirs.sendall(client.data_to_send())
        stdout: list[bytes] = []
        while True:
            event = client.next_event()
            if event is NEED_DATA:
                client.receive_data(theirs.recv(65536))
            elif isinstance(event, Stdout):
                stdout.append(event.data)
            elif isinstance(event, EndRequest | ConnectionClosed):
                break
        theirs.shutdown(socket.SHUT_WR)
        thread.join(30)
    if not isinstance(event, EndRequest):
        raise ConnectionError("the FastCGI handler closed the connection without END_REQUEST")
    return parse_cgi_response(b"".join(stdout))
