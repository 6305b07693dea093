"""CGI through real lighttpd mod_cgi, driven by wrk: wsgigate vs a bare script vs wsgiref.

These scripts answer the same 14-byte "Hello, world!" with the same interpreter:

- ``bare.cgi``: ``python`` writing a fixed response; the floor (interpreter start + CGI);
- ``bare-frozen.cgi``: the same after ``gc.freeze()``, which ``wsgigate.cgi.run`` calls before
  the app by default: the like-for-like floor;
- ``wsgigate.cgi``: ``from wsgigate.cgi import run`` and a hello-world WSGI app (and
  ``wsgigate-nofreeze.cgi``, the same with ``freeze_gc=False``);
- ``wsgiref.cgi``: ``wsgiref.handlers.CGIHandler`` running the same app.

A CGI request is a process start, so these figures are dominated by the interpreter's start-up
and by every module a script imports. The interpreter is the one running the benchmark (or
``--python``): run it from a fresh virtualenv to see what users get, because a Python with a
crowded site-packages pays for its ``.pth`` files on every request.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path

from benchmarks import Options, Result, Row, Scenario
from benchmarks.harness import (
    DEPLOY,
    BenchmarkError,
    children_cpu,
    free_port,
    interleaved,
    interpreter,
    require,
    start_server,
    stop_server,
    tool_version,
    wrk_result,
    wrk_start,
)

# The config users deploy is the one measured, so the benchmark cannot drift away from it.
CONFIG = DEPLOY / "lighttpd" / "cgi.conf"
BODY = b"Hello, world!\n"

APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "14")])
    return [b"Hello, world!\\n"]
"""

SCRIPTS = {
    "bare.cgi": (
        "import sys\n"
        'sys.stdout.buffer.write(b"Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n'
        'Content-Length: 14\\r\\n\\r\\nHello, world!\\n")\n'
    ),
    # The same floor with the heap frozen out of the garbage collector, as wsgigate.cgi.run
    # does by default: like for like, the exit's collection skipped on both sides.
    "bare-frozen.cgi": (
        "import gc, sys\n"
        "gc.freeze()\n"
        'sys.stdout.buffer.write(b"Status: 200 OK\\r\\nContent-Type: text/plain\\r\\n'
        'Content-Length: 14\\r\\n\\r\\nHello, world!\\n")\n'
    ),
    "wsgigate.cgi": f"from wsgigate.cgi import run\n{APP}\nrun(app)\n",
    "wsgigate-nofreeze.cgi": f"from wsgigate.cgi import run\n{APP}\nrun(app, freeze_gc=False)\n",
    "wsgiref.cgi": f"from wsgiref.handlers import CGIHandler\n{APP}\nCGIHandler().run(app)\n",
}
SIDES = {
    "bare python (floor)": "bare.cgi",
    "bare python + gc.freeze()": "bare-frozen.cgi",
    "wsgigate.cgi.run": "wsgigate.cgi",
    "wsgigate.cgi.run(freeze_gc=False)": "wsgigate-nofreeze.cgi",
    "wsgiref CGIHandler": "wsgiref.cgi",
}
CPU = "req per CPU-second"


