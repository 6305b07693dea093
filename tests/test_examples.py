"""examples/: the plain WSGI app, the Flask app and the Django project through every gateway.

- ``wsgigate check`` (the command line, as the README shows it) passes for each, for a GET,
  a POST with a body, a response with two cookies and a unicode path;
- each is served by a real ``wsgigate fastcgi`` process behind real nginx
  (deploy/nginx/fastcgi.conf);
- examples/test_apps.py, the example of wsgigate's pytest plugin, runs green.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import DEPLOY, EXAMPLES, ROOT, free_port
from wsgigate.check import PROBES

# name -> (MODULE:APP, extra PYTHONPATH entry)
APPS = {
    "hello": ("examples/hello.py:app", ""),
    "flask": ("examples/flask_app.py:app", ""),
    "django": ("mysite.wsgi:application", str(EXAMPLES / "django_project")),
}
REQUESTS = {
    "get": [],
    "post": [
        "--method",
        "POST",
        "--path",
        "/echo",
        "--header",
        "Content-Type: text/plain",
        "--data",
        "caf\u00e9",
    ],
    "cookies": ["--path", "/cookies"],
    "unicode": ["--path", "/hello/caf%C3%A9"],
}


def _env(extra_path: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDEVMODE", None)  # the apps' speed, not the interpreter's checks
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("name", APPS)
def test_wsgigate_check_passes(name: str) -> None:
    spec, path = APPS[name]
    for label, args in REQUESTS.items():
        result = subprocess.run(
            [sys.executable, "-m", "wsgigate", "check", *args, spec],
            cwd=ROOT,
            env=_env(path),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, f"{label}:\n{result.stdout}{result.stderr}"
        rows = dict(re.findall(r"^(\S.*?)\s{2,}\d{3} .*?\s{2}(PASS|FAIL.*)$", result.stdout, re.M))
        assert set(rows) == {"direct", *PROBES}, result.stdout
        assert set(rows.values()) == {"PASS"}, result.stdout


@pytest.mark.integration
@pytest.mark.parametrize("name", APPS)
def test_behind_nginx_over_fastcgi(name: str, tmp_path: Path) -> None:
    from tests.integration import servers
    from tests.test_server_runtime import live_server

    spec, path = APPS[name]
    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "-m", "wsgigate", "fastcgi", spec, "--bind", address]
    argv += ["--workers", "0", "--threads", "2", "--access-logfile", "none"]
    with (
        live_server(argv, tmp_path, env=_env(path)),
        servers.nginx(DEPLOY / "nginx" / "fastcgi.conf", values={"BACKEND": address}) as web,
    ):
        home = web.request("GET", "/")
        assert home.status == 200 and home.body.startswith(b"Hello"), home
        echo = web.request(
            "POST", "/echo", body="caf\u00e9".encode(), headers={"Content-Type": "text/plain"}
        )
        assert (echo.status, echo.body) == (200, "caf\u00e9".encode()), echo
        cookies = web.request("GET", "/cookies").header_all("Set-Cookie")
        assert sorted(c.split(";")[0].strip() for c in cookies) == ["a=1", "b=2"]
        if name != "hello":  # the framework builds its own URL from the front end's variables
            whoami = web.request("GET", "/whoami", headers={"Host": "example.org"})
            assert whoami.body.strip() == b"http://example.org/whoami", whoami


def test_example_test_suite_with_the_pytest_plugin() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/test_apps.py"],
        cwd=ROOT,
        env=_env(""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    from wsgigate.testing import gateways

    per_app = 4 * len(gateways()) + 2  # four tests per gateway, two single ones
    assert f"{3 * per_app} passed" in result.stdout, result.stdout[-500:]
