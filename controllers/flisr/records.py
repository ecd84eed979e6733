"""The records of FLISR: what the field reported, what to check against, what was decided.

Inputs: :class:`ProtectionReport` (trips, indicators, switch states, transformers out) and
:class:`OperatingValues` (the loads and generation to check a plan against). Decision records:
:class:`RestorationPlan` (location, switching steps, loads restored, shed or unserved, the AC
check) and :class:`Reconnection`. Two records pass between the modules of the package and stay
inside it: :class:`LoadInfo` (a sheddable consumer and its row in ``net.load``) and
:class:`FaultZone` (what a located fault takes out of service, by net position).

This module imports nothing of the package, so every module of it may import it.
Sign conventions as in the registry: loads and EV sites consume (MW > 0), PV and BESS inject.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from network_models.ac_checks import PEAK, AcLimits, OperatingPoint, Violation
from network_models.topology import Section

__all__ = [
    "AcCheck",
    "FaultKind",
    "FaultLocation",
    "FaultZone",
    "LoadInfo",
    "LoadRecord",
    "OperatingValues",
    "ProtectionReport",
    "Reconnection",
    "RestorationPlan",
    "StepAction",
    "SwitchingStep",
]


class FaultKind(StrEnum):
    NONE = "none"  # nothing tripped
    FEEDER_SECTION = "feeder_section"
    BACKBONE_CABLE = "backbone_cable"
    SUBSTATION_TRANSFORMER = "substation_transformer"
    SUBSTATION = "substation"  # every transformer of a substation lost
    NOT_LOCATED = "not_located"


class StepAction(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    SHED = "shed"  # keep a load off (or curtail an EV site) before the part is re-energised


@dataclass(frozen=True, kw_only=True)
class ProtectionReport:
    """What protection and indicators reported, by device id.

    ``switch_closed`` holds the present ``closed`` point of switches (tripped breakers open);
    switches it does not name are taken in their normal state.
    """

    tripped_breakers: frozenset[str] = frozenset()
    fault_indicators: frozenset[str] = frozenset()
    switch_closed: Mapping[str, bool] = field(default_factory=dict)
    transformers_out: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in ("tripped_breakers", "fault_indicators", "transformers_out"):
            object.__setattr__(self, name, frozenset(getattr(self, name)))
        object.__setattr__(
            self,
            "switch_closed",
            MappingProxyType({k: bool(v) for k, v in self.switch_closed.items()}),
        )


@dataclass(frozen=True, kw_only=True)
class OperatingValues:
    """Present powers by device id on top of an operating point (MW, Mvar; registry signs).

    A load given ``p_mw`` without ``q_mvar`` keeps its power factor.
    """

    base: OperatingPoint = PEAK
    p_mw: Mapping[str, float] = field(default_factory=dict)
    q_mvar: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "p_mw", MappingProxyType(dict(self.p_mw)))
        object.__setattr__(self, "q_mvar", MappingProxyType(dict(self.q_mvar)))


@dataclass(frozen=True, kw_only=True)
class SwitchingStep:
    """One step of the plan, in order; ``device`` is a switch, load or EV site id."""

    order: int
    action: StepAction
    device: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class LoadRecord:
    """A load or EV site (``kind``) affected by the fault; EV sites count no customers."""

    device: str
    kind: str  # "load" | "ev_site"
    bus: str
    p_mw: float
    customers: int
    priority: int | None
    critical: bool


@dataclass(frozen=True, kw_only=True)
class FaultLocation:
    """Where the fault is and how it was found.

    ``sections`` are the faulted sections (more than one when the indicators cannot tell them
    apart); ``lines``, ``buses`` and ``trafos`` what they hold. ``indicator_mismatches`` are the
    indicators whose report contradicts the located section (a failed or reset indicator).
    """

    kind: FaultKind
    sections: tuple[str, ...] = ()
    lines: tuple[str, ...] = ()
    buses: tuple[str, ...] = ()
    trafos: tuple[str, ...] = ()
    tripped_breakers: tuple[str, ...] = ()
    last_indicator_with_fault: str | None = None
    first_indicators_without_fault: tuple[str, ...] = ()
    indicator_mismatches: tuple[str, ...] = ()
    bounding_switches: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class AcCheck:
    """AC power flow of the state the plan leaves; ``preexisting`` violations were there before
    restoration (after isolation) and are not made worse by it."""

    converged: bool
    v_min_pu: float
    v_max_pu: float
    max_line_loading_pct: float
    max_trafo_loading_pct: float
    losses_mw: float
    violations: tuple[Violation, ...] = ()
    preexisting: tuple[Violation, ...] = ()
    limits: AcLimits = field(default_factory=AcLimits)

    @property
    def ok(self) -> bool:
        return self.converged and not self.violations


@dataclass(frozen=True, kw_only=True)
class RestorationPlan:
    """The decision record of one FLISR run."""

    model: str
    status: str  # "restored" | "partially_restored" | "nothing_to_restore" | "no_fault" | ...
    location: FaultLocation
    steps: tuple[SwitchingStep, ...]
    interrupted: tuple[LoadRecord, ...]
    restored: tuple[LoadRecord, ...]
    shed: tuple[LoadRecord, ...]
    unserved: tuple[LoadRecord, ...]
    check: AcCheck
    final_switch_closed: Mapping[str, bool]
    solve_time_s: float
    notes: tuple[str, ...] = ()

    @property
    def switch_operations(self) -> int:
        return sum(1 for s in self.steps if s.action is not StepAction.SHED)

    @property
    def closed_switches(self) -> tuple[str, ...]:
        return tuple(s.device for s in self.steps if s.action is StepAction.CLOSE)

    @property
    def opened_switches(self) -> tuple[str, ...]:
        return tuple(s.device for s in self.steps if s.action is StepAction.OPEN)

    @property
    def restored_mw(self) -> float:
        return sum(r.p_mw for r in self.restored)

    @property
    def shed_mw(self) -> float:
        return sum(r.p_mw for r in self.shed)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["final_switch_closed"] = dict(self.final_switch_closed)
        data["check"]["ok"] = self.check.ok
        data.update(
            switch_operations=self.switch_operations,
            restored_mw=self.restored_mw,
            shed_mw=self.shed_mw,
            customers_interrupted=sum(r.customers for r in self.interrupted),
            customers_restored=sum(r.customers for r in self.restored),
            customers_shed=sum(r.customers for r in self.shed),
            customers_unserved=sum(r.customers for r in self.unserved),
        )
        return data


@dataclass(frozen=True, kw_only=True)
class Reconnection:
    """The decision record of reconnecting shed loads in the present switch state.

    ``candidates`` are the shed loads and EV sites whose bus is supplied now, in reconnection
    order (the reverse of shedding: critical loads, then priority 1, 2, ..., EV sites last);
    ``reconnected`` is the longest head of them whose every step holds the limits, ``kept_off``
    the rest, ``unsupplied`` the shed ones whose bus has no supply now. ``checks[n]`` is the AC
    check of the present state with the first ``n`` candidates back on (``checks[0]``: as it is);
    without candidates nothing is solved and ``checks`` is empty.
    """

    model: str
    candidates: tuple[str, ...]
    reconnected: tuple[str, ...]
    kept_off: tuple[str, ...]
    unsupplied: tuple[str, ...]
    checks: tuple[AcCheck, ...]
    solve_time_s: float

    @property
    def check(self) -> AcCheck | None:
        """The state the reconnection leaves (None if nothing was solved)."""
        return self.checks[len(self.reconnected)] if self.checks else None

    @property
    def refused(self) -> AcCheck | None:
        """Why ``kept_off`` stay off: the check with the first of them back on as well."""
        n = len(self.reconnected) + 1
        return self.checks[n] if n < len(self.checks) else None


@dataclass(frozen=True)
class LoadInfo:
    """A sheddable consumer: a customer load or an EV site, and its row in ``net.load``."""

    device: str
    kind: str  # "load" | "ev_site"
    position: int  # row position in net.load
    bus: int
    customers: int
    priority: int | None
    critical: bool

    def shed_rank(self) -> tuple[int, int, int, int]:
        """Sort key, first shed first: EV charging, then the highest priority number, fewest
        customers; critical loads last of all."""
        if self.kind == "ev_site":
            return (0, 0, 0, self.position)
        return (2 if self.critical else 1, -(self.priority or 0), self.customers, self.position)


@dataclass(frozen=True, kw_only=True)
class FaultZone:
    """What a located fault takes out of service: sections, or transformers."""

    kind: FaultKind
    sections: tuple[Section, ...] = ()
    trafos: tuple[str, ...] = ()
    tripped: tuple[int, ...] = ()  # switch positions
    last_indicator_with_fault: str | None = None
    first_indicators_without_fault: tuple[str, ...] = ()
    indicator_mismatches: tuple[str, ...] = ()
    note: str = ""
    bounding: tuple[int, ...] = field(default=())  # switch positions touching the zone
    isolating: tuple[int, ...] = field(default=())  # those between the zone and the rest
