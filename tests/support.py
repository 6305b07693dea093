"""Helpers for tests that start real processes: binaries, ports, readiness, templates."""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
EXAMPLES = ROOT / "examples"
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_binary(name: str, *candidates: str) -> str:
    """Path of an executable; skip without it locally, fail without it on CI."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if found:
            return found
    message = f"{name} is not installed (scripts/test.sh installs it)"
    if ON_CI:
        pytest.fail(message)
    pytest.skip(message)


def require_module(name: str) -> Any:
    """Import a module the tests need (a test or docs extra); skip without it locally, fail
    without it on CI, where scripts/test.sh has installed every extra."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = f"{name} cannot be imported ({exc}); scripts/test.sh installs it"
        if ON_CI:
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)  # also called at a module's top


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(
    port: int,
    host: str = "127.0.0.1",
    timeout: float = 10.0,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Wait until something accepts connections on host:port; fail early if ``process`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


def render(template: Path, target: Path, values: Mapping[str, str]) -> Path:
    """Copy a deploy/ config, replacing ``@NAME@`` placeholders (for servers without env vars)."""
    text = template.read_text()
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    target.write_text(text)
    return target


@contextlib.contextmanager
def running(
    argv: list[str],
    *,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log: Path | None = None,
    timeout: float = 10.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server process for the duration of the block; stop it (TERM, then KILL) after."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        argv,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        if port is not None:
            try:
                wait_for_port(port, timeout=timeout, process=process)
            except (RuntimeError, TimeoutError) as exc:
                detail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
                raise RuntimeError(f"{argv[0]}: {exc}\n{detail}") from None
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if log:
            out.close()  # type: ignore[union-attr]
