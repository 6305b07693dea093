"""The benchmark harness still runs: registry, in-process scenario, table and docs writer.

Benchmarks are not part of the pass/fail of the suite (their figures depend on the machine); this
only keeps ``python -m benchmarks`` from rotting. The server scenarios need lighttpd and wrk and
take minutes, so they are run by hand (see docs/benchmarks.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import SCENARIOS, Options, load
from benchmarks.__main__ import parse
from benchmarks.report import table, write_docs


def test_every_registered_scenario_loads() -> None:
    for name in SCENARIOS:
        scenario = load(name)
        assert scenario.name == name
        assert scenario.about and scenario.title


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(SystemExit):
        parse(["no-such-scenario"])


def test_core_scenario_measures_both_sides(tmp_path: Path) -> None:
    scenario = load("core")
    result = scenario.run(Options(duration=0.05, rounds=1, verbose=False))
    sides = [row.side for row in result.rows]
    assert result.baseline in sides
    assert any(side.startswith("wsgigate") for side in sides)
    for row in result.rows:
        assert len(row.samples) == 1
        assert 0 < row.value < 10_000  # microseconds per request: positive and sane
    assert result.ratio(next(r for r in result.rows if r.side == result.baseline)) == 1.0
    lines = table(result)
    assert len(lines) == 2 + len(result.rows)

    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nintro\n\n## Other\n\nkept\n")
    facts = {"date": "today"}
    write_docs(scenario, result, "python -m benchmarks core", facts, path=docs)
    write_docs(scenario, result, "python -m benchmarks core --rounds 1", facts, path=docs)
    text = docs.read_text()
    assert text.count("<!-- benchmarks:core begin") == 1  # rewritten in place, not appended
    assert text.count(f"## {scenario.title}") == 1
    assert "--rounds 1" in text and "## Other\n\nkept" in text
