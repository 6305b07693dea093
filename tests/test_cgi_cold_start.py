"""What a CGI request imports: every module costs each request about 1% of the interpreter's start.

The figures behind these budgets are in docs/benchmarks.md (``python -m benchmarks cgi-spawn``).
Each test starts a fresh interpreter, answers one GET the way a web server would ask, and lists
the modules imported after start-up: the stdlib modules that cost milliseconds must not be among
them, and wsgigate's own must stay within the budget.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Each costs a CGI request from 0.1 ms (__future__) to 10 ms (argparse, with re and gettext).
EXPENSIVE = {
    "__future__",
    "argparse",
    "dataclasses",
    "enum",
    "gettext",
    "logging",
    "re",
    "tempfile",
    "typing",
    "urllib",
    "wsgigate.errors",  # imported where an error is raised or caught
}

# wsgigate, wsgigate.cgi, wsgigate.core and its three modules. Adding one costs every CGI request
# about 1%: fold it into an existing module, or import it where it is needed.
WSGIGATE_BUDGET = 6

APP = """
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"hi\\n"]
"""

PROBE = """
import sys
before = set(sys.modules)
{body}
imported = sorted(set(sys.modules) - before)
import json
with open({report!r}, "w") as report:
    json.dump(imported, report)
"""

META = {
    "GATEWAY_INTERFACE": "CGI/1.1",
    "SERVER_SOFTWARE": "lighttpd/1.4.69",
    "SERVER_NAME": "127.0.0.1",
    "SERVER_PORT": "8080",
    "SERVER_PROTOCOL": "HTTP/1.1",
    "REQUEST_METHOD": "GET",
    "REQUEST_URI": "/cgi-bin/app.cgi/x?y=1",
    "SCRIPT_NAME": "/cgi-bin/app.cgi",
    "PATH_INFO": "/x",
    "QUERY_STRING": "y=1",
    "REMOTE_ADDR": "127.0.0.1",
    "HTTP_HOST": "127.0.0.1:8080",
}


def imported_by(body: str, cwd: Path) -> tuple[bytes, list[str]]:
    """Run ``body`` as a CGI script would; its stdout and the modules it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHONDEVMODE", "PYTHONW"))}
    env.update(META)
    report = cwd / "imported.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(body=body, report=str(report))],
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout, json.loads(report.read_text())


def check_budget(modules: list[str]) -> None:
    expensive = sorted(m for m in modules if m.split(".")[0] in EXPENSIVE or m in EXPENSIVE)
    assert not expensive, f"the CGI path imports {expensive}"
    ours = [m for m in modules if m == "wsgigate" or m.startswith("wsgigate.")]
    assert len(ours) <= WSGIGATE_BUDGET, f"{len(ours)} wsgigate modules on the CGI path: {ours}"


def test_cgi_script_imports_only_its_own_path(tmp_path: Path) -> None:
    out, modules = imported_by(f"from wsgigate.cgi import run\n{APP}\nrun(app)", tmp_path)
    assert out.startswith(b"Status: 200 OK\r\n") and out.endswith(b"\r\n\r\nhi\n")
    check_budget(modules)
    assert "wsgigate.cgi" in modules  # the probe saw the imports it is meant to see


@pytest.mark.parametrize("form", ["module", "file"])
def test_cgi_command_skips_argparse_and_other_gateways(tmp_path: Path, form: str) -> None:
    (tmp_path / "app_module.py").write_text(APP)
    # `python -c` has the working directory on sys.path: app_module imports from there.
    spec = "app_module:app" if form == "module" else f"{tmp_path / 'app_module.py'}:app"
    out, modules = imported_by(f"from wsgigate.cli import main\nmain(['cgi', {spec!r}])", tmp_path)
    assert out.endswith(b"\r\n\r\nhi\n")
    assert "argparse" not in modules and "re" not in modules
    others = [m for m in modules if m.startswith(("wsgigate.fastcgi", "wsgigate.aws_lambda"))]
    assert not others, f"`wsgigate cgi` imports other gateways: {others}"
