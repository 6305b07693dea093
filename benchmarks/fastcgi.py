"""FastCGI behind real nginx, driven by wrk: wsgigate vs flup vs fcgisgi vs uWSGI vs gunicorn.

Every side serves the same 13-byte "Hello, world!" WSGI app behind one nginx (one server block
per side, nginx ``worker_processes 1``), measured with 1 and 2 worker processes and with
``fastcgi_keep_conn`` off (a new connection per request, Debian's stock ``fastcgi_params``) and
on (an upstream ``keepalive 16`` pool):

- ``wsgigate``: ``wsgigate fastcgi --workers N --threads 4 --access-logfile none``;
- ``wsgigate --threads 0``: the same with no thread pool (each worker serves on its main
  thread, one request at a time: the shape of uWSGI's processes);
- ``flup``: flup's threaded ``WSGIServer`` (one process whatever N: it has no pre-fork mode
  with threads);
- ``fcgisgi``: ``fcgisgi.run_wsgi_server`` (asyncio + a thread pool; one process whatever N);
- ``uWSGI``: Debian's uwsgi-core + uwsgi-plugin-python3, ``--fastcgi-socket``, ``--processes
  N``, one thread per process (its fastest setting for this app), logging off;
- ``gunicorn``: ``gunicorn -w N -k gthread --threads 4`` behind ``proxy_pass`` (HTTP/1.1;
  "keep_conn on" = an upstream keepalive pool).

Requests per second count only successful answers. The ratio column divides by flup with one
worker and keep_conn off; the notes give wsgigate's ratio to flup and to uWSGI for each
configuration. "server CPU µs/req" (user + system time of the side's processes over the
requests answered) moves much less with the machine's load than req/s.
"""

from __future__ import annotations

import os
import pwd
import shutil
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from benchmarks import Options, Result, Row, Scenario
from benchmarks.asgi import measure
from benchmarks.harness import (
    BenchmarkError,
    free_port,
    interleaved,
    interpreter,
    require,
    server,
    tool_version,
    wait_for_port,
)

APP = """
def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [b"Hello, world!"]
"""

FLUP = (
    "import sys; from flup.server.fcgi import WSGIServer; from bench_app import hello; "
    "WSGIServer(hello, bindAddress=('127.0.0.1', int(sys.argv[1]))).run()"
)
FCGISGI = (
    "import asyncio, sys; from fcgisgi import run_wsgi_server; from bench_app import hello; "
    "asyncio.run(run_wsgi_server(hello, ('127.0.0.1', int(sys.argv[1])), max_workers=4))"
)

NGINX = """
user {user};
worker_processes 1;
error_log {logdir}/error.log warn;
pid {logdir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {logdir}/client_body_temp;
    fastcgi_temp_path {logdir}/fastcgi_temp;
    proxy_temp_path {logdir}/proxy_temp;
    scgi_temp_path {logdir}/scgi_temp;
    uwsgi_temp_path {logdir}/uwsgi_temp;
{servers}
}}
"""
FASTCGI_SERVER = """
    upstream pool_{port} {{ server 127.0.0.1:{backend}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ include /etc/nginx/fastcgi_params; fastcgi_pass 127.0.0.1:{backend}; }}
        location /keep/ {{
            include /etc/nginx/fastcgi_params;
            fastcgi_keep_conn on;
            fastcgi_pass pool_{port};
        }}
    }}
"""
PROXY_SERVER = """
    upstream pool_{port} {{ server 127.0.0.1:{backend}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://127.0.0.1:{backend}; }}
        location /keep/ {{
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://pool_{port};
        }}
    }}
"""

SIDES = ("wsgigate", "wsgigate --threads 0", "flup", "fcgisgi", "uWSGI", "gunicorn (proxy_pass)")
BASELINE = "flup, 1 worker, keep_conn off"
CPU = "server CPU µs/req"


