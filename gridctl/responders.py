"""What answers the field's events between control steps: responders under one protocol.

A responder names the points it watches and, given their values at ``now``, says what to
write and what to record: ``respond(now, values) -> (commands, timeline)``. The runtime hands
each responder its values when one of its points changes (:func:`answer`) and writes its
commands as the responder asks:

- FLISR (:class:`FlisrResponder` over :class:`~gridctl.self_healing.FaultResponder`): a new
  trip or a lost transformer; planned off the event loop (AC studies), switched in order with
  every close checked just before it is written, planned again (up to three times) when a
  close was refused as unsafe;
- a microgrid supervisor (:class:`MicrogridResponder` over
  :class:`~gridctl.microgrids.MicrogridSupervisor`): its upstream supply lost or back; sheds,
  restores and reconnects in order;
- the EV re-split (:class:`EvResplit`): a vehicle plugged in or left; its site's power is split
  again for the rest of the step (:func:`~controllers.ev_setpoints.resplit_site`) from the
  energies read afresh, and the setpoints go out in one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import pandas as pd

from controllers.ev_setpoints import resplit_site
from controllers.mpc import MpcDecision
from gridctl.field import ev_points
from gridctl.field.contract import PointKey
from gridctl.historian import Historian
from gridctl.microgrids import MicrogridSupervisor
from gridctl.runtime_config import RuntimeStats
from gridctl.runtime_ev import EvSessionReader, plugged_in
from gridctl.runtime_writes import CloseGuard, FieldWriter
from gridctl.self_healing import FaultResponder, FlisrResponse, SwitchCommand, TimelineEntry
from network_models.model import GridModel
from network_models.registry import EvChargingSite


class TimelineItem(Protocol):
    def fields(self) -> dict[str, Any]:
        """What the historian records of it."""
        ...


class Responder(Protocol):
    """One answer to the field's events (see the module docstring)."""

    reason: str  # what its writes are recorded as
    timeline_kind: str  # what its timeline entries are recorded as
    in_thread: bool  # its respond() is long (AC studies): called off the event loop
    batch: bool  # its commands are setpoints written in one batch, not a sequence in order

    @property
    def points(self) -> tuple[PointKey, ...]:
        """The points it watches."""
        ...

    def respond(self, now: pd.Timestamp, values: Mapping[PointKey, Any],
                ) -> tuple[Sequence[SwitchCommand], Sequence[TimelineItem]]: ...


class SwitchingResponder(Responder, Protocol):
    """A responder whose commands are switching, written one after another in their order."""

    holder: str  # who holds the EV sites it sheds
    guard: CloseGuard | None  # what checks each close just before it is written
    attempts: int  # how often it may plan again (see :meth:`answered`)

    def answered(self, now: pd.Timestamp, end: str) -> bool:
        """Its commands were written up to ``end`` ("done", "refused", "unsafe"): record
        what it must, and say whether to plan again."""
        ...

    def cut_off(self) -> None:
        """Its commands were cut off (the connection was lost): answer again next time."""
        ...


@dataclass(frozen=True)
class _Entry:
    """A switching responder's timeline entry as the historian records it."""

    entry: TimelineEntry

    def fields(self) -> dict[str, Any]:
        return {"step": self.entry.kind, "text": self.entry.text, "device": self.entry.device}


class MicrogridResponder:
    """A microgrid supervisor as a responder."""

    reason = "microgrid"
    timeline_kind = "microgrid_step"
    in_thread = False
    batch = False
    guard: CloseGuard | None = None
    attempts = 1

    def __init__(self, supervisor: MicrogridSupervisor) -> None:
        self.supervisor = supervisor
        self.holder = f"microgrid {supervisor.spec.name}"

    @property
    def points(self) -> tuple[PointKey, ...]:
        return self.supervisor.points

    def respond(self, now: pd.Timestamp, values: Mapping[PointKey, Any],
                ) -> tuple[list[SwitchCommand], list[_Entry]]:
        commands, entries = self.supervisor.respond(now, values)
        return commands, [_Entry(e) for e in entries]

    def answered(self, now: pd.Timestamp, end: str) -> bool:
        return False

    def cut_off(self) -> None:
        pass


class FlisrResponder:
    """FLISR as a responder; records its plans and what a restarted runtime must know."""

    reason = holder = "flisr"
    timeline_kind = "flisr_step"
    in_thread = True
    batch = False
    attempts = 3  # a close the guard refused: plan again from what is now

    def __init__(self, faults: FaultResponder, historian: Historian) -> None:
        self.faults = self.guard = faults
        self.historian = historian
        self._response: FlisrResponse | None = None
        self._last_handled: tuple[Any, ...] = (frozenset(), (), ())

    @property
    def points(self) -> tuple[PointKey, ...]:
        return self.faults.points

    def resume(self) -> None:
        """Take over what an earlier run answered (from the historian)."""
        handled = self.historian.events("flisr_handled")
        if handled:
            self.faults.resume(handled[-1]["trips"], handled[-1].get("shed", ()),
                               handled[-1].get("isolated", ()))

    def respond(self, now: pd.Timestamp, values: Mapping[PointKey, Any],
                ) -> tuple[tuple[SwitchCommand, ...], list[_Entry]]:
        self._response = response = self.faults.respond(now, values)
        return response.commands, [_Entry(e) for e in response.timeline]

    def cut_off(self) -> None:
        """Cut off (connection lost): answer the trip again from the next image."""
        if self._response is not None:
            self.faults.forget(self._response.trips)

    def answered(self, now: pd.Timestamp, end: str) -> bool:
        """Record the plan and what is answered; whether to plan again (a close refused as
        unsafe; a refusal by the field is not changed by planning again)."""
        response = self._response
        assert response is not None
        if response.plan is not None:
            self.historian.record_decision(now, "flisr", response.plan.to_dict())
        answered = (self.faults.handled, self.faults.shed, self.faults.isolated)
        if response.plan is not None or answered != self._last_handled:
            # what a restarted runtime must not plan for again, what it must still bring back,
            # and what it must not close onto
            self._last_handled = answered
            self.historian.record_event(
                now, "flisr_handled", trips=sorted(answered[0]), shed=list(answered[1]),
                isolated=[f.to_dict() for f in answered[2]],
            )
        if end == "unsafe":
            self.faults.forget(response.trips)
            return True
        return False


