"""What scenarios share: ports, server processes, wrk, in-process timing loops, machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs" / "benchmarks.md"
T = TypeVar("T")


class BenchmarkError(RuntimeError):
    """A side could not be measured (server did not start, wrong answer, wrk failed)."""


def require(binary: str, *candidates: str) -> str:
    """Path of an executable, or a clear error naming the Debian package to install."""
    for name in (binary, *candidates):
        found = shutil.which(name) or (name if os.access(name, os.X_OK) else None)
        if found:
            return found
    raise BenchmarkError(f"{binary} is not installed (apt-get install {binary})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"server exited with status {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise BenchmarkError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


def start_server(
    argv: list[str], *, port: int, log: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a server in its own process group and wait until it accepts connections."""
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    try:
        wait_for_port(port, process)
    except BenchmarkError as exc:
        stop_server(process)
        detail = log.read_text(errors="replace")[-2000:]
        raise BenchmarkError(f"{argv[0]}: {exc}\n{detail}") from None
    return process


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """TERM the server's process group, KILL it if it lingers, and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def server(
    argv: list[str], *, port: int, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server for the block; stop it afterwards."""
    process = start_server(argv, port=port, log=log, env=env)
    try:
        yield process
    finally:
        stop_server(process)


_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_COUNT = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_BAD = re.compile(r"^\s*(Non-2xx or 3xx responses|Socket errors):.*$", re.MULTILINE)


class WrkRun:
    """What one wrk run reached: requests per second and how many requests that was."""

    def __init__(self, rate: float, requests: int) -> None:
        self.rate = rate
        self.requests = requests


def wrk_start(
    url: str, *, duration: float, threads: int, connections: int
) -> subprocess.Popen[str]:
    """Start wrk against ``url``; :func:`wrk_result` waits for it and reads its figures."""
    argv = [
        require("wrk"),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        url,
    ]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wrk_result(process: subprocess.Popen[str], url: str) -> WrkRun:
    """Wait for wrk; any socket error or non-2xx answer fails the measurement."""
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise BenchmarkError(f"wrk failed ({process.returncode}): {stderr.strip()}")
    bad = _BAD.search(stdout)
    if bad:
        raise BenchmarkError(f"wrk against {url}: {bad.group(0).strip()}")
    rate, count = _RPS.search(stdout), _COUNT.search(stdout)
    if not rate or not count:
        raise BenchmarkError(f"no Requests/sec in wrk's output:\n{stdout}")
    return WrkRun(float(rate.group(1)), int(count.group(1)))


def wrk(url: str, *, duration: float, threads: int, connections: int) -> WrkRun:
    """Run wrk against ``url`` and return what it reached."""
    started = wrk_start(url, duration=duration, threads=threads, connections=connections)
    return wrk_result(started, url)


def children_cpu() -> float:
    """CPU seconds (user + system) of every child process waited for so far, and theirs.

    A server reaps the processes it starts (CGI scripts, workers); once the server itself is
    reaped, their time is in here too: the load-independent cost of what the server did.
    """
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def alternating_us(calls: Mapping[str, Callable[[], object]], duration: float) -> dict[str, float]:
    """Microseconds per call of each callable, timed in turns of ~5 ms each (a, b, a, b, ...)
    for about ``duration`` seconds: the sides share every second of the run, and with it
    whatever else the machine was doing."""
    clock = time.perf_counter
    batches = {}
    for side, call in calls.items():
        batch = 1
        while True:
            start = clock()
            for _ in range(batch):
                call()
            if clock() - start >= 0.005 or batch >= 1 << 20:
                break
            batch *= 2
        batches[side] = batch
    spent = dict.fromkeys(calls, 0.0)
    counted = dict.fromkeys(calls, 0)
    deadline = clock() + duration
    while clock() < deadline or not all(counted.values()):
        for side, call in calls.items():
            batch = batches[side]
            start = clock()
            for _ in range(batch):
                call()
            spent[side] += clock() - start
            counted[side] += batch
    return {side: spent[side] / counted[side] * 1e6 for side in calls}


def interleaved(
    sides: Mapping[str, Callable[[], T]], rounds: int, log: Callable[[str], None]
) -> dict[str, list[T]]:
    """Measure every side once per round, in order (a, b, c, a, b, c, ...): load drifts
    over a run, and interleaving spreads the drift over every side instead of one."""
    samples: dict[str, list[T]] = {side: [] for side in sides}
    for number in range(1, rounds + 1):
        for side, measure in sides.items():
            value = measure()
            samples[side].append(value)
            shown = f"{value:.1f}" if isinstance(value, float) else str(value)
            log(f"  round {number}/{rounds} {side}: {shown}")
    return samples


def loadavg() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def tool_version(argv: list[str]) -> str:
    """First line a tool prints about its version, or "" when it is missing."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else ""


def python_facts(python: str) -> str:
    """Version and kind of the interpreter the scenario's processes run (venv or not)."""
    code = (
        "import sys; venv = sys.prefix != sys.base_prefix;"
        "print(sys.version.split()[0] + ',',"
        " 'a venv (own site-packages)' if venv else 'no venv (the base site-packages)')"
    )
    return tool_version([python, "-c", code]) or "unknown"


def machine_facts(python: str) -> dict[str, str]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    return {
        "cpus": f"{os.cpu_count()} ({cpu})" if cpu else str(os.cpu_count()),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{python} — {python_facts(python)}",
    }


def interpreter(options_python: str) -> str:
    return options_python or sys.executable