def group_cpu(pgid: int) -> float:
    """User + system CPU seconds of every live process in process group ``pgid``."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            # own user + system, and the reaped children's (recycled workers)
            total += sum(int(f) for f in fields[11:15]) / tick
    return total


def _argv(side: str, python: str, work: Path, port: int, workers: int) -> list[str]:
    if side.startswith("wsgigate"):
        return [
            python,
            "-m",
            "wsgigate",
            "fastcgi",
            "bench_app:hello",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "0" if side.endswith("0") else "4",
            "--access-logfile",
            "none",
            "--log-level",
            "warning",
        ]
    if side == "flup":
        return [python, "-c", FLUP, str(port)]
    if side == "fcgisgi":
        return [python, "-c", FCGISGI, str(port)]
    if side == "uWSGI":
        uwsgi = _uwsgi()
        return [
            uwsgi,
            "--plugin",
            "python3",
            "--fastcgi-socket",
            f"127.0.0.1:{port}",
            "--master",
            "--processes",
            str(workers),
            "--pythonpath",
            str(work),
            "--module",
            "bench_app:hello",
            "--disable-logging",
            "--die-on-term",
        ]
    return [
        python,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "bench_app:hello",
    ]


def _uwsgi() -> str:
    """Debian's uWSGI with its python3 plugin, or a clear error saying what to install."""
    binary = shutil.which("uwsgi") or shutil.which("uwsgi-core")
    if not binary or not Path("/usr/lib/uwsgi/plugins/python3_plugin.so").exists():
        raise BenchmarkError(
            "uWSGI is not installed: apt-get install uwsgi-core uwsgi-plugin-python3"
        )
    return binary


@contextmanager
def _nginx(work: Path, backends: dict[str, int]) -> Iterator[dict[str, int]]:
    """One nginx with a server block per side; returns side -> nginx port."""
    binary = require("nginx", "/usr/sbin/nginx")
    logdir = work / "nginx"
    logdir.mkdir()
    user = pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        user = "www-data"
        entry = pwd.getpwnam(user)
        os.chown(logdir, entry.pw_uid, entry.pw_gid)
    ports = {side: free_port() for side in backends}
    blocks = [
        (PROXY_SERVER if side.startswith("gunicorn") else FASTCGI_SERVER).format(
            port=ports[side], backend=backend
        )
        for side, backend in backends.items()
    ]
    config = work / "nginx.conf"
    config.write_text(NGINX.format(user=user, logdir=logdir, servers="".join(blocks)))
    argv = [binary, "-p", f"{logdir}/", "-e", str(logdir / "error.log"), "-c", str(config)]
    argv += ["-g", "daemon off;"]
    with server(argv, port=next(iter(ports.values())), log=logdir / "stderr.log") as process:
        for port in ports.values():
            wait_for_port(port, process)
        yield ports


def _ratio(mine: Row, theirs: Row) -> float:
    """Median of the per-round ratios (each round's sides ran under the same load)."""
    if len(mine.samples) == len(theirs.samples) and all(theirs.samples):
        return statistics.median(m / t for m, t in zip(mine.samples, theirs.samples, strict=True))
    return mine.value / theirs.value


def _side_name(side: str, workers: int, keep: bool) -> str:
    return (
        f"{side}, {workers} worker{'s' if workers > 1 else ''}, keep_conn {'on' if keep else 'off'}"
    )


