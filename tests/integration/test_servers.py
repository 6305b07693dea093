"""The test servers harness itself: each server starts, answers, logs and stops."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.integration import servers

pytestmark = pytest.mark.integration

NGINX = """\
user @WSGIGATE_USER@;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path @WSGIGATE_LOGDIR@/body;
    proxy_temp_path @WSGIGATE_LOGDIR@/proxy;
    fastcgi_temp_path @WSGIGATE_LOGDIR@/fastcgi;
    scgi_temp_path @WSGIGATE_LOGDIR@/scgi;
    uwsgi_temp_path @WSGIGATE_LOGDIR@/uwsgi;
    server {
        listen 127.0.0.1:@WSGIGATE_PORT@;
        location / { return 200 "@GREETING@\\n"; }
        location /missing { error_log @WSGIGATE_LOGDIR@/error.log info; root /nonexistent; }
    }
}
"""


def test_nginx_from_a_template(tmp_path: Path) -> None:
    template = tmp_path / "nginx.conf.in"
    template.write_text(NGINX)
    with servers.nginx(template, values={"GREETING": "hello from nginx"}) as server:
        assert server in servers.RUNNING
        response = server.request("GET", "/")
        assert (response.status, response.body) == (200, b"hello from nginx\n")
        mark = server.log_mark()
        assert server.request("GET", "/missing/file").status == 404
        server.wait_for_log("/nonexistent/missing/file", since=mark)
        port = server.port
    assert server not in servers.RUNNING
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    template = tmp_path / "nginx.conf.in"
    template.write_text("events {}\nhttp { server { listen 127.0.0.1:@WSGIGATE_PORT@; bogus; } }\n")
    with pytest.raises(RuntimeError, match="bogus"), servers.nginx(template):
        pass
