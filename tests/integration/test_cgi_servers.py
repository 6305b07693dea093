"""wsgigate.cgi behind real lighttpd (mod_cgi) and real Apache httpd (mod_cgid and mod_cgi).

Each server is started once for this module from its config in deploy/, on a free loopback
port. The scripts run the app wrapped in ``wsgiref.validate.validator`` with its warnings turned
into errors, so a PEP 3333 breach on either side becomes a 500 and fails the test. The app
(tests/integration/cgi_probe.py) answers with the environ it saw unless ``X-Probe`` says
otherwise.

Started as root, Apache (always) and lighttpd (as configured) run the scripts as www-data: the
site, a copy of wsgigate and the interpreter must be readable by that user, and the bytecode is
compiled beforehand (servers.python_for, servers.precompile).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.integration import servers
from tests.integration.cgi_probe import BINARY
from tests.support import DEPLOY, EXAMPLES, ROOT

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent

PROBE_SCRIPT = """\
#!{python}
import sys
sys.path.insert(0, {lib!r})
import warnings
from wsgiref.validate import WSGIWarning, validator
warnings.simplefilter("error", WSGIWarning)
from cgi_probe import app
from wsgigate.cgi import run
run(validator(app), debug={debug})
"""


class Site:
    """The document root the servers share, and what lives beside it (see build_site)."""

    def __init__(self, root: Path, python: str) -> None:
        self.root = root
        self.www = root / "www"
        self.lib = root / "lib"
        self.python = python


def render_example_script(python: str, app_dir: Path) -> str:
    """examples/cgi-bin/app.cgi as a user would install it: own #! line and APP_DIR."""
    lines = (EXAMPLES / "cgi-bin" / "app.cgi").read_text().splitlines(keepends=True)
    assert lines[0].startswith("#!"), lines[0]
    lines[0] = f"#!{python}\n"
    app_dir_lines = [i for i, line in enumerate(lines) if line.startswith("APP_DIR = ")]
    assert len(app_dir_lines) == 1, "examples/cgi-bin/app.cgi must set APP_DIR once"
    lines[app_dir_lines[0]] = f"APP_DIR = {str(app_dir)!r}\n"
    return "".join(lines)


def build_site() -> Site:
    user = servers.server_user()
    python = servers.python_for(user)
    site = Site(servers.public_dir("wsgigate-cgi-site-"), python)
    # What the scripts import: a copy of wsgigate (so the repo need not be readable by the
    # server's user), the probe app and the example app.
    shutil.copytree(
        ROOT / "src" / "wsgigate", site.lib / "wsgigate", ignore=shutil.ignore_patterns("*.pyc")
    )
    shutil.copy(HERE / "cgi_probe.py", site.lib)
    shutil.copy(EXAMPLES / "hello.py", site.lib)
    probe = PROBE_SCRIPT.format(python=python, lib=str(site.lib), debug=False)
    scripts = {
        "cgi-bin/app.cgi": probe,
        "cgi-bin/debug.cgi": PROBE_SCRIPT.format(python=python, lib=str(site.lib), debug=True),
        "cgi-bin/hello.cgi": render_example_script(python, site.lib),
        # Without the validator, for what PEP 3333's validator forbids but RFC 3875 allows
        # (a local redirect: 200 with only a Location header).
        "cgi-bin/plain.cgi": probe.replace("run(validator(app),", "run(app,"),
        "site/app.cgi": probe,
        # The command line instead of a Python script: `wsgigate run` must detect CGI.
        "cgi-bin/cli.cgi": (
            f"#!/bin/sh\nPYTHONPATH={site.lib} exec {python} -m wsgigate run"
            f" {site.lib}/hello.py:app\n"
        ),
    }
    for name, text in scripts.items():
        path = site.www / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o755)
    shutil.copy(DEPLOY / "apache" / "shared-hosting" / ".htaccess", site.www / "site")
    for static in ("static/hello.txt", "site/hello.txt"):  # served as files, not by the app
        (site.www / static).parent.mkdir(exist_ok=True)
        (site.www / static).write_text("static file\n")
    servers.precompile(site.lib)
    assert list((site.lib / "wsgigate" / "__pycache__").glob("cgi.*.pyc")), "not precompiled"
    servers.make_public(site.root)
    return site


