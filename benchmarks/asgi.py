"""WSGI on an ASGI server: wsgigate's WSGIApp vs a2wsgi vs asgiref, under uvicorn, with wrk.

Four uvicorn processes (one worker each) serve the same 13-byte "Hello, world!":

- ``native ASGI (ceiling)``: an ASGI app answering directly; no WSGI, no threads;
- ``wsgigate WSGIApp``: ``wsgigate.asgi.WSGIApp(hello)``;
- ``a2wsgi WSGIMiddleware``: ``a2wsgi.WSGIMiddleware(hello)``;
- ``asgiref WsgiToAsgi``: ``asgiref.wsgi.WsgiToAsgi(hello)``.

Requests per second count only successful (2xx) answers; a side with failed requests says how
many in its name. The ratio column divides by a2wsgi (the bar: wsgigate >= 2x with zero errors).
The machine is shared, so req/s moves with its load; "server CPU µs/req" (the server process's
user + system CPU time over the requests it answered) depends much less on what else runs.
The notes also give each bridge's hand-overs between the event loop and its worker threads per
request, counted in-process on the same app.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from benchmarks import Options, Result, Row, Scenario
from benchmarks.harness import (
    BenchmarkError,
    free_port,
    interleaved,
    interpreter,
    require,
    server,
    tool_version,
)

APPS = """
def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]


