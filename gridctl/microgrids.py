"""Microgrid supervision in the control loop: islanding, shedding in the island, reconnection.

The field's own protection opens a microgrid's breaker on loss of mains and its grid-forming
BESS holds the island (what the simulator does, as a real microgrid controller would, within
cycles). The controller supervises from the watched points, one
:func:`~controllers.islanding.islanding_step` per batch of changes: it sheds what the BESS
cannot carry (power) or hold for the target time (energy) and brings it back as PV and SoC
allow, reports the hold time, and reconnects once the grid side of the breaker has been
healthy for ``reconnect_delay_s`` (the synchronising check: the upstream voltage inside the
band of GB/T 12325, 0.93–1.07 pu).

Writes: the breaker's ``close_cmd``; ``connect_cmd`` of a customer load; ``p_site_limit_kw`` of
an EV site (0 to shed; the site's rating to release it, the MPC then sets it again). Forming
and following the grid are the BESS's own control: they appear in the timeline, not as writes.

A shed load reads 0 MW, so its demand for the restore decision is the last value measured while
it was supplied, or its registry peak when none was (an assumption: the forecast would do
better). Loads shed in the island come
back only once the breaker reads closed; a breaker that did not close leaves the microgrid
islanded, and the reconnection is tried again after the delay. A supervisor (re)started while
its microgrid runs islanded takes it up, with the loads whose intake is open counted as shed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from controllers.islanding import (
    IslandActionKind,
    IslandingDecision,
    IslandingPolicy,
    MicrogridMode,
    MicrogridReading,
    MicrogridSpec,
    MicrogridState,
    islanding_step,
)
from gridctl.self_healing import SwitchCommand, TimelineEntry, supply_command
from network_models.errors import InputError
from network_models.model import GridModel
from network_models.registry import EvChargingSite, Load, Meter

__all__ = ["SYNC_V_PU", "MicrogridSupervisor", "supervisors_of"]

PointKey = tuple[str, str]
SYNC_V_PU = (0.93, 1.07)  # the grid side must be inside this band to reconnect


@dataclass
class MicrogridSupervisor:
    """Supervises one microgrid of the model (see the module docstring)."""

    spec: MicrogridSpec
    upstream_meter: str
    policy: IslandingPolicy
    state: MicrogridState = field(default_factory=MicrogridState)
    timeline: list[TimelineEntry] = field(default_factory=list)
    last: IslandingDecision | None = None
    islanded_at: pd.Timestamp | None = None
    reconnected_at: pd.Timestamp | None = None
    # the registry's record of each load and EV site of the microgrid
    _devices: dict[str, Load | EvChargingSite] = field(default_factory=dict)
    _demand_mw: dict[str, float] = field(default_factory=dict)  # last measured while supplied
    _restore_after_close: list[str] = field(default_factory=list)  # in shedding order

    @classmethod
    def of(cls, model: GridModel, name: str | None = None, *,
           policy: IslandingPolicy | None = None) -> MicrogridSupervisor:
        """The supervisor of the model's microgrid ``name``; the meter on the grid side of its
        breaker tells whether the upstream grid is there."""
        spec = MicrogridSpec.of(model, name)
        breaker = model.registry[spec.breaker]
        meters = [d for d in model.registry.of_type(Meter) if d.bus == breaker.bus]
        if not meters:
            raise InputError(
                f"microgrid {spec.name}: no meter on bus {breaker.bus}, the grid side of "
                f"{spec.breaker}: expected one to tell whether the upstream grid is there",
                source=model.source, element=spec.name, field="meters",
            )
        devices = {ld.device: model.registry[ld.device] for ld in spec.loads}
        return cls(spec=spec, upstream_meter=meters[0].id,
                   policy=policy or IslandingPolicy(reconnect_delay_s=60.0), _devices=devices)

    @property
    def points(self) -> tuple[PointKey, ...]:
        """What the supervisor reads: breaker, upstream voltage, SoC, loads, EV sites, PV."""
        keys: list[PointKey] = [(self.spec.breaker, "closed"), (self.upstream_meter, "v_pu"),
                                (self.spec.bess.id, "soc_frac")]
        for ld in self.spec.loads:
            if ld.kind == "ev_site":
                keys.append((ld.device, "p_charge_kw"))
            else:  # and whether its intake is open: what was shed before a restart
                keys += [(ld.device, "p_mw"), (ld.device, "connected")]
        keys += [(pv, "p_mw") for pv in self.spec.pv]
        return tuple(keys)

    def respond(self, now: pd.Timestamp, values: Mapping[PointKey, Any],
                ) -> tuple[list[SwitchCommand], list[TimelineEntry]]:
        """The commands (in order) and timeline entries of one step of supervision."""
        reading = self._reading(now, values)
        if reading is None:
            return [], []  # a point is missing (no communication): decide nothing blind
        if reading.breaker_closed and self._restore_after_close:
            return self._restore_shed(now)
        if (self.state.mode is MicrogridMode.GRID_CONNECTED and not reading.breaker_closed
                and reading.upstream_energised
                and any(p > 0 for p in reading.load_p_mw.values())):
            # the microgrid runs islanded while the supervisor thought otherwise: at start-up
            # (or restart), or a reconnection the breaker did not make. Take it up from there,
            # with what is off now counted as shed. An open breaker with the campus dead is
            # someone's decision, left alone.
            off = {d for d in self._restore_after_close}
            off |= {ld.device for ld in self.spec.loads
                    if values.get((ld.device, "connected")) is False}
            self._restore_after_close = []
            self.state = MicrogridState(mode=MicrogridMode.ISLANDED, shed=frozenset(off))
        decision = islanding_step(self.spec, self.state, reading, policy=self.policy)
        was = self.state.mode
        self.state, self.last = decision.state, decision
        if decision.state.mode is MicrogridMode.ISLANDED:
            # a load whose intake is open in the island is shed, whoever opened it: it comes
            # back with the others
            off = {ld.device for ld in self.spec.loads
                   if values.get((ld.device, "connected")) is False}
            if off - decision.state.shed:
                self.state = replace(decision.state, shed=decision.state.shed | off)
        if was is MicrogridMode.GRID_CONNECTED and decision.state.mode is MicrogridMode.ISLANDED:
            self.islanded_at = now
        if was is MicrogridMode.ISLANDED and decision.state.mode is MicrogridMode.GRID_CONNECTED:
            self.reconnected_at = now
        commands, entries = [], []
        closing = any(a.action is IslandActionKind.CLOSE_BREAKER for a in decision.actions)
        for action in decision.actions:
            if closing and action.action is IslandActionKind.RESTORE_LOAD:
                # loads come back once the breaker reads closed, not before: a close the
                # breaker does not make must not bring them back onto the island
                self._restore_after_close.append(action.device)
                continue
            command, entry = self._action(now, action.action, action.device, action.reason)
            entries.append(entry)
            if command is not None:
                commands.append(command)
        if decision.state.mode is MicrogridMode.ISLANDED and decision.actions:
            entries.append(TimelineEntry(
                time=now, kind="islanding",
                text=(f"{self.spec.name} islanded: serves {decision.served_p_mw:.3f} MW, PV "
                      f"{decision.pv_p_mw:.3f} MW, BESS {decision.bess_p_mw:.3f} MW at SoC "
                      f"{decision.soc_frac:.3f}; holds {_hours(decision.hold_time_h)}"),
                device=self.spec.bess.id))
        self.timeline.extend(entries)
        return commands, entries

    def _restore_shed(self, now: pd.Timestamp) -> tuple[list[SwitchCommand], list[TimelineEntry]]:
        commands, entries = [], []
        for device in reversed(self._restore_after_close):  # most important first
            command, entry = self._action(now, IslandActionKind.RESTORE_LOAD, device,
                                          f"{self.spec.breaker} reads closed: reconnected")
            commands.append(command)
            entries.append(entry)
        self._restore_after_close = []
        self.timeline.extend(entries)
        return [c for c in commands if c is not None], entries

    def _reading(self, now: pd.Timestamp, values: Mapping[PointKey, Any],
                 ) -> MicrogridReading | None:
        breaker = values.get((self.spec.breaker, "closed"))
        soc = values.get((self.spec.bess.id, "soc_frac"))
        v = values.get((self.upstream_meter, "v_pu"))
        if breaker is None or soc is None or v is None:
            return None  # a meter without communication is not a dead grid
        # a dead bus reads NaN (simulator) or 0 V (a real meter)
        healthy = math.isfinite(v) and SYNC_V_PU[0] <= v <= SYNC_V_PU[1]
        load_p = {}
        for ld in self.spec.loads:
            if ld.kind == "ev_site":
                kw = values.get((ld.device, "p_charge_kw"))
                measured = None if kw is None else float(kw) / 1000.0
            else:
                measured = values.get((ld.device, "p_mw"))
            off = ld.device in self.state.shed or values.get((ld.device, "connected")) is False
            if measured is not None and not off and measured > 0:
                self._demand_mw[ld.device] = float(measured)
            # a load that is off draws nothing now: count what it drew, or its peak if unknown
            device = self._devices[ld.device]
            peak = device.p_peak_mw if isinstance(device, Load) else 0.0
            fallback = peak if off else float(measured or 0.0)
            load_p[ld.device] = self._demand_mw.get(ld.device, fallback)
        pv = {d: float(values.get((d, "p_mw")) or 0.0) for d in self.spec.pv}
        soc = float(soc)
        if not math.isfinite(soc):
            # charge unknown: judge the island as if the battery were at its floor (the most
            # shedding, the shortest hold), never as if it were full
            soc = self.spec.bess.soc_min_frac
        return MicrogridReading(upstream_energised=healthy, breaker_closed=bool(breaker),
                                soc_frac=min(max(soc, 0.0), 1.0), load_p_mw=load_p,
                                pv_p_mw=pv, time=now.to_pydatetime())

    def _action(self, now: pd.Timestamp, kind: IslandActionKind, device: str, reason: str,
                ) -> tuple[SwitchCommand | None, TimelineEntry]:
        if kind in (IslandActionKind.OPEN_BREAKER, IslandActionKind.CLOSE_BREAKER):
            close = kind is IslandActionKind.CLOSE_BREAKER
            return (SwitchCommand(device=device, point="close_cmd", value=close,
                                  action="close" if close else "open", reason=reason),
                    TimelineEntry(time=now, kind="reconnection" if close else "islanding",
                                  text=f"{'close' if close else 'open'} {device}: {reason}",
                                  device=device))
        if kind in (IslandActionKind.SHED_LOAD, IslandActionKind.RESTORE_LOAD):
            on = kind is IslandActionKind.RESTORE_LOAD
            if isinstance(self._devices[device], EvChargingSite):
                verb = "release" if on else "curtail to 0 kW"
            else:
                verb = "reconnect" if on else "disconnect"
            return (supply_command(self._devices[device], on=on, reason=reason),
                    TimelineEntry(time=now, kind="load_on" if on else "shed",
                                  text=f"{verb} {device}: {reason}", device=device))
        # forming and following the grid: the BESS's own control, nothing to write
        kind_of = "islanding" if kind is IslandActionKind.FORM_GRID else "reconnection"
        return None, TimelineEntry(time=now, kind=kind_of, text=f"{device}: {reason}",
                                   device=device)

    @property
    def held_off(self) -> frozenset[str]:
        """EV sites and loads the supervisor keeps off now."""
        return self.state.shed | frozenset(self._restore_after_close)


def supervisors_of(model: GridModel) -> list[MicrogridSupervisor]:
    """One supervisor per microgrid of the model (none for a model without)."""
    return [MicrogridSupervisor.of(model, m.name) for m in model.microgrids]


def _hours(h: float) -> str:
    return "indefinitely (PV covers the load)" if math.isinf(h) else f"{h:.2f} h"

