"""Start real web servers (lighttpd, Apache httpd, ...) from the configs in deploy/ for a test.

Every gateway's integration tests use the same small API::

    with servers.lighttpd(DEPLOY / "lighttpd" / "cgi.conf", env={...}) as server:
        response = server.request("GET", "/cgi-bin/app.cgi/x")
        assert response.status == 200, server.log_tail()

- :func:`lighttpd`, :func:`apache`, :func:`nginx`: start the server in the foreground on a
  free 127.0.0.1 port from a complete config file, wait until it accepts connections, stop it
  afterwards. lighttpd and Apache configs read their parameters from environment variables,
  nginx templates from ``@NAME@`` placeholders (``WSGIGATE_PORT``, ``WSGIGATE_LOGDIR``,
  ``WSGIGATE_USER``, ``WSGIGATE_MODULES`` are filled in here; pass the others in ``env`` /
  ``values``). A server that fails to start raises with its error log in the message.
- :class:`Server`: ``request()`` (http.client), ``raw()`` (bytes on a socket, for request
  lines http.client refuses to send), ``logs`` (error log first), ``log_mark()``,
  ``log_text()``, ``log_tail()``, ``wait_for_log()``.
  tests/integration/conftest.py appends the error log of every running server to the report
  of a failed test.
- :func:`public_dir`, :func:`server_user`, :func:`python_for`, :func:`precompile`: what it
  takes for scripts to run as the unprivileged user a server switches to when started as root
  (Apache always does): a directory that user can read, an interpreter it can execute, and
  bytecode compiled in advance because it cannot write ``__pycache__``.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support import free_port, render, require_binary, running

APACHE_MODULES = "/usr/lib/apache2/modules"

#: Servers started by this module and still running (the conftest reads their logs on failure).
RUNNING: list[Server] = []


class Response:
    """What the client received: status, headers in order (repeats kept), the whole body."""

    def __init__(
        self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), ``None`` if absent."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [value for key, value in self.headers if key.lower() == lower]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} {self.headers!r} {self.body[:200]!r}>"


class Server:
    """A server process listening on ``127.0.0.1:port``, with its log files."""

    def __init__(self, name: str, port: int, logs: list[Path]) -> None:
        self.name = name
        self.port = port
        self.host = "127.0.0.1"
        self.logs = logs  # error log first, then any other (lighttpd: the CGI scripts' stderr)

    def __repr__(self) -> str:
        return f"<Server {self.name} on {self.host}:{self.port}>"

    def request(
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        timeout: float = 30.0,
    ) -> Response:
        """One request on a fresh connection; ``target`` is sent as given (percent-encoded)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request(method, target, body=body, headers=dict(headers or {}))
            reply = connection.getresponse()
            data = reply.read()
            return Response(reply.status, reply.reason, reply.getheaders(), data)
        finally:
            connection.close()

    def under_load(
        self,
        method: str,
        target: str,
        during: Callable[[], None],
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        clients: int = 4,
    ) -> tuple[list[int], list[str]]:
        """Send requests from ``clients`` threads without pause while ``during()`` runs (a
        reload, say); return every status and every client-side error."""
        statuses: list[int] = []
        errors: list[str] = []
        done = threading.Event()

        def load() -> None:
            while not done.is_set():
                try:
                    statuses.append(self.request(method, target, body, headers, timeout=10).status)
                except Exception as exc:
                    errors.append(repr(exc))

        threads = [threading.Thread(target=load) for _ in range(clients)]
        for thread in threads:
            thread.start()
        try:
            during()
        finally:
            done.set()
            for thread in threads:
                thread.join(15)
        return statuses, errors

    def raw(self, data: bytes, *, timeout: float = 30.0) -> bytes:
        """Send ``data`` as is (say, a request line with raw UTF-8); return all the server sent.

        Send ``Connection: close`` in ``data``: this reads until the server closes.
        """
        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(data)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def log_mark(self) -> dict[Path, int]:
        """Where the logs end now: pass it to :meth:`log_text` or :meth:`wait_for_log`."""
        return {path: path.stat().st_size if path.exists() else 0 for path in self.logs}

    def log_text(self, since: Mapping[Path, int] | None = None) -> str:
        """All the logs (from ``since``, a :meth:`log_mark`), one after the other."""
        parts = []
        for path in self.logs:
            with contextlib.suppress(FileNotFoundError), path.open("rb") as log:
                log.seek((since or {}).get(path, 0))
                parts.append(log.read().decode("utf-8", "replace"))
        return "".join(parts)

    def log_tail(self, limit: int = 4000) -> str:
        """The end of each log, labelled, to put in an assertion message."""
        parts = []
        for path in self.logs:
            with contextlib.suppress(FileNotFoundError):
                text = path.read_text(errors="replace")[-limit:]
                parts.append(f"--- {self.name} {path} (tail) ---\n{text}")
        return "\n".join(parts)

    def wait_for_log(
        self, needle: str, *, since: Mapping[Path, int] | None = None, timeout: float = 10.0
    ) -> str:
        """Wait until the logs (from ``since``) contain ``needle``; return that text.

        Servers copy a CGI script's stderr into their log asynchronously, after the response.
        """
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text(since)
            if needle in text:
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in the logs\n{self.log_tail()}")
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# Servers


