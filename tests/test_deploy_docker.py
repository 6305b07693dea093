"""deploy/docker/Dockerfile, without a Docker daemon (none runs on the test machines).

The Dockerfile is read instruction by instruction: its settings are checked (non-root user,
exec-form CMD so that wsgigate is PID 1 and gets SIGTERM, HEALTHCHECK, EXPOSE = the bound port,
dependencies installed before the code is copied), then its CMD and HEALTHCHECK commands are run
as they are, with ``sh`` and the image's ENV, on this machine: the server must answer the
health check and stop cleanly on SIGTERM. What is not tested: the image build itself (pip
inside python:3.12-slim).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support import DEPLOY, EXAMPLES, free_port

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " " if raw.endswith("\\") else raw.strip()
        if not raw.endswith("\\"):
            if current.strip():
                lines.append(current)
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _env() -> dict[str, str]:
    """The image's ENV, with ARG defaults substituted."""
    args: dict[str, str] = {}
    env: dict[str, str] = {}
    for name, rest in instructions():
        if name == "ARG":
            key, _, value = rest.partition("=")
            args[key] = value
        elif name == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], ""), value)
    return env


def test_dockerfile_settings() -> None:
    steps = instructions()
    names = [name for name, _ in steps]
    assert steps[0][0] == "FROM" and re.fullmatch(r"python:3\.1\d+-slim", steps[0][1])
    user = next(rest for name, rest in steps if name == "USER")
    assert user not in ("root", "0")
    assert names.index("USER") > max(i for i, n in enumerate(names) if n == "RUN")
    copies = [rest for name, rest in steps if name == "COPY"]
    assert copies[0].startswith("requirements.txt") and copies[-1] == ". ."
    install = next(i for i, (n, r) in enumerate(steps) if n == "RUN" and "pip install" in r)
    assert names.index("COPY") < install < len(names) - names[::-1].index("COPY") - 1
    cmd = json.loads(next(rest for name, rest in steps if name == "CMD"))
    assert cmd[:2] == ["sh", "-c"] and cmd[2].startswith("exec wsgigate fastcgi ")
    expose = next(rest for name, rest in steps if name == "EXPOSE")
    assert _env()["WSGIGATE_PORT"] == expose
    assert "STOPSIGNAL" in names and "HEALTHCHECK" in names


def _local(command: str) -> str:
    """The image's command with this machine's interpreter, on loopback."""
    command = command.replace("wsgigate ", f"{sys.executable} -m wsgigate ", 1)
    return command.replace("0.0.0.0:", "127.0.0.1:")


def test_cmd_serves_and_healthcheck_passes(tmp_path: Path) -> None:
    steps = dict(instructions())
    cmd = json.loads(steps["CMD"])
    health = steps["HEALTHCHECK"].split(" CMD ", 1)[1]
    env = {**os.environ, **_env(), "WSGIGATE_APP": "hello:app", "WSGIGATE_PORT": str(free_port())}
    env.pop("PYTHONDEVMODE", None)
    log = tmp_path / "log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            ["sh", "-c", _local(cmd[2])], cwd=EXAMPLES, env=env, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 15
        while "listening on 127.0.0.1:" not in log.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        check = subprocess.run(["sh", "-c", _local(health)], env=env, timeout=30)
        assert check.returncode == 0, log.read_text()
        assert "2 worker(s) x 8 thread(s)" in log.read_text()
        server.send_signal(signal.SIGTERM)  # docker stop; `exec` made wsgigate the shell's pid
        assert server.wait(20) == 0, log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    failing = subprocess.run(["sh", "-c", _local(health)], env=env, timeout=30)
    assert failing.returncode == 1  # nothing listens any more: the health check says so
