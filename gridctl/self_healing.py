"""Self-healing in the control loop: protection trips in, ordered switching commands out.

The controller runtime calls :meth:`FaultResponder.respond` whenever a protection point changes,
with the latest protection points, keyed ``(device id, point)``: breakers' ``tripped`` and
``closed``, switches' ``closed``, fault indicators' ``fault_detected``, substation transformers'
``in_service`` (:attr:`FaultResponder.points` lists them). When a trip or a lost transformer
appears that has not been handled yet, the responder builds a
:class:`~controllers.flisr.ProtectionReport`, asks :func:`~controllers.flisr.plan_restoration`
once for a plan, and returns the plan's steps as writes in the plan's order: switching as
``close_cmd`` (open = ``False``, close = ``True``), shedding as ``connect_cmd = False`` of a
customer load or ``p_site_limit_kw = 0`` of an EV site (the plan sheds before it closes the
switch that re-energises the load), together with timeline entries (detection, isolation,
shedding, each restoration step) stamped with the simulated time.

The loads and EV sites the responder shed are remembered until it reconnects them. At every
later call without a new trip, if the switch or transformer state differs from the one last
studied, :func:`~controllers.flisr.plan_reconnection` checks by one AC batch in the present state
which of them can come back (most important first, as many as hold the limits, only where the
bus is supplied); they are returned as ``connect_cmd = True`` or ``p_site_limit_kw`` = the site's
maximum (``action = "restore"``, which releases an EV site from FLISR's hold in the runtime),
with a ``load_on`` timeline entry each. A new trip wins: in a call that plans for one, nothing
is reconnected. Loads the responder did not shed are never touched.

A trip stays "handled" while it is reported; once it is gone (the breaker was re-closed) the
same breaker tripping again is a new fault. Plans and reconnections are checked at the ``PEAK``
operating point unless another is given: conservative, since what holds at peak holds at
lighter load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from controllers.flisr import (
    AcCheck,
    OperatingValues,
    ProtectionReport,
    Reconnection,
    RestorationPlan,
    StepAction,
    plan_reconnection,
    plan_restoration,
    report_from_points,
)
from controllers.flisr_context import FlisrContext
from network_models.ac_checks import PEAK, OperatingPoint
from network_models.model import GridModel
from network_models.registry import (
    EvChargingSite,
    FaultIndicator,
    Load,
    SubstationTransformer,
    SwitchDevice,
    SwitchKind,
)

__all__ = [
    "FaultResponder",
    "FlisrResponse",
    "SwitchCommand",
    "TimelineEntry",
    "protection_points",
    "supply_command",
]

PointKey = tuple[str, str]


@dataclass(frozen=True, kw_only=True)
class SwitchCommand:
    """One write of the plan, in order: ``close_cmd`` of a switch, ``connect_cmd`` of a customer
    load, or an EV site's limit (kW)."""

    device: str
    point: str
    value: bool | float
    action: str  # "open" | "close" | "shed" | "restore" (a shed load or EV site back on)
    reason: str

    @property
    def key(self) -> PointKey:
        return (self.device, self.point)


@dataclass(frozen=True, kw_only=True)
class TimelineEntry:
    """Something the responder saw or did, at simulated (or real) time ``time``."""

    time: pd.Timestamp
    kind: str  # "detection" | "isolation" | "restoration_step" | "shed" | "load_on"
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


def supply_command(device: Load | EvChargingSite, *, on: bool, reason: str) -> SwitchCommand:
    """The write that sheds a customer load or an EV site (``on`` False) or brings it back:
    a load's ``connect_cmd``; an EV site's ``p_site_limit_kw``, 0 or its rating (the runtime
    holds a site at 0 kW until a write that is not a shed releases it)."""
    if isinstance(device, EvChargingSite):
        point, value = "p_site_limit_kw", float(device.p_site_max_kw) if on else 0.0
    else:
        point, value = "connect_cmd", on
    return SwitchCommand(device=device.id, point=point, value=value,
                         action="restore" if on else "shed", reason=reason)


