"""wsgigate.testing: the pytest plugin users get with the package (entry point ``pytest11``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from tests.support import EXAMPLES
from wsgigate.testing import Client, Response, asgi_request, gateways, lambda_event, lambda_sources

sys.path.insert(0, str(EXAMPLES))
from hello import app as hello_app  # noqa: E402


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_entry_point_names_the_plugin() -> None:
    found = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert found.get("wsgigate") == "wsgigate.testing"


def test_loading_the_plugin_imports_only_the_standard_library() -> None:
    code = textwrap.dedent(
        """
        import sys
        import pytest
        before = set(sys.modules)
        import wsgigate.testing
        new = sorted(set(sys.modules) - before)
        bad = [m for m in new if m.partition(".")[0] not in sys.stdlib_module_names
               and m not in ("wsgigate", "wsgigate.testing")]
        print(" ".join(bad) or "ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stdout + out.stderr


def test_every_gateway_answers_alike() -> None:
    names = gateways()
    assert {"direct", "cgi", "http", "fastcgi", "asgi", "lambda:alb", "lambda:rest"} <= set(names)
    assert len([n for n in names if n.startswith("lambda:")]) == len(lambda_sources())
    for name in names:
        client = Client(hello_app, name, validate=True)
        response = client.post("/echo", body="caf\u00e9", headers={"Content-Type": "text/plain"})
        assert (response.status, response.body) == (200, "caf\u00e9".encode()), name
        cookies = client.get("/cookies").header_list("set-cookie")
        assert len(cookies) == 2, (name, cookies)


def test_client_errors_and_response_helpers() -> None:
    with pytest.raises(ValueError, match="unknown gateway 'gopher'"):
        Client(hello_app, "gopher")
    with pytest.raises(ValueError, match="unknown Lambda source"):
        lambda_event("sqs")
    response = Response("201 Created", [("X-A", "1"), ("x-a", "2")], b'{"k": [1]}')
    assert (response.status, response.reason) == (201, "Created")
    assert response.header("X-a") == "1" and response.header_list("X-A") == ["1", "2"]
    assert response.header("missing", "d") == "d"
    assert response.json() == {"k": [1]}


def test_lambda_event_builders_make_each_source_s_shape() -> None:
    assert "httpMethod" in lambda_event("rest", method="PUT", path="/x")
    assert lambda_event("http_api", path="/x")["version"] == "2.0"
    assert "elb" in lambda_event("alb")["requestContext"]
    assert "cf" in lambda_event("edge")["Records"][0]


def test_asgi_request_drives_any_asgi_app() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(scope)
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 418, "headers": [(b"x", b"y")]})
        await send({"type": "http.response.body", "body": body[::-1]})

    response = asgi_request(app, "post", "/caf%C3%A9?q=1", body=b"abc", root_path="/r")
    assert (response.status, response.reason, response.body) == (418, "I'm a Teapot", b"cba")
    assert response.header("x") == "y"
    assert (seen["path"], seen["raw_path"], seen["query_string"]) == (
        "/caf\u00e9",
        b"/caf%C3%A9",
        b"q=1",
    )
    assert seen["root_path"] == "/r" and seen["method"] == "POST"


def test_users_suite_with_ini_option(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [environ['PATH_INFO'].encode('latin-1')]\n"
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\nwsgigate_app = myapp:app\n")
    (tmp_path / "test_mine.py").write_text(
        "def test_path(gateway_client):\n"
        "    assert gateway_client.get('/a/b').body == b'/a/b'\n"
        "def test_one(lambda_client, fastcgi_client):\n"
        "    assert lambda_client.get('/x').status == fastcgi_client.get('/x').status == 200\n"
    )
    result = _pytest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(gateways()) + 1} passed" in result.stdout


def test_users_suite_without_an_app_is_told_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text("def test_x(asgi_client):\n    pass\n")
    result = _pytest(tmp_path)
    assert result.returncode == 1
    assert "define a `wsgi_app` fixture" in result.stdout
    disabled = _pytest(tmp_path, "-p", "no:wsgigate")
    assert "fixture 'asgi_client' not found" in disabled.stdout
