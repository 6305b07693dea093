"""The tricky-request set a socket gateway (SCGI, FastCGI) runs behind each real front end.

Each ``check_*`` sends its requests through ``web`` (a :class:`servers.Server` in front of a
backend serving tests/integration/tricky_app.py, :data:`APP`) and asserts what the app saw.
Front ends differ in a few places, passed as arguments (Apache answers an encoded slash with
404; lighttpd refuses chunked uploads when it streams request bodies).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration import servers

APP = f"{Path(__file__).resolve().parent / 'tricky_app.py'}:app"
GIB = 1 << 30
RSS_LIMIT = 32 << 20


def environ_of(response: servers.Response) -> dict[str, Any]:
    assert response.status == 200, response
    data: dict[str, Any] = json.loads(response.body)["environ"]
    return data


def check_paths(
    web: servers.Server, *, encoded_slash: bool = True, invalid_utf8: bool = True
) -> dict[str, Any]:
    """Percent-encoded and non-ASCII paths, empty and repeated query keys, custom headers.

    ``encoded_slash``: the front end passes ``%2F`` (Apache answers 404 itself);
    ``invalid_utf8``: it passes ``%FF`` (lighttpd answers 400 itself).
    """
    slash = "/a%2Fb" if encoded_slash else ""
    ff = "/%FF" if invalid_utf8 else ""
    target = f"{slash}/caf%C3%A9/a%20b{ff}?x=1&x=&y&e=%C3%A9"
    env = environ_of(web.request("GET", target, headers={"X-Custom": "v", "X-Latin": "caf\xe9"}))
    assert env["SCRIPT_NAME"] == ""
    path = "/caf\xc3\xa9/a b" + ("/\xff" if invalid_utf8 else "")
    assert env["PATH_INFO"] == ("/a/b" if encoded_slash else "") + path
    assert env["QUERY_STRING"] == "x=1&x=&y&e=%C3%A9"
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SERVER_PORT"] == str(web.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["HTTP_X_CUSTOM"] == "v" and env["HTTP_X_LATIN"] == "caf\xe9"
    assert env["wsgi.url_scheme"] == "http"
    root = environ_of(web.request("GET", "/"))
    assert (root["SCRIPT_NAME"], root["PATH_INFO"], root["QUERY_STRING"]) == ("", "/", "")
    return env


def check_repeated_headers(web: servers.Server, *, cookie: str = "a=1; b=2") -> None:
    """A repeated header arrives joined with ", ", cookies with "; " (Apache: ", " too)."""
    connection = http.client.HTTPConnection(web.host, web.port, timeout=30)
    try:
        connection.putrequest("GET", "/multi", skip_accept_encoding=True)
        for name, value in [("X-Multi", "one"), ("X-Multi", "two"), ("Cookie", "a=1")]:
            connection.putheader(name, value)
        connection.putheader("Cookie", "b=2")
        connection.endheaders()
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    assert reply.status == 200, body[:300]
    env = json.loads(body)["environ"]
    assert env["HTTP_X_MULTI"] == "one, two"
    assert env["HTTP_COOKIE"] == cookie


def check_posts(web: servers.Server, path: str = "/up") -> None:
    """POST 0 B and 1 MiB: the body arrives whole, and wsgi.input ends at CONTENT_LENGTH."""
    for size in (0, 1 << 20):
        body = os.urandom(size)
        response = web.request("POST", path, body=body)
        assert response.status == 200, (response, web.log_tail())
        seen = json.loads(response.body)
        assert seen["body"]["length"] == size and seen["body"]["after"] == 0, seen
        assert seen["body"]["sha256"] == hashlib.sha256(body).hexdigest()
        assert seen["environ"].get("CONTENT_LENGTH", "0") == str(size)


def check_read_all(web: servers.Server, *, timeout: float = 10.0) -> None:
    """``wsgi.input.read()`` with no size returns at the end of the body (flup's hangs)."""
    body = os.urandom(100_000)
    response = web.request(
        "POST", "/all", body=body, headers={"X-Probe": "read-all"}, timeout=timeout
    )
    assert response.status == 200
    assert json.loads(response.body) == {"bytes": len(body), "crc": zlib.crc32(body)}


def check_chunked_upload(web: servers.Server, path: str = "/chunked") -> None:
    parts = [os.urandom(70000) for _ in range(5)]
    connection = http.client.HTTPConnection(web.host, web.port, timeout=30)
    try:
        connection.request(
            "POST", path, body=iter(parts), encode_chunked=True, headers={"X-Probe": "crc"}
        )
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    assert reply.status == 200, body[:300]
    data = b"".join(parts)
    assert json.loads(body) == {"bytes": len(data), "crc": zlib.crc32(data)}


def check_head_and_responses(
    web: servers.Server, stream_path: str = "/s", *, head_length: bool = True, big: int = 16000
) -> None:
    """HEAD, a ``big``-byte response header, a streamed body, 1 MiB binary, an app error.

    ``head_length``: the front end passes the app's Content-Length on HEAD (Apache drops it).
    ``big``: Apache reads a response header line into 8 KiB (longer: 500, "Premature end of
    script headers"); nginx up to scgi_buffer_size (32k in deploy/nginx/scgi.conf).
    """
    head = web.request("HEAD", "/h", headers={"X-Probe": "binary"})
    assert head.status == 200 and head.body == b""
    assert head.header("Content-Length") == (str(1 << 20) if head_length else None)
    response = web.request("GET", f"/big?{big}", headers={"X-Probe": "big-header"})
    assert response.status == 200, (response, web.log_tail())
    assert response.header("X-Big") == "b" * big and response.body == b"big"
    stream = web.request("GET", stream_path, headers={"X-Probe": "stream"})
    assert stream.status == 200 and stream.body.count(b"chunk ") == 200
    binary = web.request("GET", "/b", headers={"X-Probe": "binary"})
    assert binary.body == bytes(range(256)) * 4096
    assert web.request("GET", "/boom", headers={"X-Probe": "boom"}).status == 500


def check_streaming_is_incremental(web: servers.Server, path: str) -> None:
    """The first chunk of a slow stream (100 x 0.1 s) arrives long before the last."""
    connection = http.client.HTTPConnection(web.host, web.port, timeout=30)
    try:
        started = time.monotonic()
        connection.request("GET", path, headers={"X-Probe": "slow-stream"})
        reply = connection.getresponse()
        assert reply.status == 200
        assert reply.read(10240).startswith(b"slow 000")
        assert time.monotonic() - started < 3  # the whole stream takes 10 s
    finally:
        connection.close()  # the client leaves: the backend closes the app's iterator


# -- 1 GiB upload with flat memory ----------------------------------------------------------------


def memory(session: int) -> int:
    """Resident bytes of every process in session ``session`` (the arbiter and its workers)."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rpartition(")")[2].split()[3]) != session:
                continue
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def upload(web: servers.Server, path: str, block: bytes, count: int) -> dict[str, int]:
    with socket.create_connection((web.host, web.port), timeout=60) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(block) * count}\r\n"
            "X-Probe: crc\r\nConnection: close\r\n\r\n".encode()
        )
        for _ in range(count):
            sock.sendall(block)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    data: dict[str, int] = json.loads(body)
    return data


def check_upload_1gib_flat(web: servers.Server, session: int, path: str) -> int:
    """1 GiB streamed through the front end to the app; returns how much the backend grew."""
    block = os.urandom(1 << 20)
    crc = 0
    for _ in range(GIB // len(block)):
        crc = zlib.crc32(block, crc)
    upload(web, path, block, 4)  # warm-up
    before = memory(session)
    assert before > 0
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], memory(session))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = upload(web, path, block, GIB // len(block))
    finally:
        done.set()
        sampler.join()
    assert result == {"bytes": GIB, "crc": crc}
    grew = peak[0] - before
    assert grew < RSS_LIMIT, f"the backend grew by {grew >> 20} MiB for a 1 GiB upload"
    return grew


CHECKS: dict[str, Callable[..., object]] = {
    "paths": check_paths,
    "repeated headers": check_repeated_headers,
    "posts": check_posts,
    "read all": check_read_all,
    "chunked": check_chunked_upload,
    "responses": check_head_and_responses,
}
