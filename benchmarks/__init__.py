"""wsgigate's benchmarks: one runner, one module per scenario.

    python -m benchmarks                      # every scenario
    python -m benchmarks cgi core             # some of them
    python -m benchmarks cgi --write-docs     # ... and update their section of docs/benchmarks.md

A scenario is a module in this package, registered in :data:`SCENARIOS`, with a module-level
``SCENARIO = Scenario(...)``. Its ``run(options)`` starts every side it compares (the wsgigate
side and its competitors, in the same run), drives them (wrk against a real server, or an
in-process loop) and returns a :class:`Result`: one :class:`Row` per side. The runner prints the
rows with their ratio to the scenario's named baseline and can write them, with the exact command
and the machine's facts, into the scenario's own section of ``docs/benchmarks.md``.

To add a scenario (FastCGI, SCGI, Lambda, ASGI...): write ``benchmarks/NAME.py`` with a
``SCENARIO`` and add ``"NAME": "benchmarks.NAME"`` to :data:`SCENARIOS`. Shared helpers for
starting servers and driving wrk are in :mod:`benchmarks.harness`.
"""

from __future__ import annotations

import importlib
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

# Scenario name -> module holding its SCENARIO. Imported only when the scenario runs, so a
# scenario's optional dependencies (flup, uvicorn...) never break the others.
SCENARIOS: dict[str, str] = {
    "core": "benchmarks.core",
    "cgi": "benchmarks.cgi",
    "cgi-spawn": "benchmarks.cgi_spawn",
    "asgi": "benchmarks.asgi",
    "lambda": "benchmarks.lambda_events",
    "scgi": "benchmarks.scgi",
    "fastcgi": "benchmarks.fastcgi",
}


@dataclass
class Options:
    """What the command line says about how long and how often to measure."""

    duration: float = 10.0  # seconds per measurement (one wrk run, one in-process loop)
    rounds: int = 3  # interleaved rounds over all sides; the table shows the median
    connections: int = 4  # wrk -c
    threads: int = 2  # wrk -t
    python: str = ""  # interpreter for the processes a scenario starts ("" = this one)
    together: bool = False  # a round drives every side at the same time (where supported)
    compare: str = ""  # another interpreter whose wsgigate is one more side (where supported)
    verbose: bool = False


@dataclass
class Row:
    """One side of a comparison: every sample measured and the unit they are in."""

    side: str
    samples: list[float]
    note: str = ""
    extras: dict[str, list[float]] = field(default_factory=dict)  # secondary metrics

    @property
    def value(self) -> float:
        return statistics.median(self.samples)


@dataclass
class Result:
    """What a scenario measured: its rows, the unit and which row the ratios are taken against."""

    unit: str  # "req/s" or "µs/req"
    higher_is_better: bool
    baseline: str  # side of the row the ratio column divides by
    rows: list[Row]
    notes: list[str] = field(default_factory=list)  # facts the docs should carry (versions...)
    # Secondary metrics in Row.extras: column name -> higher is better (shown with a ratio too).
    extras: dict[str, bool] = field(default_factory=dict)

    def ratio(self, row: Row, extra: str | None = None) -> float:
        """``row`` relative to the baseline: the median of the per-round ratios when both have
        the same rounds (each round's sides ran under the same load), else of the medians."""
        base = next(r for r in self.rows if r.side == self.baseline)
        mine = row.samples if extra is None else row.extras[extra]
        theirs = base.samples if extra is None else base.extras[extra]
        if len(mine) == len(theirs) and all(theirs):
            return statistics.median(m / t for m, t in zip(mine, theirs, strict=True))
        median = statistics.median(theirs)
        return statistics.median(mine) / median if median else float("nan")


@dataclass
class Scenario:
    """A registered benchmark: ``run`` measures, ``title`` and ``about`` head its docs section."""

    name: str
    title: str
    about: str  # what the figures mean; written above the table in the docs
    run: Callable[[Options], Result]


def load(name: str) -> Scenario:
    """The :class:`Scenario` registered as ``name``."""
    try:
        module_name = SCENARIOS[name]
    except KeyError:
        known = ", ".join(sorted(SCENARIOS))
        raise SystemExit(f"unknown scenario {name!r}; known: {known}") from None
    scenario = importlib.import_module(module_name).SCENARIO
    if not isinstance(scenario, Scenario):
        raise TypeError(f"{module_name}.SCENARIO is not a benchmarks.Scenario")
    return scenario
