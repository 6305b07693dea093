"""Integration tests: a failed test's report ends with the error log of every running server."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.integration import servers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in servers.RUNNING:
            report.sections.append((f"{server.name} error log", server.log_tail(8000)))
