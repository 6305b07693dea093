"""The results table, for the terminal and for docs/benchmarks.md (one section per scenario)."""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks import Result, Scenario
from benchmarks.harness import DOCS

_HEADER = """# Benchmarks

Every figure here comes from `python -m benchmarks` (see `benchmarks/__init__.py`): each scenario
starts wsgigate and its competitors in the same run, measures them in interleaved rounds
(a, b, c, a, b, c, ...) and shows the median with its ratio to a named baseline (the median of
the per-round ratios). Absolute numbers depend on the machine and on what else it was doing;
compare the ratios. Each section
between its `benchmarks:NAME` markers is rewritten by `python -m benchmarks NAME --write-docs`;
write commentary outside the markers.
"""


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}"


def table(result: Result) -> list[str]:
    """A Markdown table: side, median, every sample, ratio to the baseline (and the extras)."""
    better = "higher is better" if result.higher_is_better else "lower is better"
    head = f"| side | {result.unit} (median; {better}) | rounds | vs {result.baseline} |"
    rule = "| --- | ---: | ---: | ---: |"
    for name, higher in result.extras.items():
        head += f" {name} (median; {'higher' if higher else 'lower'} is better) | vs baseline |"
        rule += " ---: | ---: |"
    lines = [head, rule]
    for row in result.rows:
        samples = " / ".join(_number(s) for s in row.samples)
        side = f"{row.side} ({row.note})" if row.note else row.side
        line = f"| {side} | {_number(row.value)} | {samples} | {result.ratio(row):.2f}x |"
        for name in result.extras:
            value = statistics.median(row.extras[name])
            line += f" {_number(value)} | {result.ratio(row, name):.2f}x |"
        lines.append(line)
    return lines


def section(scenario: Scenario, result: Result, command: str, facts: dict[str, str]) -> str:
    lines = [scenario.about, "", *table(result), "", f"- command: `{command}`"]
    lines += [f"- {name}: {value}" for name, value in facts.items()]
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines)


def write_docs(
    scenario: Scenario,
    result: Result,
    command: str,
    facts: dict[str, str],
    path: Path = DOCS,
) -> None:
    """Replace the scenario's generated block in ``path``, or append a new section for it."""
    begin = f"<!-- benchmarks:{scenario.name} begin (generated; edit outside the markers) -->"
    end = f"<!-- benchmarks:{scenario.name} end -->"
    block = f"{begin}\n{section(scenario, result, command, facts)}\n{end}"
    text = path.read_text() if path.exists() else _HEADER
    start = text.find(f"<!-- benchmarks:{scenario.name} begin")
    stop = text.find(end)
    if start >= 0 and stop > start:
        text = text[:start] + block + text[stop + len(end) :]
    else:
        text = text.rstrip("\n") + f"\n\n## {scenario.title}\n\n{block}\n"
    path.write_text(text)
