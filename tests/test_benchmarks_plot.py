"""docs/img/benchmarks.png is drawn by the benchmark runner from the figures in
docs/benchmarks.md, and redrawn whenever they change."""

from __future__ import annotations

import re
from pathlib import Path

from benchmarks.harness import DOCS
from benchmarks.plot import DIGEST_KEY, PNG, digest, draw, png_text, recorded

from tests.support import require_module


def test_every_generated_section_is_read() -> None:
    names = re.findall(r"<!-- benchmarks:([\w-]+) begin", DOCS.read_text())
    figures = recorded()
    assert [f.name for f in figures] == names and len(names) >= 3
    for scenario in figures:
        assert len(scenario.sides) >= 2
        baseline = [r for side, _, r in scenario.sides if side.startswith(scenario.baseline)]
        assert baseline == [1.0], scenario


def test_committed_plot_is_drawn_from_the_recorded_figures() -> None:
    assert "](img/benchmarks.png)" in DOCS.read_text()
    assert png_text(PNG).get(DIGEST_KEY) == digest(recorded()), (
        "docs/benchmarks.md changed since the plot was drawn: python -m benchmarks --plot"
    )


def test_the_runner_draws_it(tmp_path: Path) -> None:
    require_module("matplotlib")  # the 'docs' extra
    figures = recorded()
    figures[0].sides[0] = (figures[0].sides[0][0], figures[0].sides[0][1], 99.0)
    out = draw(figures, tmp_path / "plot.png")
    assert png_text(out)[DIGEST_KEY] == digest(figures) != digest(recorded())
    assert out.stat().st_size > 10_000
