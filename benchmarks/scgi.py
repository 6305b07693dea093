"""SCGI behind nginx: ``wsgigate scgi`` against flup's SCGI server, the ``scgi`` package's
pre-forking server and uWSGI's SCGI mode, on a hello-world app.

Every side serves the same 14-byte WSGI app behind its own nginx, started from
deploy/nginx/scgi.conf (Debian's stock scgi_params; SCGI opens one connection per request), and
wrk drives nginx. The sides are started together and measured in interleaved rounds. The
baseline is flup's threaded ``flup.server.scgi.WSGIServer``, one process, as flup users run it;
the other sides use two processes (this machine has 2 cores): wsgigate ``--workers 2
--threads 4`` and ``--workers 2 --threads 0`` (each worker serves on its main thread: no
hand-over to a pool thread), flup's pre-forking ``flup.server.scgi_fork`` (2 children), the ``scgi``
package's ``SCGIServer`` (``max_children=2``, the app run by ``wsgiref.handlers.SimpleHandler``:
the package speaks SCGI, not WSGI) and uWSGI (``--processes 2 --threads 4``, Debian's
uwsgi-plugin-python3). "server CPU" is the user + system time of the side's processes per
request (nginx and wrk not included): it does not depend on what else loads the machine.
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
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks import Options, Result, Row, Scenario
from benchmarks.harness import (
    DEPLOY,
    BenchmarkError,
    free_port,
    interleaved,
    interpreter,
    require,
    server,
    tool_version,
    wrk,
)

CONFIG = DEPLOY / "nginx" / "scgi.conf"
BODY = b"Hello, world!\n"
APP = """
def app(environ, start_response):
    body = b"Hello, world!\\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "14")])
    return [body]

application = app
"""
FLUP = """
import sys
sys.path.insert(0, sys.argv[1])
from bench_app import app
if sys.argv[3] == "fork":
    from flup.server.scgi_fork import WSGIServer
    WSGIServer(app, bindAddress=("127.0.0.1", int(sys.argv[2])), minSpare=2, maxSpare=2,
               maxChildren=2).run()
else:
    from flup.server.scgi import WSGIServer
    WSGIServer(app, bindAddress=("127.0.0.1", int(sys.argv[2]))).run()
"""
SCGI_PACKAGE = """
import sys
from wsgiref.handlers import SimpleHandler
sys.path.insert(0, sys.argv[1])
from bench_app import app
from scgi.scgi_server import SCGIServer
from scgi.util import SCGIHandler

class WSGIHandler(SCGIHandler):
    def produce(self, env, bodysize, input, output):
        SimpleHandler(input, output, sys.stderr, env, multithread=False,
                      multiprocess=True).run(app)

SCGIServer(WSGIHandler, host="127.0.0.1", port=int(sys.argv[2]), max_children=2).serve()
"""
BASELINE = "flup SCGI (threaded, 1 process)"
CPU = "server CPU µs/req"
VERSIONS = """
from importlib.metadata import version
def v(p):
    try:
        return f"{p} {version(p)}"
    except Exception:
        return f"{p} not installed"