def server_user() -> str:
    """The user lighttpd runs the scripts as: www-data when we are root (lighttpd refuses to
    keep uid 0), else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    for candidate in ("www-data", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(candidate).pw_name
    raise BenchmarkError("running as root but there is no www-data or nobody user")


def probe(python: str, user: str) -> str:
    """Where ``python`` imports wsgigate from, as ``user`` (the scripts' #! interpreter)."""
    code = "import os, wsgigate; print(os.path.dirname(wsgigate.__file__))"
    try:
        found = subprocess.run(
            [python, "-c", code],
            capture_output=True,
            text=True,
            cwd="/",
            user=user if os.geteuid() == 0 else None,
            env={"PATH": "/usr/bin:/bin"},
        )
    except OSError as exc:  # the user may not even execute it (an interpreter under /root)
        found = subprocess.CompletedProcess([python], 126, "", str(exc))
    if found.returncode != 0:
        raise BenchmarkError(
            f"{user} cannot run {python} with wsgigate installed "
            f"({(found.stderr.strip().splitlines() or [f'exit {found.returncode}'])[-1]}).\n"
            "lighttpd runs CGI scripts as that user. Make a virtualenv it can read and run the "
            "benchmark with it, e.g.:\n"
            "  /usr/bin/python3 -m venv /tmp/wsgigate-bench && "
            "/tmp/wsgigate-bench/bin/pip install -e .\n"
            "  /tmp/wsgigate-bench/bin/python -m benchmarks cgi"
        )
    return found.stdout.strip()


def precompile(python: str, package: str) -> None:
    """Compile wsgigate's modules to .pyc now, as ``pip install`` does for a regular install.

    The server's user cannot write ``__pycache__`` here, and an editable install would otherwise
    recompile every module on every request: that measures the compiler, not wsgigate.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([python, "-m", "compileall", "-q", package], check=True, env=env)


def check(url: str) -> None:
    """The script answers 200 with the expected body; wrk alone would count error pages."""
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            body = answer.read()
            status = answer.status
    except OSError as exc:
        raise BenchmarkError(f"{url}: {exc}") from None
    if status != 200 or body != BODY:
        raise BenchmarkError(f"{url}: answered {status} {body[:200]!r}")


class Site:
    """A document root with the scripts, and lighttpd started on it per measurement."""

    def __init__(
        self, root: Path, scripts: dict[str, str], user: str, lighttpd: str, options: Options
    ):
        self.root = root
        self.options = options
        self.lighttpd = lighttpd
        cgi_bin = root / "www" / "cgi-bin"
        cgi_bin.mkdir(parents=True)
        for name, text in scripts.items():
            (cgi_bin / name).write_text(text)
            (cgi_bin / name).chmod(0o755)
        self.logdir = root / "log"
        self.logdir.mkdir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam(user)
            os.chown(self.logdir, entry.pw_uid, entry.pw_gid)  # lighttpd opens it as the user
        for path in (root, root / "www", cgi_bin, self.logdir):
            path.chmod(0o755)
        self.user = user

    def _start(self, script: str) -> tuple[str, subprocess.Popen[bytes]]:
        """A fresh lighttpd serving the scripts; returns the URL of ``script`` and the server."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            WSGIGATE_PORT=str(port),
            WSGIGATE_DOCROOT=str(self.root / "www"),
            WSGIGATE_SCRIPT="/cgi-bin/" + script,
            WSGIGATE_LOGDIR=str(self.logdir),
            WSGIGATE_USER=self.user,
        )
        argv = [self.lighttpd, "-D", "-f", str(CONFIG)]
        process = start_server(argv, port=port, log=self.root / f"{script}.out", env=env)
        url = f"http://127.0.0.1:{port}/cgi-bin/{script}"
        try:
            check(url)
        except BenchmarkError:
            stop_server(process)
            raise
        return url, process

    def measure_one(self, script: str) -> tuple[float, float]:
        return self.measure([script])[script]

    def measure(self, scripts: list[str]) -> dict[str, tuple[float, float]]:
        """Drive each script with wrk against its own fresh lighttpd, all at the same time.

        Returns (requests/s, requests per CPU-second) per script. CPU is what a lighttpd and
        every CGI process it reaped spent (user + system), read when that lighttpd is reaped.
        Given one script, this is a plain sequential measurement; given several, they share
        the machine for the same seconds, so load from outside hits each of them alike.
        """
        servers: dict[str, tuple[str, subprocess.Popen[bytes]]] = {}
        clients: dict[str, subprocess.Popen[str]] = {}
        try:
            for script in scripts:
                servers[script] = self._start(script)
            for script, (url, _) in servers.items():
                clients[script] = wrk_start(
                    url,
                    duration=self.options.duration,
                    threads=self.options.threads,
                    connections=self.options.connections,
                )
            runs = {
                script: wrk_result(clients[script], url) for script, (url, _) in servers.items()
            }
            time.sleep(0.2)  # let each lighttpd reap its last scripts before it is stopped
            result = {}
            for script, (_, process) in list(servers.items()):
                before = children_cpu()
                stop_server(process)
                del servers[script]
                spent = children_cpu() - before
                cpu = (runs[script].requests + 1) / spent if spent > 0 else float("nan")
                result[script] = (runs[script].rate, cpu)
            return result
        finally:
            for client in clients.values():
                if client.poll() is None:
                    client.kill()
                    client.communicate()
            for _, process in servers.values():
                stop_server(process)