def reload_three_times(app: Any, pause: float = 0.6) -> Callable[[], None]:
    """SIGHUP ``app`` (a tests.test_server_runtime.LiveServer) three times, each once the
    previous reload has begun: the ``during`` of :meth:`Server.under_load`."""

    def reload() -> None:
        for _ in range(3):
            time.sleep(pause)
            start = len(app.text())
            app.signal(signal.SIGHUP)
            app.wait_for("SIGHUP: replacing", start=start)
        time.sleep(pause)

    return reload


@contextlib.contextmanager
def lighttpd(config: Path, *, env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """Run ``lighttpd -D -f config``; the config reads ``env.WSGIGATE_*`` (see module doc)."""
    binary = require_binary("lighttpd", "/usr/sbin/lighttpd")
    with _started("lighttpd", config, env) as (port, logdir, values):
        subprocess.run(  # a config error shows here, clearly, instead of as a timeout
            [binary, "-tt", "-f", str(config)],
            env={**os.environ, **values},
            check=True,
            capture_output=True,
        )
        argv = [binary, "-D", "-f", str(config)]
        yield from _serve("lighttpd", argv, port, logdir, values, ["cgi-stderr.log"])


@contextlib.contextmanager
def apache(
    config: Path, *, env: Mapping[str, str] | None = None, defines: Sequence[str] = ()
) -> Iterator[Server]:
    """Run ``apache2 -DFOREGROUND -f config`` (never the system config), ``-D`` each define."""
    binary = require_binary("apache2", "/usr/sbin/apache2", "httpd", "/usr/sbin/httpd")
    with _started("apache", config, env) as (port, logdir, values):
        values.setdefault("WSGIGATE_MODULES", APACHE_MODULES)
        argv = [binary, "-DFOREGROUND", *(f"-D{name}" for name in defines), "-f", str(config)]
        name = " ".join(["apache", *(f"-D{name}" for name in defines)])
        yield from _serve(name, argv, port, logdir, values)


@contextlib.contextmanager
def nginx(template: Path, *, values: Mapping[str, str] | None = None) -> Iterator[Server]:
    """Run nginx from ``template``, a config with ``@NAME@`` placeholders (nginx has no ${ENV}).

    ``@WSGIGATE_PORT@``, ``@WSGIGATE_LOGDIR@`` and ``@WSGIGATE_USER@`` are filled in here, the
    rest from ``values``. nginx runs in the foreground with its pid file and error log in the
    log directory; the template says ``user @WSGIGATE_USER@;`` and should keep its
    ``*_temp_path``s under ``@WSGIGATE_LOGDIR@`` (the compiled-in /var/lib/nginx is root's).
    """
    binary = require_binary("nginx", "/usr/sbin/nginx")
    with _started("nginx", template, values) as (port, logdir, filled):
        config = render(template, logdir / "nginx.conf", filled)
        argv = [binary, "-p", f"{logdir}/", "-e", str(logdir / "error.log"), "-c", str(config)]
        argv += ["-g", f"daemon off; pid {logdir}/nginx.pid;"]
        checked = subprocess.run([*argv, "-t"], capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx rejects {config}:\n{checked.stderr}")
        yield from _serve("nginx", argv, port, logdir, filled)


@contextlib.contextmanager
def _started(
    name: str, config: Path, env: Mapping[str, str] | None
) -> Iterator[tuple[int, Path, dict[str, str]]]:
    if not config.is_file():
        raise FileNotFoundError(config)
    logdir = Path(tempfile.mkdtemp(prefix=f"wsgigate-{name}-log-"))
    try:
        user = server_user()
        if user is not None and os.geteuid() == 0:
            entry = pwd.getpwnam(user)
            os.chown(logdir, entry.pw_uid, entry.pw_gid)  # lighttpd opens its log as the user
        logdir.chmod(0o755)
        port = free_port()
        values = {
            "WSGIGATE_PORT": str(port),
            "WSGIGATE_LOGDIR": str(logdir),
            "WSGIGATE_USER": user or pwd.getpwuid(os.geteuid()).pw_name,
            **(env or {}),
        }
        yield port, logdir, values
    finally:
        shutil.rmtree(logdir, ignore_errors=True)


def _serve(
    name: str,
    argv: list[str],
    port: int,
    logdir: Path,
    values: dict[str, str],
    more_logs: tuple[str, ...] | list[str] = (),
) -> Iterator[Server]:
    logs = [logdir / "error.log", *(logdir / log for log in more_logs), logdir / "stdout.log"]
    server = Server(name, port, logs)
    started = False
    try:
        with running(argv, port=port, env=values, log=logdir / "stdout.log"):
            started = True
            RUNNING.append(server)
            try:
                yield server
            finally:
                RUNNING.remove(server)
    except RuntimeError as exc:
        if started:
            raise
        raise RuntimeError(f"{exc}\n{server.log_tail()}") from None  # did not start: say why


# ---------------------------------------------------------------------------------------------
# Running scripts as the server's unprivileged user


def server_user() -> str | None:
    """The user a server started by root switches to (``www-data``); ``None`` if not root."""
    if os.geteuid() != 0:
        return None
    for candidate in ("www-data", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(candidate)
            return candidate
    raise RuntimeError("running as root but there is no www-data or nobody user")


def public_dir(prefix: str) -> Path:
    """A new temporary directory every user can read (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def make_public(root: Path) -> None:
    """Let every user read ``root`` and everything under it (and run what is executable)."""
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            os.chmod(path, os.stat(path).st_mode | 0o444)


def precompile(*paths: Path, python: str = sys.executable) -> None:
    """Write ``__pycache__`` now: the server's user may not, and would recompile every hit."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [python, "-m", "compileall", "-q", *map(str, paths)],
        check=True,
        capture_output=True,
        env=env,
    )


def python_for(user: str | None) -> str:
    """This test run's interpreter, as a path ``user`` can execute (for a script's ``#!``).

    Normally ``sys.executable``. An interpreter installed under a private directory (pyenv in
    /root) is mirrored once, with hard links, into a directory everybody can read: the same
    binary and standard library (no site-packages: scripts put what they import on sys.path).
    """
    if user is None or _runs_as(user, sys.executable):
        return sys.executable
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    real = Path(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))
    base = Path(sys.base_prefix)
    key = f"{base}|{real}|{real.stat().st_mtime_ns}".encode()
    tag = f"{version}-{zlib.crc32(key):08x}"
    mirror = Path(tempfile.gettempdir()) / f"wsgigate-python-{tag}"
    wrapper = mirror / "bin" / "python"
    if not wrapper.exists():
        _build_mirror(mirror, base, real, version)
    if not _runs_as(user, str(wrapper)):
        raise RuntimeError(f"{user} cannot run {sys.executable} nor its mirror {wrapper}")
    return str(wrapper)


def _runs_as(user: str, python: str) -> bool:
    try:
        result = subprocess.run(
            [python, "-c", "import wsgiref.validate, json, hashlib"],
            user=user,
            group=pwd.getpwnam(user).pw_gid,
            extra_groups=[],
            cwd="/",
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def _build_mirror(mirror: Path, base: Path, real: Path, version: str) -> None:
    building = Path(tempfile.mkdtemp(prefix=mirror.name + ".", dir=mirror.parent))
    stdlib = Path(sysconfig.get_path("stdlib"))
    skip = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"}

    def link(source: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)

    link(real, building / "bin" / f"python{version}")
    libdir = base / "lib"
    for library in libdir.glob("libpython*.so*"):
        link(library.resolve(), building / "lib" / library.name)
    for directory, subdirs, files in os.walk(stdlib):
        subdirs[:] = [d for d in subdirs if d not in skip]
        for name in files:
            source = Path(directory, name)
            link(source, building / "lib" / f"python{version}" / source.relative_to(stdlib))
    # The binary may look for libpython under the original (unreadable) prefix: point it here.
    wrapper = building / "bin" / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'LD_LIBRARY_PATH="{mirror}/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
        "export LD_LIBRARY_PATH\n"
        f'exec "{mirror}/bin/python{version}" "$@"\n'
    )
    wrapper.chmod(0o755)
    make_public(building)
    try:
        building.rename(mirror)
    except OSError:  # another run built it first
        shutil.rmtree(building, ignore_errors=True)