print(", ".join(v(p) for p in ("flup", "scgi")))
"""


def _session_cpu(session: int) -> float:
    """CPU seconds (user + system) of the live processes of session ``session``."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
            if int(fields[3]) == session:
                total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _sides(python: str, work: Path) -> dict[str, Callable[[int], list[str]]]:
    """Side name -> argv for a backend listening on 127.0.0.1:port."""
    uwsgi = shutil.which("uwsgi") or "/usr/bin/uwsgi"
    return {
        "wsgigate scgi (2 workers x 4 threads)": lambda port: [
            *(python, "-m", "wsgigate", "scgi", f"{work / 'bench_app.py'}:app"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"),
            *("--access-logfile", "none", "--log-level", "warning"),
        ],
        "wsgigate scgi (2 workers, --threads 0)": lambda port: [
            *(python, "-m", "wsgigate", "scgi", f"{work / 'bench_app.py'}:app"),
            *("--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "0"),
            *("--access-logfile", "none", "--log-level", "warning"),
        ],
        BASELINE: lambda port: [python, "-c", FLUP, str(work), str(port), "threaded"],
        "flup SCGI (pre-fork, 2 children)": lambda port: [
            *(python, "-c", FLUP, str(work), str(port), "fork"),
        ],
        "scgi package SCGIServer (2 children)": lambda port: [
            *(python, "-c", SCGI_PACKAGE, str(work), str(port)),
        ],
        "uWSGI SCGI (2 processes x 4 threads)": lambda port: [
            *(uwsgi, "--plugin", "python3", "--scgi-socket", f"127.0.0.1:{port}"),
            *("--wsgi-file", str(work / "bench_app.py"), "--processes", "2", "--threads", "4"),
            *("--master", "--disable-logging", "--die-on-term"),
        ],
    }


@contextlib.contextmanager
def _nginx(backend: int, work: Path) -> Iterator[str]:
    """nginx from deploy/nginx/scgi.conf in front of 127.0.0.1:``backend``; yields its URL."""
    binary = require("nginx", "/usr/sbin/nginx")
    port = free_port()
    logdir = work / f"nginx-{backend}"
    logdir.mkdir()
    logdir.chmod(0o755)
    text = CONFIG.read_text()
    for key, value in {
        "WSGIGATE_PORT": str(port),
        "WSGIGATE_LOGDIR": str(logdir),
        "WSGIGATE_USER": "www-data" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())[0],
        "BACKEND": f"127.0.0.1:{backend}",
    }.items():
        text = text.replace(f"@{key}@", value)
    text = text.replace(f"access_log {logdir}/access.log;", "access_log off;")
    config = logdir / "nginx.conf"
    config.write_text(text)
    argv = [binary, "-p", f"{logdir}/", "-e", str(logdir / "error.log"), "-c", str(config)]
    argv += ["-g", f"daemon off; pid {logdir}/nginx.pid;"]
    with server(argv, port=port, log=logdir / "stdout.log"):
        yield f"http://127.0.0.1:{port}/"


def _check(url: str, side: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = reply.read()
    except OSError as exc:
        raise BenchmarkError(f"{side}: {url} failed: {exc}") from None
    if body != BODY:
        raise BenchmarkError(f"{side}: unexpected answer {body[:200]!r}")


@contextlib.contextmanager
def _stack(python: str, work: Path, names: list[str]) -> Iterator[dict[str, tuple[str, int]]]:
    """Every side's backend and nginx, started together: side -> (url, backend session id)."""
    sides = _sides(python, work)
    with contextlib.ExitStack() as stack:
        urls = {}
        for side in names:
            port = free_port()
            log = work / f"backend-{port}.log"
            env = {**os.environ, "PYTHONDEVMODE": ""}
            process = stack.enter_context(server(sides[side](port), port=port, log=log, env=env))
            url = stack.enter_context(_nginx(port, work))
            _check(url, side)
            urls[side] = (url, process.pid)
        yield urls


def run(options: Options) -> Result:
    python = interpreter(options.python)
    work = Path(tempfile.mkdtemp(prefix="wsgigate-bench-scgi-"))
    os.chmod(work, 0o755)
    (work / "bench_app.py").write_text(APP)
    names = list(_sides(python, work))
    notes = []
    if not (shutil.which("uwsgi") or os.access("/usr/bin/uwsgi", os.X_OK)):
        names = [n for n in names if not n.startswith("uWSGI")]
        notes.append("uWSGI not measured: apt-get install uwsgi-core uwsgi-plugin-python3")
    probe = subprocess.run([python, "-c", "import scgi.scgi_server"], capture_output=True)
    if probe.returncode != 0:
        names = [n for n in names if not n.startswith("scgi package")]
        notes.append("the scgi package not measured: pip install scgi")
    cpu: dict[str, list[float]] = {side: [] for side in names}
    try:
        with _stack(python, work, names) as urls:
            measures: dict[str, Callable[[], float]] = {}
            for side, (url, session) in urls.items():

                def one(side: str = side, url: str = url, session: int = session) -> float:
                    before = _session_cpu(session)
                    result = wrk(
                        url,
                        duration=options.duration,
                        threads=options.threads,
                        connections=options.connections,
                    )
                    spent = _session_cpu(session) - before
                    cpu[side].append(spent / max(result.requests, 1) * 1e6)
                    time.sleep(0.5)  # let closed connections' TIME_WAIT settle between sides
                    return result.rate

                measures[side] = one
            log = print if options.verbose else (lambda _: None)
            samples = interleaved(measures, options.rounds, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = [Row(side, values, extras={CPU: cpu[side]}) for side, values in samples.items()]
    versions = tool_version([python, "-c", VERSIONS])
    uwsgi_version = tool_version(["uwsgi", "--version"])
    nginx_version = tool_version([require("nginx", "/usr/sbin/nginx"), "-v"])
    notes += [
        f"front end: {nginx_version or 'nginx'}, deploy/nginx/scgi.conf, access log off; "
        f"wrk -t{options.threads} -c{options.connections}, {options.duration:g} s per "
        "measurement",
        f"versions: {versions}, uWSGI {uwsgi_version or 'not installed'}",
    ]
    return Result("req/s", True, BASELINE, rows, notes, extras={CPU: False})


SCENARIO = Scenario(
    name="scgi",
    title="SCGI behind nginx (wsgigate vs flup, the scgi package, uWSGI)",
    about=(__doc__ or "").split("\n\n", 1)[1].strip(),
    run=run,
)
