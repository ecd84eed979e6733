"""What a hosting study found: per location and control, the largest value that held, with its
binding element and its figures, as records, JSON, one line and a table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from gridctl.studies.hosting_locations import Control, Location, What


@dataclass(frozen=True, kw_only=True)
class Found:
    """The largest value that held on every day, checked in AC at that value."""

    value: int
    unit: str
    capped: bool  # the search reached its cap without a failure
    worst_day: str | None  # the day that failed just above
    binding: dict[str, Any] | None  # what broke first just above the value
    at_value: dict[str, Any]  # figures of the AC check at the value, worst over the days
    evaluations: int  # day checks run (a plan each, for orderly)
    wall_s: float


@dataclass(frozen=True, kw_only=True)
class HostingResult:
    location: Location
    what: What
    found: dict[Control, Found]
    added_at_value: dict[Control, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "kind": loc.kind,
            "name": loc.name,
            "feeder": loc.feeder,
            "what": self.what.value,
            "note": loc.note,
            "targets": [t.device_id for t in loc.targets],
            **{c.value: {
                "added": f.value,
                "unit": f.unit,
                "capped": f.capped,
                "worst_day": f.worst_day,
                "binding": f.binding,
                "at_value": f.at_value,
                "added_by_target": self.added_at_value.get(c, {}),
                "evaluations": f.evaluations,
                "wall_s": round(f.wall_s, 3),
            } for c, f in self.found.items()},
        }


def one_line(r: HostingResult) -> str:
    parts = [f"{r.location.kind} {r.location.name}:"]
    for c, f in r.found.items():
        b = f.binding or {}
        parts.append(f"{c.value} +{f.value} {f.unit}"
                     + (f" ({b.get('kind', '')} {b.get('element', '')})" if b else " (cap)"))
    return " ".join(parts)


def results_frame(results: Sequence[HostingResult]) -> pd.DataFrame:
    """One row per location: the value found and the binding element per control."""
    rows = []
    for r in results:
        row = {"kind": r.location.kind, "name": r.location.name, "feeder": r.location.feeder}
        for c, f in r.found.items():
            b = f.binding or {}
            row[f"{c.value}_added"] = f.value
            row[f"{c.value}_binding"] = (f"{b.get('kind', '')} {b.get('element', '')}".strip()
                                         if b else "cap reached")
            row[f"{c.value}_worst_day"] = f.worst_day
        rows.append(row)
    return pd.DataFrame(rows)