def protection_points(model: GridModel) -> tuple[PointKey, ...]:
    """The points FLISR reads: breaker trips, switch positions, indicators, transformers."""
    keys: list[PointKey] = []
    for device in model.registry:
        if isinstance(device, SwitchDevice):
            keys.append((device.id, "closed"))
            if device.switch_kind == SwitchKind.BREAKER:
                keys.append((device.id, "tripped"))
        elif isinstance(device, FaultIndicator):
            keys.append((device.id, "fault_detected"))
        elif isinstance(device, SubstationTransformer):
            keys.append((device.id, "in_service"))
    return tuple(keys)


@dataclass
class FaultResponder:
    """Turns new protection trips into a FLISR plan and its ordered switching commands, and
    reconnects what it shed once the grid carries it again."""

    model: GridModel
    operating: OperatingPoint | OperatingValues = PEAK
    context: FlisrContext | None = None
    plans: list[RestorationPlan] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    _handled: set[str] = field(default_factory=set)
    _kept_off: dict[str, None] = field(default_factory=dict)  # ordered set, in shedding order
    _studied: tuple[Any, ...] | None = None  # what the last reconnection study looked at

    def __post_init__(self) -> None:
        if self.context is None:
            self.context = FlisrContext.of(self.model)
        self.points = protection_points(self.model)

    @property
    def handled(self) -> frozenset[str]:
        """Trips (breaker names, ``out:<transformer>``) already answered and still reported."""
        return frozenset(self._handled)

    @property
    def shed(self) -> tuple[str, ...]:
        """Loads and EV sites this responder shed and has not reconnected, in shedding order."""
        return tuple(self._kept_off)

    def resume(self, handled: Iterable[str], shed: Iterable[str] = ()) -> None:
        """Take over what an earlier run already answered (from its historian), so a trip that
        is still reported after a restart is not planned for a second time, and the loads and
        EV sites it shed and had not reconnected, so they still come back."""
        self._handled = set(handled)
        for device in shed:
            registry = self.model.registry
            if device not in registry or not isinstance(registry[device], Load | EvChargingSite):
                # caught here, at start-up, rather than at every later respond()
                raise ValueError(f"cannot resume {device!r} as shed: expected a customer load "
                                 f"or an EV site of model {self.model.name!r}")
            self._kept_off[device] = None
        self._studied = None

    def forget(self, trips: Iterable[str]) -> None:
        """Answer ``trips`` again at the next call: their commands did not all reach the field
        (the connection was lost in the middle)."""
        self._handled -= set(trips)

    def respond(self, now: pd.Timestamp, values: Mapping[PointKey, Any]) -> FlisrResponse:
        """The response to the protection points ``values`` read at ``now``.

        Points missing from ``values`` (a device that does not answer) are left out of the
        report, so a switch whose position is unknown is taken in its normal state.
        """
        report = report_from_points(self.model, values)
        signature = set(report.tripped_breakers) | {f"out:{t}" for t in report.transformers_out}
        self._handled &= signature  # a trip that is gone may come back as a new fault
        new = signature - self._handled
        if not new:
            return self._reconnect(now, report)
        self._handled |= signature
        return replace(self._plan(now, report), trips=frozenset(new))

    def _plan(self, now: pd.Timestamp, report: ProtectionReport) -> FlisrResponse:
        plan = plan_restoration(self.model, report, operating=self.operating,
                                context=self.context)
        self.plans.append(plan)
        entries = [TimelineEntry(
            time=now, kind="detection",
            text=(f"{plan.location.kind.value} located: sections "
                  f"{', '.join(plan.location.sections) or '-'}; lines "
                  f"{', '.join(plan.location.lines) or '-'}; trips "
                  f"{', '.join(sorted(report.tripped_breakers)) or '-'}; plan {plan.status}, "
                  f"{plan.switch_operations} switching operation(s), AC check "
                  f"{'ok' if plan.check.ok else 'FAILED'}"),
        )]
        commands = []
        for step in plan.steps:
            command, entry = self._command(now, step.action, step.device, step.reason)
            entries.append(entry)
            commands.append(command)
            if step.action is StepAction.SHED:
                self._kept_off[step.device] = None
        # the plan changes the switching: whatever was studied before no longer holds
        self._studied = None
        self.timeline.extend(entries)
        return FlisrResponse(commands=tuple(commands), plan=plan, timeline=tuple(entries))

    def _reconnect(self, now: pd.Timestamp, report: ProtectionReport) -> FlisrResponse:
        """Reconnect what this responder shed, as far as the present switch state carries it."""
        studied = self._study_key(report)
        if not self._kept_off or studied == self._studied:
            # the AC answer depends only on these: the same question needs no second study
            return FlisrResponse()
        study = plan_reconnection(self.model, report, self.shed, operating=self.operating,
                                  context=self.context)
        commands, entries = [], []
        for n, device in enumerate(study.reconnected, start=1):
            command, entry = self._restore(now, device, study.checks[n])
            commands.append(command)
            entries.append(entry)
            del self._kept_off[device]
        # what is kept off stays off in this state: study it again when the state changes
        self._studied = self._study_key(report)
        self.timeline.extend(entries)
        return FlisrResponse(commands=tuple(commands), timeline=tuple(entries),
                             reconnection=study)

    def _study_key(self, report: ProtectionReport) -> tuple[Any, ...]:
        return (tuple(sorted(report.switch_closed.items())), report.transformers_out,
                self.shed, self.operating)

    def _restore(self, now: pd.Timestamp, device: str,
                 check: AcCheck) -> tuple[SwitchCommand, TimelineEntry]:
        spec = self.model.registry[device]
        why = (f"supply restored and the AC check holds (min V {check.v_min_pu:.3f} pu, max "
               f"loading {max(check.max_line_loading_pct, check.max_trafo_loading_pct):.1f} %)")
        command = supply_command(spec, on=True, reason=why)
        text = f"reconnect {device}: {why}"
        if isinstance(spec, EvChargingSite):
            text = f"reconnect {device} (site limit {spec.p_site_max_kw:g} kW): {why}"
        return command, TimelineEntry(time=now, kind="load_on", text=text, device=device)

    def _command(self, now: pd.Timestamp, action: StepAction, device: str,
                 reason: str) -> tuple[SwitchCommand, TimelineEntry]:
        if action is StepAction.OPEN:
            return (SwitchCommand(device=device, point="close_cmd", value=False, action="open",
                                  reason=reason),
                    TimelineEntry(time=now, kind="isolation", text=f"open {device}: {reason}",
                                  device=device))
        if action is StepAction.CLOSE:
            return (SwitchCommand(device=device, point="close_cmd", value=True, action="close",
                                  reason=reason),
                    TimelineEntry(time=now, kind="restoration_step",
                                  text=f"close {device}: {reason}", device=device))
        return self._shed(now, device, reason)

    def _shed(self, now: pd.Timestamp, device: str,
              reason: str) -> tuple[SwitchCommand, TimelineEntry]:
        spec = self.model.registry[device]
        if not isinstance(spec, EvChargingSite | Load):
            # FLISR sheds only loads and EV sites: anything else is a planner bug
            raise ValueError(
                f"plan sheds {device}, a {spec.kind.value}: expected a customer load or an EV "
                "site"
            )
        # a load's intake opens and stays open until someone reconnects it
        verb = "curtail {} to 0 kW" if isinstance(spec, EvChargingSite) else "disconnect {}"
        return (supply_command(spec, on=False, reason=reason),
                TimelineEntry(time=now, kind="shed", text=f"{verb.format(device)}: {reason}",
                              device=device))
