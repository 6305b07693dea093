"""A byte consumer shared by the fuzz targets (atheris is needed only to drive them).

The targets' ``check(data)`` functions use this reader instead of atheris's
FuzzedDataProvider, so the regression tests replay crash inputs without atheris installed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Reader:
    """Takes small integers, byte strings and choices off the front of ``data``."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def int(self, high: int) -> int:
        """An integer in 0..high (inclusive), from one or two bytes."""
        if high < 256:
            return self.byte() % (high + 1)
        return ((self.byte() << 8) | self.byte()) % (high + 1)

    def flag(self) -> bool:
        return bool(self.byte() & 1)

    def bytes(self, max_size: int) -> bytes:
        size = min(self.int(max_size), self.left)
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def text(self, max_size: int) -> str:
        """Latin-1 text biased to the characters that break parsers."""
        raw = self.bytes(max_size)
        special = "\x00\r\n%/?#;=&+ \t\x7f\xff\u20ac\ud800é"
        return "".join(special[b % len(special)] if b >= 0xF0 else chr(b) for b in raw)

    def choice(self, items: list[T] | tuple[T, ...]) -> T:
        return items[self.int(len(items) - 1)]

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out


def cuts(reader: Reader, data: bytes) -> list[bytes]:
    """``data`` cut at up to 8 points chosen by the reader (empty pieces dropped)."""
    points = sorted({reader.int(len(data)) for _ in range(reader.int(8))})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def main(check: Callable[[bytes], None], seeds: Callable[[], list[bytes]]) -> None:
    """Run ``check`` under atheris (coverage-guided; libFuzzer arguments from argv).

    A corpus directory given on the command line that is empty gets ``seeds()`` first.
    """
    import sys
    from pathlib import Path

    import atheris

    corpus = [Path(arg) for arg in sys.argv[1:] if not arg.startswith("-")]
    for directory in corpus:
        if directory.is_dir() and not any(directory.iterdir()):
            for index, seed in enumerate(seeds()):
                (directory / f"seed-{index:03d}").write_bytes(seed)
    atheris.instrument_all()  # coverage of everything imported so far (wsgigate included)
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()
