"""The documentation stays true: generated pages match the code, the site builds with
``mkdocs build --strict``, the README shows real ``wsgigate check`` output, and the README's
quick start works in a virtualenv built from scratch.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import EXAMPLES, ROOT, free_port, require_module
from wsgigate import reference
from wsgigate.check import check, format_table

DOCS = ROOT / "docs"


def test_configuration_reference_matches_the_cli() -> None:
    committed = (DOCS / "configuration.md").read_text(encoding="utf-8")
    assert committed == reference.markdown(), (
        "docs/configuration.md differs from the command line's definitions: "
        "python -m wsgigate.reference --write docs/configuration.md"
    )


def test_reference_covers_every_command_and_option() -> None:
    from wsgigate.cli import COMMANDS, build_parser

    page = reference.markdown()
    for name in COMMANDS:
        assert f"## `wsgigate {name}`" in page
    import argparse

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    option_strings = {
        option
        for sub in commands.choices.values()
        for action in sub._actions
        for option in action.option_strings
        if option not in ("-h", "--help")
    }
    assert option_strings and all(f"`{option}`" in page for option in option_strings)


def test_reference_check_mode(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    assert reference.main(["--check", str(page)]) == 1
    assert reference.main(["--write", str(page)]) == 0
    assert reference.main(["--check", str(page)]) == 0


def _hello_table() -> str:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from hello import app
    finally:
        sys.path.remove(str(EXAMPLES))
    return format_table(check(app))


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_check_output_shown_first_is_real(page: str) -> None:
    text = (ROOT / page).read_text()
    table = _hello_table()
    assert "FAIL" not in table
    command = text.index("wsgigate check examples/hello.py:app")
    assert text.index(table.splitlines()[0]) > command
    indented = "\n".join("    " + line for line in table.splitlines())
    assert table in text or indented in text, f"{page} must show wsgigate check's output:\n{table}"
    first_section = text.find("\n## ")
    assert first_section < 0 or command < first_section, "check's output comes before any section"


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    require_module("mkdocs")
    require_module("material")  # mkdocs-material, the 'docs' extra
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for page in ("quickstart", "cgi", "fastcgi", "scgi", "lambda", "asgi", "deploy", "testing"):
        assert (site / page / "index.html").exists(), page
    for page in ("configuration", "architecture", "benchmarks", "comparison", "migrating"):
        assert (site / page / "index.html").exists(), page
    deploy = (site / "deploy" / "index.html").read_text()
    for text in ("/run/wsgigate/app.sock", "DynamicUser", "fastcgi-request"):
        assert text in deploy  # the deploy/ files are shown as they are
    assert (site / "benchmarks" / "index.html").read_text().count("benchmarks.png") >= 1


def test_readme_quickstart_in_a_clean_venv(tmp_path: Path) -> None:
    """The README's first set-up command, from a copy of the tree without .venv, bounded."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    tree = tmp_path / "wsgigate"
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file() and not os.fsdecode(name).startswith(".venv/"):
            target = tree / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    readme = (ROOT / "README.md").read_text()
    assert "    bash scripts/quickstart.sh\n" in readme
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    log = tmp_path / "quickstart.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["bash", "scripts/quickstart.sh"],
            cwd=tree,
            env={**env, "BIND": f"127.0.0.1:{port}"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        body = b""
        while time.monotonic() < deadline and not body:
            assert process.poll() is None, log.read_text()[-4000:]
            with contextlib.suppress(OSError):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/")
                body = conn.getresponse().read()
                conn.close()
            time.sleep(0.2)
        assert body == b"Hello, world!\n", log.read_text()[-4000:]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = log.read_text()
    assert (tree / ".venv" / "bin" / "wsgigate").exists()
    assert _hello_table() in output, output[-3000:]
