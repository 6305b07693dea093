"""CGI cold start without a server: CPU per process of the ``cgi`` scenario's scripts.

Each script is started directly, the way a web server starts it (CGI meta-variables in the
environment, stdin empty), again and again; the figure is the CPU time (user + system) the
processes spent, from ``getrusage(RUSAGE_CHILDREN)``. With no server and no network in the way,
and CPU time instead of wall time, this moves by a few percent at most when other work shares the
machine: the figure to watch when changing what ``wsgigate.cgi`` imports. The ``cgi`` scenario
shows what it means through a real server.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import Options, Result, Row, Scenario
from benchmarks.cgi import APP, BODY, SCRIPTS, SIDES, precompile
from benchmarks.harness import BenchmarkError, children_cpu, interpreter

# What lighttpd's mod_cgi sets for `GET /cgi-bin/app.cgi` (plus PATH, as servers pass it).
META = {
    "GATEWAY_INTERFACE": "CGI/1.1",
    "SERVER_SOFTWARE": "lighttpd/1.4.69",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_ADDR": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_SCHEME": "http",
    "REQUEST_URI": "/cgi-bin/app.cgi",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "SCRIPT_FILENAME": "/srv/www/cgi-bin/app.cgi",
    "DOCUMENT_ROOT": "/srv/www",
    "QUERY_STRING": "",
    "REMOTE_ADDR": "127.0.0.1",
    "REMOTE_PORT": "50000",
    "REDIRECT_STATUS": "200",
    "HTTP_HOST": "127.0.0.1:8080",
    "HTTP_USER_AGENT": "wrk",
    "PATH": "/usr/local/bin:/usr/bin:/bin",
}


def _probe(python: str) -> str:
    code = "import os, wsgigate; print(os.path.dirname(wsgigate.__file__))"
    found = subprocess.run([python, "-c", code], capture_output=True, text=True)
    if found.returncode != 0:
        raise BenchmarkError(f"{python} cannot import wsgigate; `{python} -m pip install -e .`")
    return found.stdout.strip()


def one_round(scripts: dict[str, Path], duration: float) -> dict[str, float]:
    """Start the scripts in turn (a, b, c, a, b, c, ...) for ``duration`` seconds; return the
    processes per CPU-second of each. Alternating start by start, every side sees the same
    load from outside, even when it changes from one second to the next."""
    spent = dict.fromkeys(scripts, 0.0)
    count = 0
    deadline = time.monotonic() + duration
    while count < 3 or time.monotonic() < deadline:
        for side, script in scripts.items():
            before = children_cpu()
            subprocess.run(
                [str(script)],
                env=META,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                check=True,
            )
            spent[side] += children_cpu() - before
        count += 1
    return {side: count / cpu if cpu > 0 else float("nan") for side, cpu in spent.items()}


def run(options: Options) -> Result:
    python = interpreter(options.python)
    package = _probe(python)
    precompile(python, package)
    scripts = {name: f"#!{python}\n{body}" for name, body in SCRIPTS.items()}
    sides = dict(SIDES)
    notes = [f"wsgigate imported from `{package}` (.pyc compiled beforehand)"]
    if options.compare:
        other = _probe(options.compare)
        precompile(options.compare, other)
        scripts["compared.cgi"] = f"#!{options.compare}\n{SCRIPTS['wsgigate.cgi']}"
        sides[f"wsgigate.cgi.run from {options.compare}"] = "compared.cgi"
        notes.append(f"compared: wsgigate imported by `{options.compare}` from `{other}`")
    with tempfile.TemporaryDirectory(prefix="wsgigate-bench-spawn-") as tmp:
        # The same app served by the command line, `wsgigate cgi FILE:app`, called the way the
        # `wsgigate` console script calls it (without pip's wrapper or a shell around it).
        Path(tmp, "hello_app.py").write_text(APP)
        scripts["command.cgi"] = (
            f"#!{python}\nimport sys\nfrom wsgigate.cli import main\n"
            f"sys.exit(main(['cgi', '{tmp}/hello_app.py:app']))\n"
        )
        sides["wsgigate cgi FILE:app (command line)"] = "command.cgi"
        paths = {}
        for name, text in scripts.items():
            path = Path(tmp, name)
            path.write_text(text)
            path.chmod(0o755)
            paths[name] = path
            answer = subprocess.run(
                [str(path)], env=META, stdin=subprocess.DEVNULL, capture_output=True
            )
            if answer.returncode != 0 or not answer.stdout.endswith(b"\r\n\r\n" + BODY):
                raise BenchmarkError(f"{name} answered {answer.stdout[:300]!r} {answer.stderr!r}")
        by_side = {side: paths[script] for side, script in sides.items()}
        samples: dict[str, list[float]] = {side: [] for side in sides}
        for number in range(1, options.rounds + 1):
            for side, value in one_round(by_side, options.duration).items():
                samples[side].append(value)
                if options.verbose:
                    print(f"  round {number}/{options.rounds} {side}: {value:.1f}")
    notes.append(
        f"no server; processes started one at a time, alternating between the sides start by "
        f"start, {options.duration:g} s per round"
    )
    return Result(
        unit="starts per CPU-second",
        higher_is_better=True,
        baseline="bare python (floor)",
        rows=[Row(side, values) for side, values in samples.items()],
        notes=notes,
    )


SCENARIO = Scenario(
    name="cgi-spawn",
    title="CGI cold start, no server",
    about=(
        "The `cgi` scenario's scripts started directly with a GET request's "
        "meta-variables, one after another, without a web server: CPU-seconds (user + system) "
        "per process, shown as processes per CPU-second so that the ratios read like the `cgi` "
        "table's. CPU time barely moves when other work shares the machine, so this is the "
        "figure to watch when changing what the CGI path imports."
    ),
    run=run,
)