def run(options: Options) -> Result:
    lighttpd = require("lighttpd", "/usr/sbin/lighttpd")
    require("wrk")
    if not CONFIG.is_file():
        raise BenchmarkError(f"{CONFIG} is missing")
    python = interpreter(options.python)
    user = server_user()
    package = probe(python, user)
    precompile(python, package)
    scripts = {name: f"#!{python}\n{body}" for name, body in SCRIPTS.items()}
    sides = dict(SIDES)
    notes = [f"wsgigate imported from `{package}` (.pyc compiled beforehand)"]
    if options.compare:
        # Another installation of wsgigate (an older commit, a regular vs an editable install)
        # as one more side of the same run.
        other = probe(options.compare, user)
        precompile(options.compare, other)
        scripts["compared.cgi"] = f"#!{options.compare}\n{SCRIPTS['wsgigate.cgi']}"
        sides[f"wsgigate.cgi.run from {options.compare}"] = "compared.cgi"
        notes.append(f"compared: wsgigate imported by `{options.compare}` from `{other}`")
    log = print if options.verbose else (lambda _: None)
    root = Path(tempfile.mkdtemp(prefix="wsgigate-bench-cgi-"))
    try:
        site = Site(root, scripts, user, lighttpd, options)
        if options.together:
            samples: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
            for number in range(1, options.rounds + 1):
                figures = site.measure(list(sides.values()))
                for side, script in sides.items():
                    samples[side].append(figures[script])
                    log(f"  round {number}/{options.rounds} {side}: {figures[script]}")
        else:
            samples = interleaved(
                {side: partial(site.measure_one, script) for side, script in sides.items()},
                options.rounds,
                log,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return Result(
        unit="req/s",
        higher_is_better=True,
        baseline="bare python (floor)",
        rows=[
            Row(side, [rate for rate, _ in pairs], extras={CPU: [cpu for _, cpu in pairs]})
            for side, pairs in samples.items()
        ],
        extras={CPU: True},
        notes=[
            f"server: {tool_version([lighttpd, '-v']).split(' - ')[0]} with "
            "`deploy/lighttpd/cgi.conf`, "
            f"scripts run as {user}",
            f"client: `wrk -t{options.threads} -c{options.connections} "
            f"-d{max(1, round(options.duration))}s` per script, {options.rounds} rounds, "
            + (
                "every script driven at the same time in each round, each against its own "
                "lighttpd (external load hits them alike)"
                if options.together
                else "interleaved (a, b, c, a, b, c...), a fresh lighttpd for each run"
            ),
            *notes,
        ],
    )


SCENARIO = Scenario(
    name="cgi",
    title="CGI through lighttpd mod_cgi",
    about=(
        "Requests per second through real lighttpd `mod_cgi` on loopback, driven by wrk. Every "
        "request starts a new Python process, so this measures what a CGI user pays per hit: "
        "interpreter start-up plus every import. The floor is a bare script that writes a fixed "
        "response with the same interpreter; `wsgigate.cgi.run` and wsgiref's `CGIHandler` run "
        "the same hello-world WSGI app. `wsgigate.cgi.run` freezes the heap out of the garbage "
        "collector before calling the app (`freeze_gc`, on by default), so the collection at "
        "exit skips it; the floor doing the same (`bare python + gc.freeze()`) and wsgigate "
        "without it (`freeze_gc=False`) give the like-for-like ratios. The ratio is the share of "
        "the floor each one keeps; the issue's bar for wsgigate is 0.9x."
    ),
    run=run,
)