@dataclass(frozen=True)
class _Resplit:
    site: str
    sessions: int
    p_kw: float
    planned_kw: float
    above_plan_kw: float

    def fields(self) -> dict[str, Any]:
        return {"site": self.site, "sessions": self.sessions, "p_kw": round(self.p_kw, 1),
                "planned_kw": round(self.planned_kw, 1),
                "above_plan_kw": round(self.above_plan_kw, 1)}


class EvResplit:
    """The EV re-split as a responder: it watches the connectors' session ids; it answers from
    the sites' points read afresh (:meth:`reads`), within the step of the last decision."""

    reason = timeline_kind = "ev_resplit"
    in_thread = False
    batch = True

    def __init__(self, model: GridModel, step: pd.Timedelta, sessions: EvSessionReader,
                 historian: Historian, stats: RuntimeStats,
                 decision: Callable[[], MpcDecision | None],
                 held: Callable[[], set[str]]) -> None:
        self.model = model
        self.step = step
        self.sessions = sessions
        self.historian = historian
        self.stats = stats
        self._decision = decision
        self._held = held
        sites = model.registry.of_type(EvChargingSite)
        self.points = ev_points.session_id_keys(sites)
        self._reading: list[EvChargingSite] = []

    def reads(self, now: pd.Timestamp, site_ids: Iterable[str]) -> list[PointKey]:
        """The points to read afresh for the sites ``site_ids``; none when there is no plan for
        this step (yet: the devices follow their defaults) or every site is held at 0 kW."""
        decision = self._decision()
        if decision is None or not decision.time <= now < decision.time + self.step:
            return []
        held = self._held()
        self._reading = [self.model.registry[i] for i in site_ids if i not in held]
        return ev_points.site_keys(self._reading) if self._reading else []

    def respond(self, now: pd.Timestamp, values: Mapping[PointKey, Any],
                ) -> tuple[list[SwitchCommand], list[_Resplit]]:
        """The setpoints of the sites last asked for, from ``values`` (good readings)."""
        decision = self._decision()
        assert decision is not None
        states, stored = self.sessions.sessions(now, values, self._reading)
        self.historian.upsert_sessions(now, stored)  # a short stay may end before the next step
        held = self._held()  # a site curtailed while the energies were read stays curtailed
        sites = [site for site in self._reading if site.id not in held]
        planned_site_kw = decision.schedule.ev_site_p_mw.iloc[0] * 1000.0
        commands, entries = [], []
        for site in sites:
            planned = float(planned_site_kw.get(site.id, 0.0))
            values_kw, split = resplit_site(
                site, states, plugged_in(values, site), now, decision.time + self.step, planned,
                room_kw=float(decision.ev_site_room_kw.get(site.id, 0.0)),
            )
            commands += [SwitchCommand(device=d, point=p, value=v, action="set",
                                       reason="ev_resplit") for (d, p), v in values_kw.items()]
            given = sum(split.values())
            # beyond the AC-checked plan only for a vehicle that would otherwise miss its
            # departure, within the site's rating: recorded, so an operator sees how often
            above = max(given - planned, 0.0)
            self.stats.ev_above_plan_kw_max = max(self.stats.ev_above_plan_kw_max, above)
            entries.append(_Resplit(site.id, len(split), given, planned, above))
        self.stats.ev_resplits += len(sites)
        return commands, entries


async def answer(responder: Responder, now: pd.Timestamp,
                 values: Callable[[], Mapping[PointKey, Any]], writer: FieldWriter,
                 historian: Historian) -> None:
    """Ask ``responder`` with the values of its points (``values()``, taken afresh for every
    attempt) and write what it says (see the module docstring)."""
    if responder.batch:
        async with writer.lock:
            commands, timeline = responder.respond(now, values())
            _record(historian, now, responder, timeline)
            batch = {c.key: c.value for c in commands}
            await writer.write(now, batch, reason=responder.reason)
            writer.last_setpoints.update(batch)
        return
    switching = cast(SwitchingResponder, responder)
    for _attempt in range(switching.attempts):
        if switching.in_thread:
            commands, timeline = await asyncio.to_thread(switching.respond, now, values())
        else:
            commands, timeline = switching.respond(now, values())
        try:
            end = await writer.write_sequence(now, commands, reason=switching.reason,
                                              holder=switching.holder, guard=switching.guard)
        except Exception:
            switching.cut_off()
            raise
        again = switching.answered(now, end)
        _record(historian, now, switching, timeline)
        if not again:
            return


def _record(historian: Historian, now: pd.Timestamp, responder: Responder,
            timeline: Sequence[TimelineItem]) -> None:
    for entry in timeline:
        historian.record_event(now, responder.timeline_kind, **entry.fields())
