"""``wsgigate run`` / host.detect(): CGI, Lambda, inherited socket, else the dev server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import ROOT, free_port, running
from wsgigate.host import detect, fd0_is_listening_socket, systemd_sockets

BASE_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("GATEWAY_INTERFACE", "AWS_LAMBDA_RUNTIME_API", "LISTEN_FDS", "LISTEN_PID")
}
BASE_ENV["PYTHONPATH"] = str(ROOT / "src")

DETECT = [sys.executable, "-c", "from wsgigate.host import detect; print(detect())"]


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({"GATEWAY_INTERFACE": "CGI/1.1"}, "cgi"),
        ({"GATEWAY_INTERFACE": "CGI/1.1", "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, "cgi"),
        ({"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}, "lambda"),
        ({"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid())}, "socket"),
        ({"LISTEN_FDS": "1", "LISTEN_PID": "1"}, "http"),  # meant for another process
        ({"LISTEN_FDS": "0", "LISTEN_PID": str(os.getpid())}, "http"),
        ({"LISTEN_FDS": "x", "LISTEN_PID": str(os.getpid())}, "http"),
        ({"PATH": "/usr/bin"}, "http"),
    ],
)
def test_detect_from_environment(env: dict[str, str], kind: str) -> None:
    if kind == "http" and fd0_is_listening_socket():
        pytest.skip("this test process was itself given a listening socket on fd 0")
    assert detect(env) == kind


def test_systemd_sockets_count() -> None:
    assert systemd_sockets({"LISTEN_FDS": "3", "LISTEN_PID": str(os.getpid())}) == 3
    assert systemd_sockets({"LISTEN_FDS": "3", "LISTEN_PID": str(os.getpid() + 1)}) == 0
    assert systemd_sockets({}) == 0


def test_listening_socket_on_fd0_is_a_socket_host() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        result = subprocess.run(
            DETECT, stdin=listener, env=BASE_ENV, capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "socket"


def test_connected_socket_on_fd0_is_not_a_listener() -> None:
    # inetd-style: a connected socket on stdin is one client, not a socket to serve
    a, b = socket.socketpair()
    with a, b:
        result = subprocess.run(
            DETECT, stdin=a, env=BASE_ENV, capture_output=True, text=True, timeout=30
        )
    assert result.stdout.strip() == "http", result.stderr


def test_pipe_on_fd0_is_not_a_socket() -> None:
    result = subprocess.run(
        DETECT, input="", env=BASE_ENV, capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "http", result.stderr


def test_fd0_check_does_not_leak_descriptors() -> None:
    code = (
        "import os\n"
        "from wsgigate.host import fd0_is_listening_socket\n"
        "before = len(os.listdir('/proc/self/fd'))\n"
        "for _ in range(50): fd0_is_listening_socket()\n"
        "print(len(os.listdir('/proc/self/fd')) - before)\n"
    )
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        result = subprocess.run(
            [sys.executable, "-c", code],
            stdin=listener,
            env=BASE_ENV,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.stdout.strip() == "0", result.stderr


def test_run_under_cgi_answers_on_stdout() -> None:
    env = {
        **BASE_ENV,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "test",
        "REQUEST_METHOD": "POST",
        "SCRIPT_NAME": "/app.cgi",
        "PATH_INFO": "/echo",
        "QUERY_STRING": "",
        "REQUEST_URI": "/app.cgi/echo",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/octet-stream",
        "CONTENT_LENGTH": "6",
        "HTTP_PROXY": "http://attacker",
    }
    result = subprocess.run(
        [sys.executable, "-m", "wsgigate", "run", "examples/hello.py:app"],
        cwd=ROOT,
        env=env,
        input=b"\x00body\xff then bytes past CONTENT_LENGTH",
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"Status: 200 OK\r\n")
    assert b"Content-Length: 6" in head
    assert body == b"\x00body\xff"
    assert b"development server" not in result.stderr


def test_run_under_cgi_app_error_is_a_500() -> None:
    env = {
        **BASE_ENV,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
    }
    result = subprocess.run(
        [sys.executable, "-m", "wsgigate", "run", "os:getcwd"],
        cwd=ROOT,
        env=env,
        input=b"",
        capture_output=True,
        timeout=60,
    )
    # os.getcwd is callable but not a WSGI app: calling it with two arguments raises
    assert result.stdout.startswith(b"Status: 500 Internal Server Error\r\n"), result.stdout
    assert b"Traceback" not in result.stdout
    assert b"TypeError" in result.stderr  # logged with its traceback on stderr


def test_run_outside_any_host_starts_dev_server_with_banner(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "dev.log"
    argv = [
        sys.executable,
        "-m",
        "wsgigate",
        "run",
        "examples/hello.py:app",
        "--bind",
        f"127.0.0.1:{port}",
    ]
    with running(argv, port=port, env=BASE_ENV, cwd=ROOT, log=log) as process:
        assert process.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dev", timeout=10) as response:
            assert response.status == 200
            assert response.read() == b"Hello, dev!\n"
            assert response.headers["Server"].startswith("wsgigate-dev/")
        # the access log line is written just after the response: give it a moment
        deadline = time.monotonic() + 10
        while "GET /dev" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    output = log.read_text()
    assert f"wsgigate development server on http://127.0.0.1:{port}/" in output
    assert "for development only" in output
    assert "GET /dev" in output  # the access log line


def test_run_dev_server_bind_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "wsgigate",
                "run",
                "examples/hello.py:app",
                "--bind",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=BASE_ENV,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert str(port) in result.stderr


@pytest.mark.parametrize("inherit", ["fd0", "systemd"])
def test_run_on_inherited_socket_serves_fastcgi(inherit: str) -> None:
    # how mod_fcgid / lighttpd bin-path / spawn-fcgi (fd 0) and systemd (fd 3) start a backend
    import contextlib
    import signal
    import time

    from wsgigate.fastcgi import client as fastcgi

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        argv = [sys.executable, "-m", "wsgigate", "run", "examples/hello.py:app"]
        env = dict(BASE_ENV)
        if inherit == "fd0":
            kwargs: dict[str, object] = {"stdin": listener}
        else:
            # systemd: the socket is fd 3 and LISTEN_PID names the process that gets it
            fd = listener.fileno()
            launcher = (
                "import os, sys\n"
                f"if {fd} != 3:\n    os.dup2({fd}, 3)\n    os.close({fd})\n"
                "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')\n"
                "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
            )
            argv = [sys.executable, "-c", launcher, *argv[1:]]
            kwargs = {"stdin": subprocess.DEVNULL, "pass_fds": (fd,)}
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **kwargs,  # type: ignore[arg-type]
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                response = fastcgi.request(
                    f"127.0.0.1:{port}", fastcgi.http_params("GET", "/inherited"), timeout=5
                )
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert response.status == 200
        assert response.body == b"Hello, inherited!\n"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            _, err = process.communicate()
    assert b"development server" not in err


def test_run_under_cgi_hides_http_proxy_from_os_environ(tmp_path: Path) -> None:
    # requests and urllib read the proxy from os.environ: in a CGI process the client's
    # `Proxy:` header is there as HTTP_PROXY unless the gateway removes it
    app = tmp_path / "proxy_app.py"
    app.write_text(
        "import os\n"
        "AT_IMPORT = os.environ.get('HTTP_PROXY')\n"
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    seen = (AT_IMPORT, environ.get('HTTP_PROXY'), os.environ.get('HTTP_PROXY'))\n"
        "    return [repr(seen).encode()]\n"
    )
    env = {
        **BASE_ENV,
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "HTTP_PROXY": "http://attacker.example:3128",
    }
    for command in ("run", "cgi"):
        result = subprocess.run(
            [sys.executable, "-m", "wsgigate", command, f"{app}:app"],
            env=env,
            input=b"",
            capture_output=True,
            timeout=60,
        )
        assert result.stdout.endswith(b"\r\n\r\n(None, None, None)"), (command, result.stdout)
    # a CGI script calling wsgigate.cgi.run itself: the app is imported first, but its requests
    # run after run() cleaned the environment
    script = tmp_path / "script.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(tmp_path)!r})\n"
        "from proxy_app import app\nfrom wsgigate.cgi import run\nrun(app)\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], env=env, input=b"", capture_output=True, timeout=60
    )
    assert result.stdout.endswith(b"\r\n\r\n('http://attacker.example:3128', None, None)")