def run(options: Options) -> Result:
    python = interpreter(options.python)
    work = Path(tempfile.mkdtemp(prefix="wsgigate-bench-fastcgi-"))
    os.chmod(work, 0o755)
    (work / "bench_app.py").write_text(APP)
    env = {**os.environ, "PYTHONPATH": str(work)}
    env.pop("PYTHONDEVMODE", None)
    measures: dict[str, Callable[[], float]] = {}
    failures: dict[str, list[tuple[int, int]]] = {}
    cpu: dict[str, list[float]] = {}
    try:
        with ExitStack() as stack:
            backends: dict[str, int] = {}
            pids: dict[str, int] = {}
            for workers in (1, 2):
                for side in SIDES:
                    if workers == 2 and side in ("flup", "fcgisgi"):
                        continue  # one process whatever N: the 1-worker rows stand for them
                    key = f"{side}/{workers}"
                    port = free_port()
                    argv = _argv(side, python, work, port, workers)
                    process = stack.enter_context(
                        server(argv, port=port, log=work / f"{side[:8]}-{workers}.log", env=env)
                    )
                    backends[key] = port
                    pids[key] = process.pid
            ports = stack.enter_context(_nginx(work, backends))
            for keep in (False, True):
                for key, port in ports.items():
                    side, _, workers_text = key.partition("/")
                    name = _side_name(side, int(workers_text), keep)
                    url = f"http://127.0.0.1:{port}/{'keep/' if keep else ''}hello"
                    failures[name], cpu[name] = [], []

                    def one(name: str = name, url: str = url, pgid: int = pids[key]) -> float:
                        before = group_cpu(pgid)
                        rate, requests, failed = measure(url, options)
                        spent = group_cpu(pgid) - before
                        failures[name].append((failed, requests))
                        cpu[name].append(spent / max(requests - failed, 1) * 1e6)
                        return rate

                    measures[name] = one
            log = print if options.verbose else (lambda _: None)
            samples = interleaved(measures, options.rounds, log)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name, values in samples.items():
        failed = sum(f for f, _ in failures[name])
        total = sum(r for _, r in failures[name])
        note = f"{failed:,} of {total:,} requests failed" if failed else ""
        rows.append(Row(name, values, note, extras={CPU: cpu[name]}))
    result = Result("req/s", True, BASELINE, rows, extras={CPU: False})
    by_name = {row.side: row for row in rows}
    ratios = []
    for workers in (1, 2):
        for keep in (False, True):
            pool = by_name[_side_name("wsgigate", workers, keep)]
            inline = by_name[_side_name("wsgigate --threads 0", workers, keep)]
            flup = by_name[_side_name("flup", 1, keep)]
            uwsgi = by_name[_side_name("uWSGI", workers, keep)]
            ratios.append(
                f"{workers} worker(s), keep_conn {'on' if keep else 'off'}: "
                f"--threads 4 {_ratio(pool, flup):.2f}x flup, {_ratio(pool, uwsgi):.2f}x uWSGI; "
                f"--threads 0 {_ratio(inline, flup):.2f}x flup, {_ratio(inline, uwsgi):.2f}x uWSGI"
            )
    versions = tool_version(
        [
            python,
            "-c",
            "import importlib.metadata as m; print(', '.join(p + ' ' + m.version(p) for p in "
            "('flup', 'fcgisgi', 'gunicorn')))",
        ]
    )
    result.notes = [
        f"wrk -t{options.threads} -c{options.connections}, {options.duration:g} s per "
        f"measurement, {options.rounds} interleaved round(s), median shown; nginx "
        f"{tool_version(['nginx', '-v']).rpartition('/')[2]}, 1 worker process",
        "wsgigate's ratios: " + "; ".join(ratios),
        f"versions: {versions}; uWSGI {tool_version([_uwsgi(), '--version'])} "
        f"(Debian's python3 plugin, {tool_version(['/usr/bin/python3', '--version'])}; "
        f"the Python sides run {tool_version([python, '--version'])})",
    ]
    return result


SCENARIO = Scenario(
    name="fastcgi",
    title="FastCGI behind nginx (wsgigate vs flup, fcgisgi, uWSGI; gunicorn over proxy_pass)",
    about=(
        "A hello-world WSGI app behind one real nginx (one server block per side), driven by "
        "wrk; 1 and 2 worker processes; `fastcgi_keep_conn` off (stock `fastcgi_params`, a "
        "connection per request) and on (an upstream `keepalive 16` pool). wsgigate runs "
        "with 4 threads per worker and with `--threads 0` (no pool: the worker's main thread "
        "serves, like uWSGI's one thread per process). flup and fcgisgi run one process "
        "whatever the worker count. "
        "gunicorn (gthread, 4 threads) sits behind `proxy_pass` instead. The ratio column "
        "divides by flup with keep_conn off; the notes give wsgigate's ratio to flup and uWSGI "
        "per configuration. Server CPU µs/req is the side's processes' CPU time per answered "
        "request: it moves far less with the machine's load than req/s."
    ),
    run=run,
)


if __name__ == "__main__":  # pragma: no cover
    raise BenchmarkError("run it as: python -m benchmarks fastcgi")
