"""The benchmarks plot (docs/img/benchmarks.png), drawn from the figures recorded in
docs/benchmarks.md.

    python -m benchmarks --plot                  # redraw from the recorded figures
    python -m benchmarks asgi --write-docs       # writes the figures, then redraws the plot

Every generated section (between its ``benchmarks:NAME`` markers) becomes one panel: each
side's ratio to the scenario's baseline, as the section's table gives it. The PNG records a
digest of the figures it was drawn from (text chunk ``wsgigate-figures``), so
tests/test_benchmarks_plot.py can tell when the docs changed and the plot was not redrawn.
matplotlib (the ``docs`` or ``bench`` extra) is imported only to draw.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from benchmarks.harness import DOCS

PNG = DOCS.parent / "img" / "benchmarks.png"
DIGEST_KEY = "wsgigate-figures"

_BLOCK = re.compile(
    r"<!-- benchmarks:(?P<name>[\w-]+) begin[^>]*-->\n"
    r"(?P<body>.*?)"
    r"<!-- benchmarks:(?P=name) end -->",
    re.S,
)


@dataclass
class Figures:
    """One scenario's table: the metric, which way is better, the baseline, each side's ratio."""

    name: str
    unit: str
    higher_is_better: bool
    baseline: str
    sides: list[tuple[str, float, float]]  # side, median value, ratio to the baseline


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def recorded(path: Path = DOCS) -> list[Figures]:
    """The figures of every generated section of docs/benchmarks.md, in page order."""
    found = []
    for block in _BLOCK.finditer(path.read_text(encoding="utf-8")):
        lines = [line for line in block["body"].splitlines() if line.startswith("|")]
        if len(lines) < 3:
            continue
        head = _cells(lines[0])
        metric = re.match(r"(?P<unit>.*) \(median; (?P<way>higher|lower) is better\)", head[1])
        if head[0] != "side" or not metric or not head[3].startswith("vs "):
            continue
        sides = []
        for line in lines[2:]:
            cells = _cells(line)
            value = float(cells[1].replace(",", ""))
            sides.append((cells[0], value, float(cells[3].rstrip("x"))))
        found.append(
            Figures(block["name"], metric["unit"], metric["way"] == "higher", head[3][3:], sides)
        )
    return found


def digest(figures: list[Figures]) -> str:
    data = [[f.name, f.unit, f.higher_is_better, f.baseline, f.sides] for f in figures]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def png_text(path: Path) -> dict[str, str]:
    """The tEXt chunks of a PNG file (no imaging library needed)."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    texts, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunk = data[offset + 8 : offset + 8 + length]
        if kind == b"tEXt":
            key, _, value = chunk.partition(b"\0")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt":
            key, _, rest = chunk.partition(b"\0")
            texts[key.decode("latin-1")] = zlib.decompress(rest[1:]).decode("latin-1")
        offset += 12 + length
    return texts


def _label(side: str) -> str:
    side = re.sub(r" \((?:\d[\d,]* of [\d,]+ requests failed)\)", " (with errors)", side)
    return side if len(side) <= 44 else side[:43] + "…"


def draw(figures: list[Figures], output: Path = PNG) -> Path:
    """Draw one panel per scenario and write the PNG (with the figures' digest in it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not figures:
        raise ValueError("no generated benchmark sections to plot")
    heights = [0.9 + 0.38 * len(f.sides) for f in figures]
    fig, axes = plt.subplots(
        len(figures),
        1,
        figsize=(9, sum(heights) + 0.6),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, scenario in zip(axes[:, 0], figures, strict=True):
        labels = [_label(side) for side, _, _ in scenario.sides]
        ratios = [ratio for _, _, ratio in scenario.sides]
        colors = [
            "#2e7d32" if side.startswith("wsgigate") else "#9e9e9e" for side, _, _ in scenario.sides
        ]
        bars = ax.barh(range(len(ratios)), ratios, color=colors)
        ax.set_yticks(range(len(ratios)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.axvline(1.0, color="black", linewidth=0.8)
        way = "higher" if scenario.higher_is_better else "lower"
        ax.set_title(
            f"{scenario.name}: {scenario.unit}, ratio to {scenario.baseline} ({way} is better)",
            fontsize=9,
            loc="left",
        )
        ax.bar_label(bars, labels=[f"{r:.2f}x" for r in ratios], fontsize=7, padding=2)
        ax.set_xlim(0, max(ratios) * 1.18)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle("wsgigate vs peers, measured in the same runs (docs/benchmarks.md)", fontsize=10)
    # tight_layout ignores the suptitle: keep the top strip free for it
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / (sum(heights) + 0.6)))
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(
        output,
        dpi=100,
        metadata={DIGEST_KEY: digest(figures), "Software": "python -m benchmarks --plot"},
    )
    plt.close(fig)
    return output