class Target:
    """A running server plus where its rewrite rule mounts the app."""

    def __init__(self, server: servers.Server, mount: str, static: str) -> None:
        self.server = server
        self.mount = mount  # SCRIPT_NAME the app should see behind the rewrite rule
        self.static = static  # a file the rewrite rule leaves to the server
        self.name = server.name

    def get(self, target: str, **headers: str) -> servers.Response:
        return self.server.request("GET", target, headers=headers)

    def environ(
        self, method: str, target: str, body: bytes | None = None, **headers: str
    ) -> dict[str, Any]:
        """The environ (and body summary) the probe app saw for this request."""
        response = self.server.request(method, target, body=body, headers=headers)
        assert response.status == 200, (response, self.server.log_tail())
        assert response.header("Content-Type") == "application/json", response
        seen: dict[str, Any] = json.loads(response.body)
        return seen


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    built = build_site()
    try:
        yield built
    finally:
        shutil.rmtree(built.root, ignore_errors=True)


@pytest.fixture(scope="module", params=["lighttpd", "apache-mod_cgid", "apache-mod_cgi"])
def target(request: pytest.FixtureRequest, site: Site) -> Iterator[Target]:
    env = {"WSGIGATE_DOCROOT": str(site.www), "WSGIGATE_SCRIPT": "/cgi-bin/app.cgi"}
    if request.param == "lighttpd":
        with servers.lighttpd(DEPLOY / "lighttpd" / "cgi.conf", env=env) as server:
            yield Target(server, mount="", static="/static/hello.txt")
    else:
        defines = ["MOD_CGI"] if request.param == "apache-mod_cgi" else []
        config = DEPLOY / "apache" / "cgi.conf"
        with servers.apache(config, env=env, defines=defines) as server:
            yield Target(server, mount="/site", static="/site/hello.txt")


def wsgi_to_text(value: str) -> str:
    """What the app does with a PEP 3333 native string the client sent as UTF-8."""
    return value.encode("latin-1").decode("utf-8")


# --- SCRIPT_NAME and PATH_INFO ---------------------------------------------------------------


