"""AWS Lambda: microseconds per event through each adapter, and the cold import time.

The same hello-world WSGI app behind wsgigate's handler, apig-wsgi's and serverless-wsgi's, fed
the AWS Powertools sample events (REST v1, HTTP API v2, ALB) from ``../shared/events/powertools``
in-process; and ``python -X importtime -c "import MODULE"`` for each adapter's module.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks import Options, Result, Row, Scenario
from benchmarks.harness import BenchmarkError, alternating_us

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

BODY = b"Hello, world!\n"
EVENTS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "events" / "powertools"
EVENTS = {
    "v1": "apiGatewayProxyEvent.json",
    "v2": "apiGatewayProxyV2Event.json",
    "ALB": "albEvent.json",
}
MODULES = {
    "wsgigate": "wsgigate.aws_lambda",
    "apig-wsgi": "apig_wsgi",
    "serverless-wsgi": "serverless_wsgi",
}


def hello(environ: dict[str, Any], start_response: Callable[..., object]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "14")])
    return [BODY]


class _Context:
    function_name = "bench"
    aws_request_id = "bench"
    memory_limit_in_mb = "128"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

    def get_remaining_time_in_millis(self) -> int:
        return 30000


def handlers() -> dict[str, Callable[[dict[str, Any], Any], Any]]:
    try:
        import apig_wsgi
        import serverless_wsgi
    except ImportError as exc:
        raise BenchmarkError(f"pip install apig-wsgi serverless-wsgi ({exc})") from exc
    from wsgigate.aws_lambda import make_handler

    return {
        "apig-wsgi": apig_wsgi.make_lambda_handler(hello),
        "serverless-wsgi": lambda event, context: serverless_wsgi.handle_request(
            hello, event, context
        ),
        "wsgigate": make_handler(hello),
    }


def import_ms(module: str, python: str, *, bare: bool = False) -> float:
    """Cumulative import time of ``module`` in a fresh interpreter, in milliseconds.

    Bytecode is written first (a warm-up import without PYTHONDONTWRITEBYTECODE), as it is in an
    installed package: otherwise a source checkout would be timed compiling. ``bare``: without
    the ``site`` module (``python -S``, the package directories put on ``sys.path`` by hand), so
    modules that ``site`` and ``.pth`` files load here anyway (``typing`` among them) count.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if bare:
        paths = [path for path in sys.path if path and "site-packages" in path or "/src" in path]
        flags, code = ["-S"], f"import sys; sys.path += {paths!r}; import {module}"
    else:
        flags, code = [], f"import {module}"
    subprocess.run([python, *flags, "-c", code], env=env, check=True, timeout=60)
    result = subprocess.run(
        [python, *flags, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    for line in result.stderr.splitlines():
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000
    raise BenchmarkError(f"no importtime line for {module}")


def run(options: Options) -> Result:
    events = {name: json.loads((EVENTS_DIR / file).read_text()) for name, file in EVENTS.items()}
    sides = handlers()
    context = _Context()
    calls = {}
    for side, handler in sides.items():
        for name, event in events.items():
            answer = handler(event, context)
            if answer.get("statusCode") != 200 or answer.get("body") != BODY.decode():
                raise BenchmarkError(f"{side} answered {name} with {answer!r}")
            calls[(side, name)] = lambda h=handler, e=event: h(e, context)
    python = options.python or sys.executable
    per_event: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    imports: dict[str, list[float]] = {side: [] for side in sides}
    bare_imports: dict[str, list[float]] = {side: [] for side in sides}
    for number in range(1, options.rounds + 1):
        timed = alternating_us({f"{s} {n}": c for (s, n), c in calls.items()}, options.duration)
        for side, name in calls:
            per_event[(side, name)].append(timed[f"{side} {name}"])
        for side in sides:
            imports[side].append(min(import_ms(MODULES[side], python) for _ in range(3)))
            bare_imports[side].append(
                min(import_ms(MODULES[side], python, bare=True) for _ in range(3))
            )
        if options.verbose:
            shown = ", ".join(f"{k}: {v:.1f} µs" for k, v in timed.items())
            print(f"  round {number}/{options.rounds} {shown}")
    rows = []
    for side in sides:
        extras = {f"{name} µs/event": per_event[(side, name)] for name in events}
        extras["cold import ms"] = imports[side]
        extras["bare import ms"] = bare_imports[side]
        mean = [
            sum(per_event[(side, name)][i] for name in events) / len(events)
            for i in range(options.rounds)
        ]
        rows.append(Row(side, mean, extras=extras))
    from importlib.metadata import version

    return Result(
        unit="µs/event (mean of v1, v2, ALB)",
        higher_is_better=False,
        baseline="apig-wsgi",
        rows=rows,
        notes=[
            f"apig-wsgi {version('apig-wsgi')}, serverless-wsgi {version('serverless-wsgi')} "
            f"(werkzeug {version('werkzeug')})",
            "events: " + ", ".join(f"{k} = {v}" for k, v in EVENTS.items()),
        ],
        extras={
            **{f"{name} µs/event": False for name in events},
            "cold import ms": False,
            "bare import ms": False,
        },
    )


SCENARIO = Scenario(
    name="lambda",
    title="AWS Lambda: per-event cost and cold import (vs apig-wsgi, serverless-wsgi)",
    about=(
        "Microseconds of CPU per event for a hello-world WSGI app behind each Lambda adapter, "
        "in-process (no runtime, no network): the AWS Powertools sample events for API Gateway "
        "REST (v1), HTTP API (v2) and ALB, each adapter called as Lambda calls a handler, the "
        "sides timed in alternating ~5 ms turns. wsgigate's figure includes its shared core "
        "(environ building, `start_response` validation, 500 handling) and the response-shape "
        "work (cookies, binary detection, 6 MB check). `cold import ms` is the cumulative time "
        "of `python -X importtime -c 'import MODULE'` (best of 3 per round) for "
        "`wsgigate.aws_lambda`, `apig_wsgi` and `serverless_wsgi`; `bare import ms` the same "
        "under `python -S` (no `site`: modules this interpreter's `site` and `.pth` files load "
        "before any import, `typing` among them, count too). Lower is better; the ratio "
        "column divides by apig-wsgi."
    ),
    run=run,
)
