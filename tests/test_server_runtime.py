"""The shared server runtime, live: workers, threads, signals, recycling, heartbeats, inheritance.

The runtime is protocol-agnostic, so these tests run it with a tiny line protocol (defined here,
run as ``python tests/test_server_runtime.py --bind ...``): ``pid`` answers the worker's pid,
``sleep S`` sleeps then answers, ``hang`` never answers. FastCGI on the same runtime is tested in
test_fastcgi_server.py.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent
STARTUP = re.compile(r"listening on (\S+)")


# -- the line protocol (server side; runs in the subprocess) ---------------------------------


def _serve_lines() -> None:  # pragma: no cover - runs in the server subprocess
    import argparse
    import logging

    from wsgigate.server import Connection, ConnectionHandler, run_server
    from wsgigate.server.config import add_server_arguments, config_from_args, configure_access_log

    class LineHandler(ConnectionHandler):
        name = "lines"

        def handle(self, conn: Connection) -> bool:
            buf: bytes = conn.state or b""
            served = False
            while True:
                if b"\n" not in buf:
                    if not buf and served:
                        conn.state = b""
                        return True
                    data = conn.sock.recv(4096)
                    if not data:
                        return False
                    buf += data
                    continue
                line, buf = buf.split(b"\n", 1)
                started = conn.begin_request()
                command, _, arg = line.decode().partition(" ")
                if command == "sleep":
                    time.sleep(float(arg))
                elif command == "hang":
                    time.sleep(3600)
                answer = f"{command} {os.getpid()}\n".encode()
                conn.sock.sendall(answer)
                environ = {
                    "REQUEST_METHOD": "LINE",
                    "PATH_INFO": "/" + command,
                    "SERVER_PROTOCOL": "HTTP/1.1",
                }
                conn.end_request(environ, 200, len(answer), started)
                conn.state = buf
                served = True
                if not buf and conn.stopping:
                    return False

        def overloaded(self, conn: Connection) -> None:
            conn.sock.sendall(b"overloaded\n")

    parser = argparse.ArgumentParser()
    add_server_arguments(parser, "127.0.0.1:0")
    parser.add_argument("--burn-fds", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(
        level="INFO", format="[%(process)d] %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    configure_access_log(args.access_logfile)
    if args.burn_fds:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, args.burn_fds + 512), hard))
        burnt = [os.open(os.devnull, os.O_RDONLY) for _ in range(args.burn_fds)]
        logging.getLogger("wsgigate.error").info("highest fd %d", max(burnt))
    run_server(LineHandler(), config_from_args(args, "lines", "127.0.0.1:0"))


# -- test harness ------------------------------------------------------------------------------


class LiveServer:
    """A server subprocess whose combined output goes to a file we poll (werkzeug-style)."""

    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log
        self.address = ""

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, pattern: str, timeout: float = 10.0, start: int = 0) -> re.Match[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = regex.search(self.text(), start)
            if match:
                return match
            if self.proc.poll() is not None:
                match = regex.search(self.text(), start)
                if match:
                    return match
                raise AssertionError(
                    f"server exited ({self.proc.returncode}) before {pattern!r}:\n{self.text()}"
                )
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r} after {timeout}s:\n{self.text()[-4000:]}")

    def connect(self, timeout: float = 5.0) -> socket.socket:
        if self.address.startswith("unix:"):
            sock = socket.socket(socket.AF_UNIX)
            sock.settimeout(timeout)
            sock.connect(self.address[5:])
            return sock
        host, _, port = self.address.rpartition(":")
        return socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            raise AssertionError(f"server did not stop on SIGTERM:\n{self.text()}") from None


@contextlib.contextmanager
def live_server(
    argv: list[str],
    tmp_path: Path,
    *,
    env: dict[str, str] | None = None,
    wait: bool = True,
    **popen: object,
) -> Iterator[LiveServer]:
    """Start ``argv``, wait for its startup line, stop it (SIGTERM, then SIGKILL) afterwards."""
    log = tmp_path / f"server-{time.monotonic_ns()}.log"
    out = open(log, "wb")  # noqa: SIM115
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("PYTHONDEVMODE", None)  # the server's speed is not what is under test here
    proc = subprocess.Popen(
        argv,
        stdout=out,
        stderr=subprocess.STDOUT,
        env=full_env,
        cwd=ROOT,
        start_new_session=True,
        **popen,  # type: ignore[call-overload]
    )
    server = LiveServer(proc, log)
    try:
        if wait:
            server.address = server.wait_for(STARTUP.pattern).group(1)
        yield server
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        else:
            # Workers of a dead arbiter must not outlive the test.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        out.close()


def lines_server(*args: str) -> list[str]:
    return [sys.executable, str(HERE), *args]


def ask(server: LiveServer, command: str = "pid", timeout: float = 5.0) -> str:
    with server.connect(timeout) as sock:
        sock.sendall(command.encode() + b"\n")
        return _read_line(sock)


def _read_line(sock: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode()


def pid_of(answer: str) -> int:
    return int(answer.split()[1])


def worker_pids(server: LiveServer) -> set[int]:
    return {int(m) for m in re.findall(r"booted worker (\d+)", server.text())}


# -- tests -------------------------------------------------------------------------------------


def test_startup_line_names_the_real_port_and_requests_are_served(tmp_path: Path) -> None:
    with live_server(lines_server("--bind", "127.0.0.1:0", "--workers", "2"), tmp_path) as server:
        host, _, port = server.address.rpartition(":")
        assert host == "127.0.0.1" and int(port) > 0
        answers = [ask(server) for _ in range(6)]
        assert all(a.startswith("pid ") for a in answers), answers
        server.wait_for(r"booted worker \d+.*\n(?:.*\n)*.*booted worker \d+")
        assert {pid_of(a) for a in answers} <= worker_pids(server)
        # Kept-alive connection: several requests, one connection.
        with server.connect() as sock:
            for _ in range(3):
                sock.sendall(b"pid\n")
                assert _read_line(sock).startswith("pid ")
        assert server.stop() == 0
    text = server.text()
    assert "lines stopped" in text
    # The access log: Apache combined format, one line per request.
    access = re.findall(r'^(\S+) - - \[[^\]]+\] "LINE /pid HTTP/1.1" 200 \d+ "-" "-"$', text, re.M)
    assert len(access) == 9, text


def test_sigterm_answers_the_request_in_flight(tmp_path: Path) -> None:
    with live_server(lines_server("--workers", "1", "--graceful-timeout", "5"), tmp_path) as server:
        server.wait_for("booted worker")
        with server.connect() as sock:
            sock.sendall(b"sleep 0.8\n")
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            answer = _read_line(sock)
        assert answer.startswith("sleep "), server.text()
        assert server.proc.wait(5) == 0
    assert "finishing in-flight requests" in server.text()


def test_second_sigterm_stops_at_once(tmp_path: Path) -> None:
    argv = lines_server("--workers", "1", "--graceful-timeout", "30")
    with live_server(argv, tmp_path) as server:
        server.wait_for("booted worker")
        with server.connect() as sock:
            sock.sendall(b"sleep 20\n")
            time.sleep(0.3)
            server.signal(signal.SIGTERM)
            server.wait_for("graceful stop")
            start = time.monotonic()
            server.signal(signal.SIGTERM)
            assert server.proc.wait(5) == 0
            assert time.monotonic() - start < 4
            assert _read_line(sock) == ""  # cut off, not answered
    assert "again: stopping now" in server.text()


def test_graceful_timeout_cuts_off_a_request_that_runs_past_it(tmp_path: Path) -> None:
    argv = lines_server("--workers", "1", "--graceful-timeout", "1")
    with live_server(argv, tmp_path) as server:
        server.wait_for("booted worker")
        with server.connect(timeout=10) as sock:
            sock.sendall(b"sleep 30\n")
            time.sleep(0.3)
            start = time.monotonic()
            server.signal(signal.SIGTERM)
            assert server.proc.wait(8) == 0
            assert time.monotonic() - start < 5  # 1 s of grace (+1 s the arbiter allows)
            assert _read_line(sock) == ""  # cut off, not answered
    assert "graceful timeout" in server.text()


def test_single_process_mode_graceful(tmp_path: Path) -> None:
    with live_server(lines_server("--workers", "0"), tmp_path) as server:
        assert pid_of(ask(server)) == server.proc.pid
        with server.connect() as sock:
            sock.sendall(b"sleep 0.5\n")
            time.sleep(0.2)
            server.signal(signal.SIGTERM)
            assert _read_line(sock).startswith("sleep ")
        assert server.proc.wait(5) == 0


def test_sighup_replaces_workers_without_dropping_requests(tmp_path: Path) -> None:
    argv = lines_server("--workers", "2", "--threads", "2")
    with live_server(argv, tmp_path) as server:
        before = {pid_of(ask(server)) for _ in range(8)}
        failures: list[str] = []
        answered: list[int] = []
        done = threading.Event()

        def load() -> None:
            while not done.is_set():
                try:
                    answered.append(pid_of(ask(server, "sleep 0.05")))
                except Exception as exc:
                    failures.append(repr(exc))

        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        server.signal(signal.SIGHUP)
        server.wait_for("SIGHUP: replacing")
        time.sleep(1.0)
        done.set()
        for thread in threads:
            thread.join(10)
        assert not failures, failures
        after = {pid_of(ask(server)) for _ in range(8)}
        assert after and not (after & before), (before, after)
        assert len(answered) > 10


def test_max_requests_recycles_workers(tmp_path: Path) -> None:
    argv = lines_server("--workers", "1", "--max-requests", "3", "--max-requests-jitter", "2")
    with live_server(argv, tmp_path) as server:
        pids = [pid_of(ask(server)) for _ in range(14)]
        assert len(set(pids)) >= 3, pids
        # 3 + up to 2 of jitter, + 1: the accept loop may take a connection in the instant
        # between its check and the last request starting; that one is served, not dropped.
        most = max(pids.count(p) for p in set(pids))
        assert most <= 6, (pids, server.text()[-3000:])
        assert "(--max-requests), recycling" in server.text()


def test_killed_worker_is_respawned_and_logged(tmp_path: Path) -> None:
    with live_server(lines_server("--workers", "1"), tmp_path) as server:
        first = pid_of(ask(server))
        os.kill(first, signal.SIGKILL)
        server.wait_for(rf"worker {first} killed by SIGKILL; starting a new one")
        second = pid_of(ask(server))
        assert second != first


@pytest.mark.parametrize("threads", ["1", "0"])
def test_hung_worker_is_replaced(tmp_path: Path, threads: str) -> None:
    """A request stuck past --timeout stops the heartbeat (with a pool, and with --threads 0,
    where the main thread itself is stuck); the worker is replaced."""
    argv = lines_server("--workers", "1", "--threads", threads, "--timeout", "1")
    with live_server(argv, tmp_path) as server:
        first = pid_of(ask(server))
        with server.connect() as stuck:
            stuck.sendall(b"hang\n")
            server.wait_for(rf"worker {first} silent for", timeout=8)
            assert _read_line(stuck) == ""
        assert pid_of(ask(server)) != first


def test_stopped_worker_is_replaced(tmp_path: Path) -> None:
    with live_server(lines_server("--workers", "1", "--timeout", "1"), tmp_path) as server:
        first = pid_of(ask(server))
        os.kill(first, signal.SIGSTOP)
        server.wait_for(rf"worker {first} silent for", timeout=8)
        assert pid_of(ask(server)) != first


def test_full_pool_answers_overloaded(tmp_path: Path) -> None:
    argv = lines_server("--workers", "1", "--threads", "1", "--queue", "1")
    with live_server(argv, tmp_path) as server:
        server.wait_for("booted worker")
        with server.connect() as busy, contextlib.ExitStack() as stack:
            busy.sendall(b"sleep 2\n")
            time.sleep(0.5)
            queued = stack.enter_context(server.connect())
            queued.sendall(b"pid\n")
            time.sleep(0.5)
            assert ask(server) == "overloaded\n"
            assert _read_line(busy).startswith("sleep ")
            assert _read_line(queued).startswith("pid ")


def test_busy_worker_leaves_new_connections_to_its_sibling(tmp_path: Path) -> None:
    argv = lines_server("--workers", "2", "--threads", "1")
    with live_server(argv, tmp_path) as server:
        server.wait_for(r"booted worker \d+(?:.*\n)+.*booted worker \d+")
        with server.connect() as busy:
            busy.sendall(b"sleep 2\n")
            time.sleep(0.5)
            start = time.monotonic()
            pids = {pid_of(ask(server)) for _ in range(6)}
            assert time.monotonic() - start < 1.5  # none waited behind the sleeping one
            busy_pid = pid_of(_read_line(busy))
        assert len(pids) == 1 and busy_pid not in pids


def test_threads_0_serves_on_the_main_thread(tmp_path: Path) -> None:
    """No pool: each worker answers one request at a time; a busy one leaves new connections
    to its sibling; kept-alive connections and a graceful SIGTERM work as with threads."""
    argv = lines_server("--workers", "2", "--threads", "0", "--graceful-timeout", "5")
    with live_server(argv, tmp_path) as server:
        server.wait_for(r"booted worker \d+(?:.*\n)+.*booted worker \d+")
        with server.connect() as kept:
            for _ in range(3):
                kept.sendall(b"pid\n")
                assert _read_line(kept).startswith("pid ")
        with server.connect() as busy:
            busy.sendall(b"sleep 2\n")
            time.sleep(0.3)
            start = time.monotonic()
            pids = {pid_of(ask(server)) for _ in range(4)}
            assert time.monotonic() - start < 1.5  # the sibling answered, not the busy one
            server.signal(signal.SIGTERM)
            busy_pid = pid_of(_read_line(busy))  # finished, not cut off
        assert len(pids) == 1 and busy_pid not in pids
        assert server.proc.wait(5) == 0


def test_inherited_socket_on_fd0(tmp_path: Path) -> None:
    """As Apache mod_fcgid, lighttpd bin-path and spawn-fcgi start a backend: no --bind."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    with listener, live_server(lines_server("--workers", "1"), tmp_path, stdin=listener) as server:
        listener.close()
        assert server.address == f"127.0.0.1:{port}"
        assert ask(server).startswith("pid ")