def test_script_name_and_path_info(target: Target) -> None:
    seen = target.environ("GET", "/cgi-bin/app.cgi/some/path")
    env = seen["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/cgi-bin/app.cgi", "/some/path")
    assert env["REQUEST_METHOD"] == "GET"
    assert env["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert env["SERVER_PORT"] == str(target.server.port)
    assert env["wsgi.url_scheme"] == "http"
    assert (env["wsgi.multithread"], env["wsgi.multiprocess"], env["wsgi.run_once"]) == (
        False,
        True,
        True,
    )


def test_script_without_path_info(target: Target) -> None:
    env = target.environ("GET", "/cgi-bin/app.cgi")["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/cgi-bin/app.cgi", "")


@pytest.mark.parametrize(
    ("path", "path_info"),
    [("/some/path", "/some/path"), ("/", "/"), ("/caf%C3%A9/x", "/caf\xc3\xa9/x")],
)
def test_rewrite_rule_hides_the_script_name(target: Target, path: str, path_info: str) -> None:
    """lighttpd url.rewrite-once / Apache .htaccess RewriteRule: the app is mounted, no app.cgi."""
    env = target.environ("GET", target.mount + path + "?x=1&x=2")["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == (target.mount, path_info)
    assert env["QUERY_STRING"] == "x=1&x=2"


def test_rewrite_rule_leaves_static_files_to_the_server(target: Target) -> None:
    response = target.get(target.static)
    assert (response.status, response.body) == (200, b"static file\n")
    assert response.header("Content-Type") == "text/plain"


def test_repeated_slashes_are_not_mistaken_for_a_rewrite(target: Target) -> None:
    env = target.environ("GET", "/cgi-bin//app.cgi/a")["environ"]
    assert env["SCRIPT_NAME"] == "/cgi-bin/app.cgi"
    assert env["PATH_INFO"].endswith("/a")


def test_absolute_form_request_target(target: Target) -> None:
    """``GET http://host/path``: Apache passes REQUEST_URI with scheme and authority."""
    host = f"127.0.0.1:{target.server.port}"
    reply = target.server.raw(
        f"GET http://{host}/cgi-bin/app.cgi/abs?q=1 HTTP/1.1\r\n"
        f"Host: {host}\r\nConnection: close\r\n\r\n".encode()
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply[:500]
    if b"chunked" in head.lower():
        body = dechunk(body)
    env = json.loads(body)["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/cgi-bin/app.cgi", "/abs")
    assert env["QUERY_STRING"] == "q=1"


def dechunk(data: bytes) -> bytes:
    out = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return out
        out, data = out + data[:size], data[size + 2 :]


# --- non-ASCII paths and query strings ------------------------------------------------------


def test_percent_encoded_utf8_path(target: Target) -> None:
    env = target.environ("GET", "/cgi-bin/app.cgi/caf%C3%A9/%E2%9C%93%20x")["environ"]
    assert wsgi_to_text(env["PATH_INFO"]) == "/café/✓ x"
    assert env["PATH_INFO"] == "/caf\xc3\xa9/\xe2\x9c\x93 x"  # bytes as latin-1, PEP 3333


def test_raw_utf8_bytes_in_the_request_line(target: Target) -> None:
    host = f"127.0.0.1:{target.server.port}"
    reply = target.server.raw(
        b"GET /cgi-bin/app.cgi/\xc3\xa9t\xc3\xa9 HTTP/1.1\r\nHost: "
        + host.encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), reply[:500]
    if b"chunked" in head.lower():
        body = dechunk(body)
    assert wsgi_to_text(json.loads(body)["environ"]["PATH_INFO"]) == "/été"


def test_encoded_slash(target: Target) -> None:
    """What docs/cgi.md says: lighttpd decodes %2F, Apache refuses it (AllowEncodedSlashes)."""
    response = target.get("/cgi-bin/app.cgi/a%2Fb")
    if target.name == "lighttpd":
        assert response.status == 200, response
        assert json.loads(response.body)["environ"]["PATH_INFO"] == "/a/b"
    else:
        assert response.status == 404, response


def test_query_string_with_empty_and_repeated_keys(target: Target) -> None:
    query = "a=1&a=2&b=&c&%C3%A9=%E2%9C%93&sp=x+y%20z"
    env = target.environ("GET", "/cgi-bin/app.cgi/q?" + query)["environ"]
    assert env["QUERY_STRING"] == query
    parsed = parse_qs(env["QUERY_STRING"], keep_blank_values=True)
    assert parsed == {"a": ["1", "2"], "b": [""], "c": [""], "é": ["✓"], "sp": ["x y z"]}


# --- request bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 11, 1 << 20])
def test_post_body_echo(target: Target, size: int) -> None:
    body = (b"0123456789abcdef" * ((size >> 4) + 1))[:size]
    response = target.server.request(
        "POST",
        "/cgi-bin/app.cgi/echo",
        body=body,
        headers={"X-Probe": "hello", "Content-Type": "application/x-test"},
    )
    assert response.status == 200, (response, target.server.log_tail())
    assert response.body == body
    assert response.header("Content-Type") == "application/x-test"


@pytest.mark.parametrize("size", [0, 5, 300_001])
def test_body_read_exactly_content_length(target: Target, size: int) -> None:
    body = bytes(i % 251 for i in range(size))
    seen = target.environ("POST", "/cgi-bin/app.cgi/upload", body=body)
    assert seen["environ"].get("CONTENT_LENGTH", "0") == str(size)
    assert seen["body"]["length"] == size
    assert seen["body"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert seen["body"]["after"] == 0


@pytest.mark.parametrize("chunked", [False, True])
def test_app_that_ignores_a_large_body(target: Target, chunked: bool) -> None:
    """Apache writes the whole body before reading the response: an app that answers 1 MiB
    without reading a 1 MiB body must neither deadlock nor have its response cut off."""
    body = b"u" * (1 << 20)
    response = target.server.request(
        "POST",
        "/cgi-bin/app.cgi/ignore",
        body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body,
        headers={"X-Probe": "binary"},
        timeout=20,
    )
    assert response.status == 200, (response, target.server.log_tail())
    assert response.body == BINARY


def test_chunked_request_body(target: Target) -> None:
    """No Content-Length: lighttpd buffers and sets CONTENT_LENGTH, Apache streams to EOF."""
    parts = [b"first,", b"second," * 1000, b"third"]
    response = target.server.request(
        "POST",
        "/cgi-bin/app.cgi/chunked",
        body=iter(parts),  # type: ignore[arg-type]  # http.client sends it chunked
    )
    assert response.status == 200, (response, target.server.log_tail())
    seen = json.loads(response.body)
    whole = b"".join(parts)
    assert seen["body"]["length"] == len(whole)
    assert seen["body"]["sha256"] == hashlib.sha256(whole).hexdigest()


# --- headers in and out ---------------------------------------------------------------------


def test_proxy_header_never_reaches_the_app(target: Target) -> None:
    """httpoxy: a client's ``Proxy:`` header must not become HTTP_PROXY."""
    env = target.environ("GET", "/cgi-bin/app.cgi/x", Proxy="http://evil.example:3128")["environ"]
    assert "HTTP_PROXY" not in env
    assert env["SCRIPT_NAME"] == "/cgi-bin/app.cgi"


def test_redirect_reaches_the_client(target: Target) -> None:
    """A 302 with a local Location is the client's, not an RFC 3875 local (internal) redirect."""
    response = target.get("/cgi-bin/app.cgi/go", **{"X-Probe": "redirect"})
    assert response.status == 302, (response, target.server.log_tail())
    assert response.header("Location") == "/elsewhere"
    assert response.body == b"see /elsewhere\n"


def test_local_redirect_is_served_by_the_server(target: Target) -> None:
    """RFC 3875 6.2.2: ``200`` + only ``Location: /path`` -> the server serves /path itself."""
    response = target.server.request(
        "GET", "/cgi-bin/plain.cgi/start", headers={"X-Probe": "local-redirect"}
    )
    assert response.status == 200, (response, target.server.log_tail())
    assert response.header("Location") is None, response
    env = json.loads(response.body)["environ"]
    assert (env["SCRIPT_NAME"], env["PATH_INFO"]) == ("/cgi-bin/app.cgi", "/landed")
    assert env["QUERY_STRING"] == "from=local"


def test_several_set_cookie_headers_survive(target: Target) -> None:
    response = target.get("/cgi-bin/app.cgi/c", **{"X-Probe": "cookies"})
    assert response.status == 200, response
    assert response.header_all("Set-Cookie") == [
        "a=1; Path=/",
        "b=2; Path=/; HttpOnly",
        "c=3; Path=/; Max-Age=60",
    ]


def test_streaming_response_arrives_whole(target: Target) -> None:
    response = target.get("/cgi-bin/app.cgi/s", **{"X-Probe": "stream"})
    assert response.status == 200, response
    assert response.body == b"".join(f"chunk {i:03d}\n".encode() for i in range(200))


def scripts_running(directory: Path) -> list[str]:
    """Command lines of the processes running a script from ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(directory) in cmdline:
                found.append(cmdline)
    return found


def test_client_leaving_mid_stream_ends_the_script(target: Target, site: Site) -> None:
    """The first chunks arrive while the app still streams (it takes 10 s); the client leaves
    and the server ends the script, with nothing alarming in its logs."""
    mark = target.server.log_mark()
    address = (target.server.host, target.server.port)
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"GET /cgi-bin/app.cgi/x HTTP/1.1\r\nHost: x\r\nX-Probe: slow-stream\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK")
        assert scripts_running(site.www / "cgi-bin"), "the script should still be streaming"
    deadline = time.monotonic() + 8  # the script would stream for 10 s
    while scripts_running(site.www / "cgi-bin") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not scripts_running(site.www / "cgi-bin")
    assert "Traceback" not in target.server.log_text(mark), target.server.log_tail()


def test_head(target: Target) -> None:
    response = target.server.request(
        "HEAD", "/cgi-bin/app.cgi/caf%C3%A9", headers={"X-Probe": "hello"}
    )
    assert response.status == 200, (response, target.server.log_tail())
    assert response.body == b""
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    # lighttpd passes the app's Content-Length on; Apache drops it from HEAD responses.
    assert response.header("Content-Length") in (None, str(len("Hello, café!\n".encode())))


def test_binary_body_intact(target: Target) -> None:
    response = target.get("/cgi-bin/app.cgi/b", **{"X-Probe": "binary"})
    assert response.status == 200, response
    assert len(response.body) == len(BINARY)
    assert response.body == BINARY


# --- errors ---------------------------------------------------------------------------------


def test_app_exception_is_a_500_without_traceback(target: Target) -> None:
    mark = target.server.log_mark()
    response = target.get("/cgi-bin/app.cgi/x", **{"X-Probe": "boom"})
    assert response.status == 500, response
    assert response.body == b"Internal Server Error\n"
    log = target.server.wait_for_log("RuntimeError: probe boom", since=mark)
    assert "Traceback (most recent call last)" in log


def test_debug_mode_shows_the_traceback(target: Target) -> None:
    response = target.get("/cgi-bin/debug.cgi/x", **{"X-Probe": "boom"})
    assert response.status == 500, response
    assert b"Traceback (most recent call last)" in response.body
    assert b"RuntimeError: probe boom" in response.body


def test_validator_is_in_the_path(target: Target) -> None:
    """A PEP 3333 breach wsgigate itself lets through still fails: the validator runs."""
    mark = target.server.log_mark()
    response = target.get("/cgi-bin/app.cgi/x", **{"X-Probe": "breach"})
    assert response.status == 500, response
    target.server.wait_for_log("No Content-Type header found", since=mark)


# --- the example script as users install it --------------------------------------------------


def test_example_script_greets(target: Target) -> None:
    response = target.get("/cgi-bin/hello.cgi/caf%C3%A9")
    assert response.status == 200, (response, target.server.log_tail())
    assert response.body.decode() == "Hello, café!\n"


def test_example_script_echo_and_cookies(target: Target) -> None:
    response = target.server.request("POST", "/cgi-bin/hello.cgi/echo", body=b"ping")
    assert (response.status, response.body) == (200, b"ping")
    response = target.get("/cgi-bin/hello.cgi/cookies")
    assert response.header_all("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/"]
    response = target.get("/cgi-bin/hello.cgi/stream")
    assert response.body == b"".join(f"line {i}\n".encode() for i in range(5))


def test_wsgigate_run_detects_cgi(target: Target) -> None:
    response = target.server.request("POST", "/cgi-bin/cli.cgi/echo", body=b"via the CLI")
    assert (response.status, response.body) == (200, b"via the CLI"), target.server.log_tail()
    response = target.get("/cgi-bin/cli.cgi/caf%C3%A9")
    assert response.body.decode() == "Hello, café!\n"
