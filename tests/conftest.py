"""Fixtures shared by the whole suite.

Integration tests start real servers (lighttpd, Apache, nginx, uvicorn...) on loopback. A missing
binary skips the test on a developer's machine, but fails it on CI (``CI=true``): there a skip
would hide exactly what the test is for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.support import ROOT


@pytest.fixture
def error_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Records of the ``wsgigate`` loggers, at every level."""
    caplog.set_level(logging.DEBUG, logger="wsgigate")
    yield caplog


@pytest.fixture
def project_root() -> str:
    return str(ROOT)
