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

Every trip is an event of its own: a breaker's ``trip_count`` tells one trip from the next, so
a breaker closed onto a fault that trips again at once (within one publication of the field)
is answered again, and recorded as a reclose onto a fault when the responder had closed,
within ``reclose_window_s``, a switch that the trip took off supply. (Without a counter a trip
counts as handled while it is reported, as before.)

Faults stay isolated until their section is live again (repaired and switched back in by the
crew): while in force, no plan closes a switch that bounds them. Before re-energising, a plan
resets the fault indicators it has read (those outside the isolated sections, dead at that
moment, so nothing new can be lost): if a close then meets a fault the locator missed, the
indications are fresh. Before each close the runtime reads the protection points again and
asks :meth:`FaultResponder.close_refusal` (see :mod:`controllers.flisr.guard`): a new trip, a
new indication since the plan, an isolated section or a part whose indicators have shown fault
current since the switch opened stop the sequence, and the trip is planned again.

Plans and reconnections are checked at the ``PEAK`` operating point unless another is given:
conservative, since what holds at peak holds at lighter load.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from controllers.flisr import (
    FlisrContext,
    OperatingValues,
    ProtectionReport,
    RestorationPlan,
    StepAction,
    close_refusal,
    energised_by_closing,
    live_part,
    plan_reconnection,
    plan_restoration,
    report_from_points,
)
from gridctl.self_healing_points import (
    detection_entry,
    indicator_resets,
    plan_step_write,
    protection_points,
    reconnection_write,
    supply_command,
    trip_ids,
)
from gridctl.self_healing_records import (
    FlisrResponse,
    IsolatedFault,
    PointKey,
    SwitchCommand,
    TimelineEntry,
)
from network_models.ac_checks import PEAK, OperatingPoint
from network_models.model import GridModel
from network_models.registry import EvChargingSite, Load

__all__ = [
    "FaultResponder",
    "FlisrResponse",
    "IsolatedFault",
    "SwitchCommand",
    "TimelineEntry",
    "protection_points",
    "supply_command",
]


