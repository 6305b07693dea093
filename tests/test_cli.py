"""The command line (wsgigate.cli): bad specs end in one line and exit 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EXAMPLES, ROOT
from wsgigate import __version__
from wsgigate.cli import COMMANDS, EXIT_USAGE, build_parser, main

BAD_SPECS = [
    "wsgigate_no_such_module:app",
    "cli_broken_dep:app",
    "cli_good:missing_attribute",
    "cli_good:create(__import__('os').system('touch PWNED'))",
    "cli_good:create({[1]: 2})",
    "cli_good:not_callable",
    "cli_neither",
    "no/such/file.py:app",
    ":app",
    "bad-module-name:app",
]


@pytest.fixture
def cwd_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "cli_good.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'ok']\n"
        "def create(*args):\n"
        "    return app\n"
        "not_callable = 1\n"
    )
    (tmp_path / "cli_broken_dep.py").write_text("import cli_dependency_not_installed\n")
    (tmp_path / "cli_neither.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.mark.parametrize("command", ["check", "cgi", "run"])
@pytest.mark.parametrize("spec", BAD_SPECS)
def test_bad_spec_exit_2_one_line(
    cwd_modules: Path, capsys: pytest.CaptureFixture[str], command: str, spec: str
) -> None:
    assert main([command, spec]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wsgigate: error: ")
    assert "Traceback" not in err
    assert not (cwd_modules / "PWNED").exists()


def run_cli(
    *args: str, cwd: Path | str = ROOT, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    env.pop("GATEWAY_INTERFACE", None)
    return subprocess.run(
        [sys.executable, "-m", "wsgigate", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("wsgigate_no_such_module:app", "module 'wsgigate_no_such_module' not found"),
        ("cli_broken_dep:app", "was found, but importing it failed"),
        ("cli_good:nope", "has no attribute 'nope'"),
    ],
)
def test_bad_spec_end_to_end(cwd_modules: Path, spec: str, expected: str) -> None:
    result = run_cli("check", spec, cwd=cwd_modules)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_check_example_passes_end_to_end() -> None:
    result = run_cli("check", "examples/hello.py:app")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["gateway", "status", "result"]
    rows = {line.split("  ")[0]: line for line in lines[1:]}
    assert "direct" in rows and "cgi" in rows
    for line in lines[1:]:
        assert line.rstrip().endswith("PASS"), line
        assert "200 OK" in line


def test_check_with_request_options(capsys: pytest.CaptureFixture[str]) -> None:
    spec = f"{EXAMPLES / 'hello.py'}:app"
    status = main(
        [
            "check",
            spec,
            "--method",
            "POST",
            "--path",
            "/echo?x=1",
            "--header",
            "Content-Type: text/plain",
            "--data",
            "payload",
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert out.count("PASS") == len(out.splitlines()) - 1


def test_check_bad_header_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", f"{EXAMPLES / 'hello.py'}:app", "--header", "no colon"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_every_command_has_help_and_an_app_argument() -> None:
    parser = build_parser()
    assert {"run", "cgi", "check"} <= set(COMMANDS)
    for name, (help_text, _, _) in COMMANDS.items():
        assert help_text
        if name in ("run", "cgi", "check"):
            args = parser.parse_args([name, "mod:app"])
            assert args.app == "mod:app"


def _cgi_env(**meta: str) -> dict[str, str]:
    """This process's environment plus a CGI request's meta-variables."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_NAME": "localhost",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        **meta,
    }


def test_cgi_command_end_to_end() -> None:
    env = _cgi_env(
        REQUEST_METHOD="POST",
        SCRIPT_NAME="/cgi-bin/hello",
        PATH_INFO="/echo",
        QUERY_STRING="",
        CONTENT_LENGTH="5",
        CONTENT_TYPE="text/plain",
    )
    result = subprocess.run(
        [sys.executable, "-m", "wsgigate", "cgi", "examples/hello.py:app"],
        cwd=ROOT,
        env=env,
        input=b"hello and more bytes than CONTENT_LENGTH",
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"Status: 200 OK\r\n")
    assert result.stdout.endswith(b"\r\n\r\nhello")


def test_cgi_command_forwarded_allow_ips(tmp_path: Path) -> None:
    (tmp_path / "scheme_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [environ['wsgi.url_scheme'].encode()]\n"
    )
    env = _cgi_env(REQUEST_METHOD="GET", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_PROTO="https")

    def scheme(*options: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "wsgigate", "cgi", "scheme_app.py:app", *options],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=60,
        )

    assert scheme().stdout.endswith(b"\r\n\r\nhttp")
    assert scheme("--forwarded-allow-ips", "10.0.0.0/8").stdout.endswith(b"\r\n\r\nhttps")
    assert scheme("--forwarded-allow-ips", "192.0.2.1").stdout.endswith(b"\r\n\r\nhttp")
    bad = scheme("--forwarded-allow-ips", "proxy.example")
    assert bad.returncode == 2 and bad.stdout == b""
    assert bad.stderr.decode().strip().splitlines() == [
        "wsgigate: error: --forwarded-allow-ips: 'proxy.example' is not an IP address or "
        "network (e.g. 10.0.0.5, 10.0.0.0/8, ::1, or * for any)"
    ]


@pytest.mark.parametrize("bind", ["nonsense", "127.0.0.1:http", "999.1.1.1:8000"])
def test_run_bad_bind_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bind: str
) -> None:
    import wsgigate.host

    for name in ("GATEWAY_INTERFACE", "AWS_LAMBDA_RUNTIME_API", "LISTEN_FDS", "LISTEN_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(wsgigate.host, "fd0_is_listening_socket", lambda: False)
    assert main(["run", f"{EXAMPLES / 'hello.py'}:app", "--bind", bind]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert bind in err