async def native(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")]})
    await send({"type": "http.response.body", "body": b"Hello, world!"})


def wsgigate_app():
    from wsgigate.asgi import WSGIApp
    return WSGIApp(hello)


def a2wsgi_app():
    from a2wsgi import WSGIMiddleware
    return WSGIMiddleware(hello)


def asgiref_app():
    from asgiref.wsgi import WsgiToAsgi
    return WsgiToAsgi(hello)
"""

SIDES = {
    "native ASGI (ceiling)": "bench_apps:native",
    "wsgigate WSGIApp": "bench_apps:wsgigate_app",
    "a2wsgi WSGIMiddleware": "bench_apps:a2wsgi_app",
    "asgiref WsgiToAsgi": "bench_apps:asgiref_app",
}
BASELINE = "a2wsgi WSGIMiddleware"
CPU = "server CPU µs/req"
VERSIONS = """
import importlib.metadata as m
def v(p):
    try:
        return f"{p} {m.version(p)}"
    except m.PackageNotFoundError:
        return f"{p} not installed"
print(", ".join(v(p) for p in ("uvicorn", "uvloop", "httptools", "a2wsgi", "asgiref")))
"""

_COUNT = re.compile(r"^\s*(\d+) requests in ([\d.]+)(m?s)", re.MULTILINE)
_BAD = re.compile(r"^\s*(?:Non-2xx or 3xx responses|Socket errors):(.*)$", re.MULTILINE)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, options: Options) -> tuple[float, int, int]:
    """One wrk run: (successful requests per second, requests, failed requests)."""
    argv = [require("wrk"), f"-t{options.threads}", f"-c{options.connections}"]
    argv += [f"-d{max(1, round(options.duration))}s", "--timeout", "10s", url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=options.duration + 60)
    if done.returncode != 0:
        raise BenchmarkError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    count = _COUNT.search(done.stdout)
    if not count:
        raise BenchmarkError(f"no request count in wrk's output:\n{done.stdout}")
    requests = int(count.group(1))
    seconds = float(count.group(2)) / (1000 if count.group(3) == "ms" else 1)
    failed = sum(int(n) for m in _BAD.finditer(done.stdout) for n in re.findall(r"\d+", m[1]))
    return (requests - min(failed, requests)) / seconds, requests, failed


def run(options: Options) -> Result:
    python = interpreter(options.python)
    work = Path(tempfile.mkdtemp(prefix="wsgigate-bench-asgi-"))
    (work / "bench_apps.py").write_text(APPS)
    failures: dict[str, list[tuple[int, int]]] = {side: [] for side in SIDES}
    cpu: dict[str, list[float]] = {side: [] for side in SIDES}
    sides: dict[str, Callable[[], float]] = {}
    with _Servers(python, work) as urls:
        for side, (url, pid) in urls.items():

            def one(side: str = side, url: str = url, pid: int = pid) -> float:
                before = cpu_seconds(pid)
                rate, requests, failed = measure(url, options)
                spent = cpu_seconds(pid) - before
                failures[side].append((failed, requests))
                cpu[side].append(spent / max(requests - failed, 1) * 1e6)
                return rate

            sides[side] = one
        log = print if options.verbose else (lambda _: None)
        samples = interleaved(sides, options.rounds, log)
    rows = []
    for side, values in samples.items():
        failed = sum(f for f, _ in failures[side])
        total = sum(r for _, r in failures[side])
        note = f"{failed:,} of {total:,} requests failed" if failed else ""
        rows.append(Row(side, values, note, extras={CPU: cpu[side]}))
    versions = tool_version([python, "-c", VERSIONS])
    notes = [
        f"server: uvicorn, 1 worker, access log off; wrk -t{options.threads} "
        f"-c{options.connections}, {options.duration:g} s per measurement",
        f"versions: {versions}",
        "loop <-> worker thread hand-overs per hello-world request (counted in-process): "
        + hops_note(),
    ]
    return Result("req/s", True, BASELINE, rows, notes, extras={CPU: False})


class _Servers:
    """Every side's uvicorn, started together and left idle while the others are measured."""

    def __init__(self, python: str, work: Path) -> None:
        self.python = python
        self.work = work
        self.stack: list[Any] = []

    def __enter__(self) -> dict[str, tuple[str, int]]:
        urls = {}
        try:
            for side, target in SIDES.items():
                port = free_port()
                argv = [self.python, "-m", "uvicorn", "--factory", target, "--port", str(port)]
                if not target.endswith("_app"):
                    argv.remove("--factory")
                argv += ["--workers", "1", "--no-access-log", "--log-level", "error"]
                name = target.partition(":")[2]
                context = server(
                    argv,
                    port=port,
                    log=self.work / f"{name}.log",
                    env={**_environ(), "PYTHONPATH": str(self.work)},
                )
                process = context.__enter__()
                self.stack.append(context)
                urls[side] = (f"http://127.0.0.1:{port}/", process.pid)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return urls

    def __exit__(self, *exc: object) -> None:
        while self.stack:
            self.stack.pop().__exit__(None, None, None)


def _environ() -> dict[str, str]:
    return dict(os.environ)


# ---- hand-overs, counted in-process ---------------------------------------------------------


def hops_note() -> str:
    """Count, per request, loop->thread submissions and thread->loop wake-ups of each bridge."""
    namespace: dict[str, Any] = {}
    exec(compile(APPS, "bench_apps", "exec"), namespace)  # our own source, not user input
    parts = []
    for side, factory in (
        ("wsgigate", "wsgigate_app"),
        ("a2wsgi", "a2wsgi_app"),
        ("asgiref", "asgiref_app"),
    ):
        try:
            app = namespace[factory]()
        except ImportError:
            continue
        to_thread, to_loop, waits = count_hops(app)
        parts.append(
            f"{side} {to_thread:g} to the worker + {to_loop:g} back to the loop"
            + (f" ({waits:g} of them with the worker blocked on a result)" if waits else "")
        )
    return "; ".join(parts)


def count_hops(app: Any, requests: int = 200) -> tuple[float, float, float]:
    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        counts = [0, 0, 0]
        main_thread = threading.current_thread()
        original_submit = loop.run_in_executor
        original_wake = loop.call_soon_threadsafe
        original_result = Future.result

        def run_in_executor(*args: Any) -> Any:
            counts[0] += 1
            return original_submit(*args)

        def call_soon_threadsafe(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() is not main_thread:
                counts[1] += 1
            return original_wake(*args, **kwargs)

        def result(self: Future[Any], timeout: float | None = None) -> Any:
            if threading.current_thread() is not main_thread:
                counts[2] += 1
            return original_result(self, timeout)

        submitted = [0]

        loop.run_in_executor = run_in_executor  # type: ignore[method-assign]
        loop.call_soon_threadsafe = call_soon_threadsafe  # type: ignore[method-assign]
        Future.result = result  # type: ignore[method-assign]
        try:
            from wsgigate import asgi

            workers_submit = asgi._Workers.submit

            def submit(self: Any, *args: Any) -> None:
                submitted[0] += 1
                workers_submit(self, *args)

            asgi._Workers.submit = submit  # type: ignore[method-assign]
            try:
                for _ in range(requests):
                    await one_request(app)
            finally:
                asgi._Workers.submit = workers_submit  # type: ignore[method-assign]
        finally:
            Future.result = original_result  # type: ignore[method-assign]
            del loop.run_in_executor, loop.call_soon_threadsafe
        return counts[0] + submitted[0], counts[1], counts[2]

    to_thread, to_loop, waits = asyncio.run(main())
    return to_thread / requests, to_loop / requests, waits / requests


async def one_request(app: Any) -> None:
    sent: list[dict[str, Any]] = []
    done = asyncio.Event()
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    if not sent or sent[-1].get("more_body"):
        raise BenchmarkError(f"{type(app).__name__}: incomplete response {sent!r}")


SCENARIO = Scenario(
    name="asgi",
    title="ASGI: WSGI apps under uvicorn (WSGIApp vs a2wsgi vs asgiref)",
    about=(__doc__ or "").split("\n\n", 1)[1].strip(),
    run=run,
)