@dataclass
class FaultResponder:
    """Turns new protection trips into a FLISR plan and its ordered switching commands, and
    reconnects what it shed once the grid carries it again."""

    model: GridModel
    operating: OperatingPoint | OperatingValues = PEAK
    context: FlisrContext | None = None
    # a trip this soon after a close of ours, before the close was seen to hold, is a reclose
    reclose_window_s: float = 60.0
    plans: list[RestorationPlan] = field(default_factory=list)
    plan_times: list[pd.Timestamp] = field(default_factory=list)  # when each plan was made
    timeline: list[TimelineEntry] = field(default_factory=list)
    # every reclose onto a fault seen: {time, breaker, closed, after_s}
    reclosures: list[dict[str, Any]] = field(default_factory=list)
    _handled: set[str] = field(default_factory=set)
    _kept_off: dict[str, None] = field(default_factory=dict)  # ordered set, in shedding order
    _studied: tuple[Any, ...] | None = None  # what the last reconnection study looked at
    _isolated: list[IsolatedFault] = field(default_factory=list)
    # observations: each respond/close_refusal call is one; what rose or opened when (by number)
    _seen: int = 0
    _rose: dict[str, int] = field(default_factory=dict)  # indicator -> observation it came up
    _opened: dict[str, int] = field(default_factory=dict)  # switch -> observation it opened
    _planned: int = 0  # observation of the last plan
    # closes we made and have not yet seen hold (closed, no new trip)
    _closed_at: dict[str, pd.Timestamp] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.context is None:
            self.context = FlisrContext.of(self.model)
        self.points = protection_points(self.model)
        self._indicators = {fi.id for fi in self.model.registry.fault_indicators}
        self._switches = {sw.id for sw in self.model.registry.switches}
        self._lock = threading.Lock()  # one study at a time on the context's study net

    @property
    def handled(self) -> frozenset[str]:
        """Trips already answered and still reported: ``breaker#count`` (``breaker`` where the
        field gives no counter), ``out:<transformer>``."""
        return frozenset(self._handled)

    @property
    def shed(self) -> tuple[str, ...]:
        """Loads and EV sites this responder shed and has not reconnected, in shedding order."""
        return tuple(self._kept_off)

    @property
    def isolated(self) -> tuple[IsolatedFault, ...]:
        """Faults isolated and not yet repaired (their sections not live again)."""
        return tuple(self._isolated)

    def resume(self, handled: Iterable[str], shed: Iterable[str] = (),
               isolated: Iterable[Mapping[str, Any]] = ()) -> None:
        """Take over what an earlier run already answered (from its historian), so a trip that
        is still reported after a restart is not planned for a second time, the loads and
        EV sites it shed and had not reconnected, so they still come back, and the faults it
        isolated, so no plan closes onto them."""
        self._handled = set(handled)
        for device in shed:
            registry = self.model.registry
            if device not in registry or not isinstance(registry[device], Load | EvChargingSite):
                # caught here, at start-up, rather than at every later respond()
                raise ValueError(f"cannot resume {device!r} as shed: expected a customer load "
                                 f"or an EV site of model {self.model.name!r}")
            self._kept_off[device] = None
        known = {s.name for s in self.context.sections}
        for data in isolated:
            fault = IsolatedFault.from_dict(data)
            if not set(fault.sections) <= known:
                raise ValueError(f"cannot resume the isolation of {fault.sections}: expected "
                                 f"sections of model {self.model.name!r}")
            self._isolated.append(fault)
        self._studied = None

    def forget(self, trips: Iterable[str]) -> None:
        """Answer ``trips`` again at the next call: their commands did not all reach the field
        (the connection was lost in the middle), or a close was refused as unsafe."""
        self._handled -= set(trips)

    def respond(self, now: pd.Timestamp, values: Mapping[PointKey, Any]) -> FlisrResponse:
        """The response to the protection points ``values`` read at ``now``.

        Points missing from ``values`` (a device that does not answer) are left out of the
        report, so a switch whose position is unknown is taken in its normal state.
        """
        with self._lock:
            self._observe(values)
            report = report_from_points(self.model, values)
            lifted = self._lift_repaired(now, report)
            signature = trip_ids(report, values)
            self._handled &= signature  # a trip that is gone may come back as a new fault
            new = signature - self._handled
            if not new:
                # a close of ours that reads closed with no new trip has held
                self._closed_at = {sw: t for sw, t in self._closed_at.items()
                                   if values.get((sw, "closed")) is not True}
                response = self._reconnect(now, report)
                return replace(response, timeline=(*lifted, *response.timeline))
            self._handled |= signature
            reclosed = self._reclosures(now, report, new)
            response = self._plan(now, report)
            return replace(response, trips=frozenset(new),
                           timeline=(*lifted, *reclosed, *response.timeline))

    def close_refusal(self, now: pd.Timestamp, command: SwitchCommand,
                      values: Mapping[PointKey, Any],
                      written: Iterable[SwitchCommand] = ()) -> str | None:
        """Why ``command`` (a close of the plan being written) must not go out, judged on the
        protection points ``values`` read just before it, in the switch state the commands
        ``written`` before it in the sequence leave (the field applies them in order, maybe
        not yet); None when it may."""
        with self._lock:
            self._observe(values)
            report = report_from_points(self.model, values)
            ahead = {c.device: bool(c.value) for c in written if c.point == "close_cmd"}
            report = replace(report, switch_closed={**report.switch_closed, **ahead})
            fresh = trip_ids(report, values) - self._handled
            if fresh:
                return f"a new trip since the plan ({', '.join(sorted(fresh))})"
            risen = sorted(fi for fi in report.fault_indicators
                           if self._rose.get(fi, 0) > self._planned)
            if risen:
                return f"{', '.join(risen)} showed fault current after the plan was made"
            opened = self._opened.get(command.device, 0)
            since = {fi for fi in report.fault_indicators if self._rose.get(fi, 0) > opened}
            return close_refusal(
                self.context, report, command.device,
                isolated={s for f in self._isolated for s in f.sections},
                indicated_since_open=since,
            )

    def confirm(self, now: pd.Timestamp, command: SwitchCommand) -> None:
        """The field took ``command``: a close is watched until it is seen to hold (a
        protection trip first, within ``reclose_window_s``, is a reclose onto a fault)."""
        if command.action == "close":
            self._closed_at[command.device] = now

    def _observe(self, values: Mapping[PointKey, Any]) -> None:
        """Note which indications came up and which switches opened since the last look."""
        self._seen += 1
        for (device, point), value in values.items():
            if point == "fault_detected" and device in self._indicators:
                if value is True:
                    self._rose.setdefault(device, self._seen)
                else:
                    self._rose.pop(device, None)
            elif point == "closed" and device in self._switches:
                if value is False:
                    self._opened.setdefault(device, self._seen)
                else:
                    self._opened.pop(device, None)

    def _lift_repaired(self, now: pd.Timestamp, report: ProtectionReport,
                       ) -> tuple[TimelineEntry, ...]:
        """Faults whose sections are live again (repaired, switched back in) are no longer in
        force."""
        if not self._isolated:
            return ()
        ctx = self.context
        live = live_part(ctx, ctx.state_from(report.switch_closed), report.transformers_out)
        buses = {ctx.bus_names[b] for b in live.buses}
        lines = {ctx.line_names[ln] for ln in live.lines}
        entries = []
        for fault in list(self._isolated):
            sections = [s for s in ctx.sections if s.name in fault.sections]
            if any(set(s.buses) & buses or set(s.lines) & lines for s in sections):
                self._isolated.remove(fault)
                entries.append(TimelineEntry(
                    time=now, kind="isolation_lifted",
                    text=f"section {', '.join(fault.sections)} is live again (repaired and "
                         "switched back in): its isolation is lifted"))
        self.timeline.extend(entries)
        return tuple(entries)

    def _reclosures(self, now: pd.Timestamp, report: ProtectionReport,
                    new: set[str]) -> tuple[TimelineEntry, ...]:
        """New trips that took off supply a switch we closed and had not seen hold."""
        window = pd.Timedelta(seconds=self.reclose_window_s)
        recent = {sw: t for sw, t in self._closed_at.items() if now - t <= window}
        self._closed_at = recent
        if not recent:
            return ()
        ctx = self.context
        entries = []
        for trip in sorted(new):
            breaker = trip.split("#", 1)[0]
            if breaker.startswith("out:") or breaker not in ctx.device_position:
                continue
            # what the breaker fed: energised again if it were closed
            fed = energised_by_closing(ctx, report, breaker)
            hit = sorted(sw for sw in recent if sw == breaker
                         or int(ctx.switch_bus[ctx.device_position[sw]]) in fed.buses)
            if not hit:
                continue
            after_s = min((now - recent[sw]).total_seconds() for sw in hit)
            self.reclosures.append({"time": now.isoformat(), "breaker": breaker,
                                    "closed": hit, "after_s": after_s})
            entries.append(TimelineEntry(
                time=now, kind="reclosed_onto_fault", device=breaker,
                text=f"{breaker} tripped {after_s:g} s after FLISR closed {', '.join(hit)}: "
                     "closed onto a fault; located again from the present indications"))
        self.timeline.extend(entries)
        return tuple(entries)

    def _plan(self, now: pd.Timestamp, report: ProtectionReport) -> FlisrResponse:
        in_force = tuple(s for f in self._isolated for s in f.sections)
        plan = plan_restoration(self.model, report, operating=self.operating,
                                context=self.context, isolated=in_force)
        self.plans.append(plan)
        self.plan_times.append(now)
        self._planned = self._seen
        entries = [detection_entry(now, plan, report)]
        faults = self._isolation_of(now, plan)
        held = {s for f in [*self._isolated, *faults] for s in f.sections}
        resets = indicator_resets(now, self.context, self.model.registry, report, held)
        commands = []
        for step in plan.steps:
            if step.action is StepAction.CLOSE and resets:
                # before the first re-energising close: the area is dead, nothing is lost
                for command, entry in resets:
                    commands.append(command)
                    entries.append(entry)
                resets = []
            command, entry = plan_step_write(now, self.model.registry, step.action, step.device,
                                             step.reason)
            entries.append(entry)
            commands.append(command)
            if step.action is StepAction.SHED:
                self._kept_off[step.device] = None
        self._isolated.extend(faults)
        # the plan changes the switching: whatever was studied before no longer holds
        self._studied = None
        self.timeline.extend(entries)
        return FlisrResponse(commands=tuple(commands), plan=plan, timeline=tuple(entries))

    def _isolation_of(self, now: pd.Timestamp, plan: RestorationPlan) -> list[IsolatedFault]:
        """The sections a plan locates a fault in, one record each (each is lifted on its
        own, when it is live again); those already in force and a microgrid's own (an
        island's breaker opened on loss of mains: its supervisor's) are left out."""
        ctx = self.context
        in_force = {s for f in self._isolated for s in f.sections}
        microgrid = {ctx.bus_names[b] for buses in ctx.microgrid_breakers.values() for b in buses}
        return [
            IsolatedFault(sections=(s.name,), lines=tuple(s.lines),
                          switches=tuple(dict.fromkeys(s.bounding_switches)), since=now)
            for s in ctx.sections
            if s.name in plan.location.sections and s.name not in in_force
            and not (set(s.buses) & microgrid)
        ]

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
            command, entry = reconnection_write(now, self.model.registry, device,
                                                study.checks[n])
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