def test_systemd_socket_activation(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    fd = listener.fileno()
    stack = contextlib.ExitStack()
    stack.enter_context(listener)
    # LISTEN_PID must be the server's pid: set it in a process that then execs the server.
    script = (
        f"import os, sys; os.dup2({fd}, 3); os.close({fd}); "
        "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1'); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    argv = [sys.executable, "-c", script, *lines_server("--workers", "1")[1:]]
    with stack, live_server(argv, tmp_path, pass_fds=(fd,)) as server:
        listener.close()
        assert server.address == f"127.0.0.1:{port}"
        assert ask(server).startswith("pid ")


def test_systemd_variables_for_another_pid_are_ignored(tmp_path: Path) -> None:
    env = {"LISTEN_PID": "1", "LISTEN_FDS": "1"}
    with live_server(lines_server("--workers", "0"), tmp_path, env=env) as server:
        assert server.address.startswith("127.0.0.1:")  # the fallback bind, not fd 3


def test_unix_socket_mode_and_cleanup(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    argv = lines_server("--bind", f"unix:{path},600", "--workers", "1")
    with live_server(argv, tmp_path) as server:
        assert server.address == f"unix:{path}"
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
        assert ask(server).startswith("pid ")
        # A second server must refuse to take over the live socket.
        second = subprocess.run(argv, capture_output=True, text=True, timeout=20, cwd=ROOT)
        assert second.returncode != 0
        assert "another server is listening" in second.stderr
        assert ask(server).startswith("pid ")
        assert server.stop() == 0
    assert not path.exists()


def test_umask_and_socket_mode_option(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    argv = lines_server("--bind", f"unix:{path}", "--socket-mode", "640", "--workers", "0")
    with live_server(argv, tmp_path):
        assert path.stat().st_mode & 0o777 == 0o640


def test_stale_unix_socket_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "stale.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: a crashed server's leftover
    with live_server(lines_server("--bind", f"unix:{path}", "--workers", "0"), tmp_path) as server:
        assert ask(server).startswith("pid ")


def test_file_descriptors_above_1024(tmp_path: Path) -> None:
    argv = lines_server("--workers", "0", "--burn-fds", "1100")
    with live_server(argv, tmp_path) as server:
        server.wait_for(r"highest fd (\d{4})")
        for _ in range(3):
            assert ask(server).startswith("pid ")


@pytest.mark.parametrize("timeout", [7.5, 45.001])
@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_accepted_sockets_get_nodelay_and_the_kernel_timeout(
    tmp_path: Path, family: str, timeout: float
) -> None:
    """The listener carries TCP_NODELAY and --timeout (SO_RCVTIMEO/SO_SNDTIMEO); every accepted
    socket has them, inherited (TCP) or set on it (unix, and a connection that waited in the
    backlog from before the listener was tuned), and stays blocking for Python. 45.001 s is
    not a whole number of the kernel's clock ticks: it reads back rounded, and is still seen
    as inherited."""
    import struct

    from wsgigate.server import BindSpec, ConnectionHandler, Listener, ServerConfig, Worker
    from wsgigate.server.worker import tune_listener

    if family == "tcp":
        sock = socket.create_server(("127.0.0.1", 0))
        address: object = sock.getsockname()
    else:
        address = str(tmp_path / "t.sock")
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(address)
        sock.listen()
    sock.setblocking(False)
    listener = Listener(sock, BindSpec(family), "t")
    config = ServerConfig(name="t", bind=[], threads=0, workers=0, timeout=timeout)
    worker = Worker([listener], ConnectionHandler(), config)
    timeval = struct.Struct("@ll")
    clients = [socket.socket(sock.family)]
    clients[0].connect(address)  # queued before the listener is tuned: inherits nothing
    tune_listener(listener, config.timeout)
    want = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval.size)
    assert abs(timeval.unpack(want)[0] + timeval.unpack(want)[1] / 1e6 - timeout) < 0.01
    try:
        for _ in range(3):  # the first of these tells whether the options are inherited
            clients.append(socket.socket(sock.family))
            clients[-1].connect(address)
        for _ in clients:  # the untuned one first (the backlog is in order)
            accepted, peer = sock.accept()
            conn = worker._connection(accepted, peer, listener)
            with conn.sock as got:
                assert got.gettimeout() is None
                for option in (socket.SO_RCVTIMEO, socket.SO_SNDTIMEO):
                    value = got.getsockopt(socket.SOL_SOCKET, option, timeval.size)
                    assert value == want
                if family == "tcp":
                    assert got.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert listener.inherited == (family == "tcp")
    finally:
        for client in clients:
            client.close()
        sock.close()


if __name__ == "__main__":
    _serve_lines()
