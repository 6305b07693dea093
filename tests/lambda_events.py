"""Lambda events for tests: keyword builders (``make_v1_event(method=..., path=...)``) and the
AWS Powertools sample payloads in ``../shared/events/powertools`` (MIT-0, see SOURCE.md there).

The builders live in :mod:`wsgigate.aws_lambda.events` because ``wsgigate lambda invoke`` and
``wsgigate check`` use them too; this module re-exports them for the tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support import ROOT
from wsgigate.aws_lambda.events import (
    BUILDERS,
    make_alb_event,
    make_edge_event,
    make_function_url_event,
    make_lattice_event,
    make_lattice_v2_event,
    make_v1_event,
    make_v2_event,
    parse_response,
)

POWERTOOLS = ROOT.parent / "shared" / "events" / "powertools"

__all__ = [
    "BUILDERS",
    "POWERTOOLS",
    "make_alb_event",
    "make_edge_event",
    "make_function_url_event",
    "make_lattice_event",
    "make_lattice_v2_event",
    "make_v1_event",
    "make_v2_event",
    "parse_response",
    "powertools",
    "powertools_names",
]


def powertools_names() -> list[str]:
    return sorted(path.stem for path in POWERTOOLS.glob("*.json"))


def powertools(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(Path(POWERTOOLS, name + ".json").read_text())
    return event
