"""examples/: the plain WSGI app, the Flask app and the Django project through every gateway.

- ``wsgigate check`` (the command line, as the README shows it) passes for each, for a GET,
  a POST with a body, a response with two cookies and a unicode path;
- each is served for real: ``wsgigate fastcgi`` and ``wsgigate scgi`` behind nginx
  (deploy/nginx/fastcgi.conf, deploy/nginx/scgi.conf), and ``wsgigate asgi`` under uvicorn;
- examples/test_apps.py, the example of wsgigate's pytest plugin, runs green.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import DEPLOY, EXAMPLES, ROOT, free_port, running
from wsgigate.check import PROBES

# name -> (MODULE:APP, extra PYTHONPATH entry)
APPS = {
    "hello": ("examples/hello.py:app", ""),
    "flask": ("examples/flask_app.py:app", ""),
    "django": ("mysite.wsgi:application", str(EXAMPLES / "django_project")),
}
# label -> (method, path, headers, body): what `wsgigate check` sends through every gateway
REQUESTS = {
    "post": ("POST", "/echo", [("Content-Type", "text/plain")], "caf\u00e9".encode()),
    "cookies": ("GET", "/cookies", [], b""),
    "unicode": ("GET", "/hello/caf%C3%A9", [], b""),
}


def _env(extra_path: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDEVMODE", None)  # the apps' speed, not the interpreter's checks
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [extra_path, env.get("PYTHONPATH")]))
    return env


@pytest.mark.parametrize("name", APPS)
def test_wsgigate_check_command_passes(name: str) -> None:
    spec, path = APPS[name]
    result = subprocess.run(
        [sys.executable, "-m", "wsgigate", "check", spec],
        cwd=ROOT,
        env=_env(path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rows = dict(re.findall(r"^(\S.*?)\s{2,}\d{3} .*?\s{2}(PASS|FAIL.*)$", result.stdout, re.M))
    assert set(rows) == {"direct", *PROBES}, result.stdout
    assert set(rows.values()) == {"PASS"}, result.stdout


@pytest.mark.parametrize("label", REQUESTS)
@pytest.mark.parametrize("name", APPS)
def test_wsgigate_check_passes_for_each_request(
    name: str, label: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `wsgigate check --method ... --path ... --data ...` runs, in-process."""
    from wsgigate.check import ProbeRequest, check, format_table
    from wsgigate.loader import load_app

    spec, path = APPS[name]
    if path:
        monkeypatch.syspath_prepend(path)
        monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysite.settings")
    monkeypatch.chdir(ROOT)
    method, target, headers, body = REQUESTS[label]
    rows = check(load_app(spec), ProbeRequest(method, target, "", headers, body))
    assert [row.gateway for row in rows] == ["direct", *PROBES]
    assert all(row.ok for row in rows), format_table(rows)


def _http(port: int, method: str, path: str, body: bytes = b"", **headers: str) -> Any:
    """(status, headers, body) from a plain HTTP server (uvicorn)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


@contextlib.contextmanager
def _stack(kind: str, spec: str, path: str, tmp_path: Path) -> Iterator[Any]:
    """A request function ``(method, path, body, **headers) -> (status, headers, body)`` for the
    app behind real nginx (FastCGI or SCGI backend) or under real uvicorn."""
    from tests.integration import servers
    from tests.test_server_runtime import live_server

    port = free_port()
    if kind == "uvicorn":
        argv = [sys.executable, "-m", "wsgigate", "asgi", spec, "--server", "uvicorn"]
        argv += ["--bind", f"127.0.0.1:{port}", "--threads", "2", "--log-level", "warning"]
        with running(argv, port=port, env=_env(path), cwd=ROOT, log=tmp_path / "uvicorn.log"):
            yield lambda *args, **headers: _http(port, *args, **headers)
        return
    protocol = kind.partition("-")[2]
    address = f"127.0.0.1:{port}"
    argv = [sys.executable, "-m", "wsgigate", protocol, spec, "--bind", address]
    argv += ["--workers", "0", "--threads", "2", "--access-logfile", "none"]
    config = DEPLOY / "nginx" / f"{protocol}.conf"
    with (
        live_server(argv, tmp_path, env=_env(path)),
        servers.nginx(config, values={"BACKEND": address}) as web,
    ):

        def send(method: str, target: str, body: bytes = b"", **headers: str) -> Any:
            answer = web.request(method, target, body=body, headers=headers)
            return answer.status, answer.headers, answer.body

        yield send


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["nginx-fastcgi", "nginx-scgi", "uvicorn"])
@pytest.mark.parametrize("name", APPS)
def test_on_a_real_server(name: str, kind: str, tmp_path: Path) -> None:
    spec, path = APPS[name]
    with _stack(kind, spec, path, tmp_path) as send:
        status, _, body = send("GET", "/")
        assert status == 200 and body.startswith(b"Hello"), (status, body)
        data = "caf\u00e9".encode()
        status, _, body = send("POST", "/echo", data, **{"Content-Type": "text/plain"})
        assert (status, body) == (200, data)
        _, headers, _ = send("GET", "/cookies")
        cookies = [v.split(";")[0].strip() for k, v in headers if k.lower() == "set-cookie"]
        assert sorted(cookies) == ["a=1", "b=2"]
        status, _, body = send("GET", "/hello/caf%C3%A9")
        assert status == 200 and "caf\u00e9".encode() in body
        if name != "hello":  # the framework builds its own URL from what the server passed
            _, _, body = send("GET", "/whoami", Host="example.org")
            assert body.strip() == b"http://example.org/whoami", body


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


def test_django_cookies_leave_the_asgi_bridge_without_leading_space(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Django writes ``Set-Cookie: " a=1; Path=/"``; uvicorn without httptools (h11) refuses a
    header value with leading whitespace and drops the connection (found by
    test_on_a_real_server[django-uvicorn])."""
    monkeypatch.syspath_prepend(str(EXAMPLES / "django_project"))
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from mysite.wsgi import application

    from wsgigate.testing import Client

    cookies = Client(application, "asgi").get("/cookies").header_list("Set-Cookie")
    assert cookies == ["a=1; Path=/", "b=2; HttpOnly; Path=/"]
