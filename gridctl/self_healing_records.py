"""The records of self-healing in the control loop: a write of a plan, a timeline entry, a
response, a fault isolated (see :mod:`gridctl.self_healing`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from controllers.flisr import Reconnection, RestorationPlan

PointKey = tuple[str, str]  # (device id, point name)


@dataclass(frozen=True, kw_only=True)
class SwitchCommand:
    """One write of the plan, in order: ``close_cmd`` of a switch, ``connect_cmd`` of a customer
    load, or an EV site's limit (kW)."""

    device: str
    point: str
    value: bool | float
    # "open" | "close" | "shed" | "restore" (a shed load or EV site back on) | "reset" (a
    # fault indicator's indication)
    action: str
    reason: str

    @property
    def key(self) -> PointKey:
        return (self.device, self.point)


@dataclass(frozen=True, kw_only=True)
class TimelineEntry:
    """Something the responder saw or did, at simulated (or real) time ``time``."""

    time: pd.Timestamp
    # "detection" | "isolation" | "restoration_step" | "shed" | "load_on" | "indicator_reset"
    # | "reclosed_onto_fault" | "isolation_lifted"
    kind: str
    text: str
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time.isoformat(), "kind": self.kind, "text": self.text,
                "device": self.device}


@dataclass(frozen=True, kw_only=True)
class FlisrResponse:
    """What to do now: commands to write in order, the plan (or the reconnection study) behind
    them, what to record. ``reconnection`` is None when no reconnection study ran."""

    commands: tuple[SwitchCommand, ...] = ()
    plan: RestorationPlan | None = None
    timeline: tuple[TimelineEntry, ...] = ()
    reconnection: Reconnection | None = None
    trips: frozenset[str] = frozenset()  # the new trips this response answers



@dataclass(frozen=True, kw_only=True)
class IsolatedFault:
    """A fault FLISR located and isolated; in force until its sections are live again."""

    sections: tuple[str, ...]
    lines: tuple[str, ...]
    switches: tuple[str, ...]  # bounding switches: never closed by a plan while in force
    since: pd.Timestamp

    def to_dict(self) -> dict[str, Any]:
        return {"sections": list(self.sections), "lines": list(self.lines),
                "switches": list(self.switches), "since": self.since.isoformat()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IsolatedFault:
        return cls(sections=tuple(data["sections"]), lines=tuple(data["lines"]),
                   switches=tuple(data["switches"]), since=pd.Timestamp(data["since"]))

