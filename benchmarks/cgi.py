"""CGI through real lighttpd mod_cgi, driven by wrk: wsgigate vs a bare script vs wsgiref.

Three scripts answer the same 14-byte "Hello, world!" with the same interpreter:

- ``bare.cgi``: ``python`` writing a fixed response; the floor (interpreter start + CGI);
- ``wsgigate.cgi``: ``from wsgigate.cgi import run`` and a hello-world WSGI app;
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
    server,
    tool_version,
    wrk,
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
    "wsgigate.cgi": f"from wsgigate.cgi import run\n{APP}\nrun(app)\n",
    "wsgiref.cgi": f"from wsgiref.handlers import CGIHandler\n{APP}\nCGIHandler().run(app)\n",
}
SIDES = {
    "bare python (floor)": "bare.cgi",
    "wsgigate.cgi.run": "wsgigate.cgi",
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
    found = subprocess.run(
        [python, "-c", code],
        capture_output=True,
        text=True,
        cwd="/",
        user=user if os.geteuid() == 0 else None,
        env={"PATH": "/usr/bin:/bin"},
    )
    if found.returncode != 0:
        raise BenchmarkError(
            f"{user} cannot run {python} with wsgigate installed "
            f"({found.stderr.strip().splitlines()[-1:] or found.returncode}).\n"
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
    """A document root with the three scripts, and lighttpd started on it per measurement."""

    def __init__(self, root: Path, python: str, user: str, lighttpd: str, options: Options):
        self.root = root
        self.options = options
        self.lighttpd = lighttpd
        cgi_bin = root / "www" / "cgi-bin"
        cgi_bin.mkdir(parents=True)
        for name, body in SCRIPTS.items():
            (cgi_bin / name).write_text(f"#!{python}\n{body}")
            (cgi_bin / name).chmod(0o755)
        self.logdir = root / "log"
        self.logdir.mkdir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam(user)
            os.chown(self.logdir, entry.pw_uid, entry.pw_gid)  # lighttpd opens it as the user
        for path in (root, root / "www", cgi_bin, self.logdir):
            path.chmod(0o755)
        self.user = user

    def measure(self, script: str) -> tuple[float, float]:
        """One wrk run against a fresh lighttpd: (requests/s, requests per CPU-second).

        CPU is what lighttpd and every CGI process it reaped spent (user + system), counted
        once lighttpd has exited: unlike requests/s it barely moves when other work shares
        the machine.
        """
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            WSGIGATE_PORT=str(port),
            WSGIGATE_DOCROOT=str(self.root / "www"),
            WSGIGATE_SCRIPT="/cgi-bin/" + script,
            WSGIGATE_LOGDIR=str(self.logdir),
            WSGIGATE_USER=self.user,
        )
        url = f"http://127.0.0.1:{port}/cgi-bin/{script}"
        argv = [self.lighttpd, "-D", "-f", str(CONFIG)]
        started = children_cpu()
        with server(argv, port=port, log=self.root / "lighttpd.out", env=env):
            check(url)
            before = children_cpu()
            run = wrk(
                url,
                duration=self.options.duration,
                threads=self.options.threads,
                connections=self.options.connections,
            )
            client = children_cpu() - before
            time.sleep(0.2)  # let lighttpd reap the last scripts before it is stopped
        spent = children_cpu() - started - client
        return run.rate, (run.requests + 1) / spent if spent > 0 else float("nan")


def run(options: Options) -> Result:
    lighttpd = require("lighttpd", "/usr/sbin/lighttpd")
    require("wrk")
    if not CONFIG.is_file():
        raise BenchmarkError(f"{CONFIG} is missing")
    python = interpreter(options.python)
    user = server_user()
    package = probe(python, user)
    precompile(python, package)
    log = print if options.verbose else (lambda _: None)
    root = Path(tempfile.mkdtemp(prefix="wsgigate-bench-cgi-"))
    try:
        site = Site(root, python, user, lighttpd, options)
        samples = interleaved(
            {side: partial(site.measure, script) for side, script in SIDES.items()},
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
            f"server: {tool_version([lighttpd, '-v'])} with `deploy/lighttpd/cgi.conf`, "
            f"scripts run as {user}",
            f"client: `wrk -t{options.threads} -c{options.connections} "
            f"-d{max(1, round(options.duration))}s`, {options.rounds} interleaved rounds, "
            "a fresh lighttpd for each",
            f"wsgigate imported from `{package}` (.pyc compiled beforehand)",
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
        "the same hello-world WSGI app. The ratio is the share of the floor each one keeps; "
        "the issue's bar for wsgigate is 0.9x."
    ),
    run=run,
)
