"""deploy/systemd/: the socket and service units, exercised without systemd as PID 1.

- ``systemd-analyze verify`` loads both units (unknown keys, bad values and a missing
  executable are reported on stderr) with the ExecStart binary pointed at this wsgigate;
- ``systemd-socket-activate`` stands in for systemd: it opens the unit's ListenStream socket and
  starts the unit's ExecStart command (with its Environment= and WorkingDirectory=) on the first
  connection, passing the socket through LISTEN_FDS/LISTEN_PID; the request must be answered on
  that socket, and after SIGTERM (the unit's KillSignal) the socket file, systemd's, stays;
- ``wsgigate run`` finds a socket passed the same way, for FastCGI and for SCGI.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.support import DEPLOY, EXAMPLES, free_port, require_binary
from wsgigate.fastcgi.client import http_params, request

UNITS = DEPLOY / "systemd"


def parse_unit(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> every value, in order (systemd allows repeated keys)."""
    section, values = "", {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return values


SERVICE = parse_unit(UNITS / "wsgigate.service")
SOCKET = parse_unit(UNITS / "wsgigate.socket")


def _wsgigate_binary() -> str:
    beside = Path(sys.executable).parent / "wsgigate"
    return str(beside) if beside.exists() else require_binary("wsgigate")


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = require_binary("systemd-analyze")
    binary = SERVICE["Service.ExecStart"][0].split()[0]
    text = (UNITS / "wsgigate.service").read_text().replace(binary, _wsgigate_binary())
    (tmp_path / "wsgigate.service").write_text(text.replace("/srv/myapp", str(tmp_path)))
    (tmp_path / "wsgigate.socket").write_text((UNITS / "wsgigate.socket").read_text())
    result = subprocess.run(
        [analyze, "verify", "--man=no", "./wsgigate.socket", "./wsgigate.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_service_is_hardened_and_stops_gracefully() -> None:
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "DynamicUser": "yes",
        "CapabilityBoundingSet": "",
        "KillSignal": "SIGTERM",
    }.items():
        assert SERVICE[f"Service.{key}"] == [value], key
    assert "AF_UNIX" in SERVICE["Service.RestrictAddressFamilies"][0]
    assert SERVICE["Service.ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # systemd must give the graceful stop (--graceful-timeout, 30 s by default) time to finish
    assert float(SERVICE["Service.TimeoutStopSec"][0]) > 30
    assert SERVICE["Unit.Requires"] == ["wsgigate.socket"]
    assert "--bind" not in SERVICE["Service.ExecStart"][0]  # the socket comes from systemd


@contextlib.contextmanager
def activated(
    argv: list[str], listen: str, cwd: Path, log: Path, env: Sequence[str] = ()
) -> Iterator[subprocess.Popen[bytes]]:
    """``systemd-socket-activate -l LISTEN -E ENV... -- ARGV``, as systemd would start it."""
    activate = require_binary("systemd-socket-activate")
    command = [activate, "-l", listen]
    for item in env:
        command += ["-E", item]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [*command, "--", *argv],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 10
        while "Listening on" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def test_socket_activation_runs_the_unit_command(tmp_path: Path) -> None:
    sock = tmp_path / "app.sock"
    assert SOCKET["Socket.ListenStream"][0].startswith("/run/")
    command = shlex.split(SERVICE["Service.ExecStart"][0])
    spec = command.index("myapp:app")
    argv = [sys.executable, "-m", "wsgigate", *command[1:spec], "hello:app", *command[spec + 1 :]]
    env = [*SERVICE["Service.Environment"], "PYTHONPATH=" + os.environ.get("PYTHONPATH", "")]
    log = tmp_path / "log"
    with activated(argv, str(sock), EXAMPLES, log, env) as process:
        answer = request(f"unix:{sock}", http_params("GET", "/"), timeout=20)
        assert (answer.status, answer.body) == (200, b"Hello, world!\n"), log.read_text()
        text = log.read_text()
        assert f"fastcgi listening on unix:{sock}" in text  # systemd's socket, not 127.0.0.1:9000
        assert "2 worker(s) x 8 thread(s)" in text
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"no exit 30 s after SIGTERM:\n{log.read_text()[-4000:]}")
        assert status == 0, log.read_text()
    assert "fastcgi stopped" in log.read_text()
    assert sock.exists()  # systemd's socket file: wsgigate never unlinks what it did not create


def _scgi(port: int, path: str) -> bytes:
    headers = (
        f"CONTENT_LENGTH\x000\x00SCGI\x001\x00REQUEST_METHOD\x00GET\x00REQUEST_URI\x00{path}\x00"
    )
    headers += "SERVER_NAME\x00localhost\x00SERVER_PORT\x0080\x00SERVER_PROTOCOL\x00HTTP/1.1\x00"
    data = headers.encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(b"%d:%s," % (len(data), data))
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("protocol", ["fastcgi", "scgi"])
def test_wsgigate_run_takes_the_activated_socket(protocol: str, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "wsgigate", "run", "hello:app", "--protocol", protocol]
    with activated(argv, f"127.0.0.1:{port}", EXAMPLES, tmp_path / "log"):
        if protocol == "fastcgi":
            answer = request(f"127.0.0.1:{port}", http_params("GET", "/"), timeout=20)
            assert (answer.status, answer.body) == (200, b"Hello, world!\n")
        else:
            raw = _scgi(port, "/")
            assert raw.startswith(b"Status: 200 OK\r\n"), raw
            assert raw.endswith(b"\r\n\r\nHello, world!\n"), raw
