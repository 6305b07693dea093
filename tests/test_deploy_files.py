"""Every file in deploy/ is used by a test: none is only documentation.

A test module "uses" ``deploy/DIR/.../NAME`` when its code names each part as a string literal
(``DEPLOY / "apache" / "cgi.conf"``, or ``UNITS = DEPLOY / "systemd"`` and ``"wsgigate.socket"``).
"""

from __future__ import annotations

import re

import pytest

from tests.support import DEPLOY, ROOT

TESTS = {path: path.read_text() for path in (ROOT / "tests").rglob("test_*.py")}
FILES = sorted(p.relative_to(DEPLOY) for p in DEPLOY.rglob("*") if p.is_file())


def _users(parts: tuple[str, ...]) -> list[str]:
    literals = [re.compile(r"""["']""" + re.escape(part) + r"""["']""") for part in parts]
    return [
        path.name
        for path, text in TESTS.items()
        if path.name != "test_deploy_files.py" and all(lit.search(text) for lit in literals)
    ]


@pytest.mark.parametrize("relative", FILES, ids=str)
def test_deploy_file_is_used_by_a_test(relative: object) -> None:
    parts = relative.parts  # type: ignore[attr-defined]
    assert _users(parts), f"deploy/{relative} is not used by any test in tests/"


def test_the_check_finds_what_it_should() -> None:
    assert len(FILES) >= 15
    assert "test_deploy_systemd.py" in _users(("systemd", "wsgigate.socket"))
    assert not _users(("systemd", "no-such-file.conf"))
