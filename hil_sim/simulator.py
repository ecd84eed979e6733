"""The simulated field, tick by tick: devices, supply, protection, power flow and what it reports.

Time line: at simulated time ``t`` the simulator has decided every device's output for the tick
``[t, t + tick)`` from the setpoints it holds (:meth:`Simulator.prepare`) and reports it with
the state of charge and energies at ``t``. :meth:`Simulator.step` integrates energies over the
tick, moves the clock to ``t + tick`` and prepares again. Writes take effect at the next
prepare: a setpoint written now is applied at the next tick. Faults are injected at once:
protection acts and the readings change without the clock moving.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from forecasts.ev import EvSession
from gridctl.field.contract import FieldContract, PointKey
from hil_sim.config import SimConfig, start_time
from hil_sim.devices import BessUnit, EvSiteUnit, PvUnit
from hil_sim.fault_injection import FaultInjection
from hil_sim.faults import FaultBook
from hil_sim.grid import SimGrid
from hil_sim.readings import (
    FlowView,
    ev_site_readings,
    instrument_readings,
    network_view,
)
from hil_sim.setpoints import (
    WriteCheck,
    apply_setpoint,
    check_write,
    field_command,
    initial_setpoint,
)
from hil_sim.supply import FieldSupply
from hil_sim.tick_flow import appliance_flows, tick_injections
from hil_sim.truth import FieldTruth
from network_models.model import GridModel
from network_models.registry import (
    SwitchKind,
)

__all__ = ["SimStatus", "Simulator"]

_EVENTS_KEPT = 200


@dataclass(frozen=True, kw_only=True)
class SimStatus:
    """The simulator's own summary after the last prepare (MW; import from the external grids)."""

    converged: bool
    import_mw: float
    losses_mw: float
    active_faults: tuple[str, ...]
    fallback_devices: tuple[str, ...]
    unsupplied_loads: tuple[str, ...]


class Simulator(FaultInjection, FieldSupply):
    """The field of one model, without any network I/O (the OPC UA server wraps it).

    Its concerns by module: the tick (this one: time, writes, sessions, dispatch, readings),
    what the field does by itself when supply changes (:mod:`hil_sim.supply`), the fault
    handles (:mod:`hil_sim.fault_injection`) and one tick's power flow (:mod:`hil_sim.tick_flow`).
    """

    def __init__(
        self, model: GridModel, *, start: object = None, config: SimConfig | None = None
    ) -> None:
        config = SimConfig() if config is None else config
        self.model = model
        self.config = config
        self.contract = FieldContract.from_model(model)
        self.grid = SimGrid(model, engine=config.engine)
        self.truth = FieldTruth(model, seed=config.seed, inputs=config.inputs)
        self.time = start_time(start, model.site.timezone)
        self.tick = 0
        self.faults = FaultBook()
        self.events: deque[tuple[pd.Timestamp, str]] = deque(maxlen=_EVENTS_KEPT)
        # every vehicle that left, with the energy it got: what "charged by departure" is judged on
        self.departures: list[tuple[EvSession, float]] = []
        self.event_count = 0  # events ever recorded (the deque keeps the last ones)
        registry = model.registry
        self.bess = {d.id: BessUnit(spec=d, soc_frac=d.soc_init_frac) for d in registry.bess}
        self.pv = {d.id: PvUnit(spec=d, p_limit_mw=d.p_mwp) for d in registry.pv}
        self.ev = {d.id: EvSiteUnit.new(d) for d in registry.ev_sites}
        self.loads = registry.loads
        self._bus = {d.id: model.bus_index(d.bus) for d in registry}
        self.switches = {d.id: d for d in registry.switches}
        self.tripped_switches: set[str] = set()
        # protection trips per breaker (the breaker's operation counter): every trip counts,
        # a close onto a fault that trips again within the same tick included
        self.trip_counts = {d.id: 0 for d in registry.switches
                            if d.switch_kind == SwitchKind.BREAKER}
        self.indications = {d.id: False for d in registry.fault_indicators}
        self._indicators = tuple(
            (d.id, model.line_index(d.line), model.bus_index(d.bus))
            for d in registry.fault_indicators
        )
        self._indication_live_since: dict[str, pd.Timestamp] = {}
        # customer loads whose intake a connect_cmd=False opened (load shedding)
        self.disconnected_loads: set[str] = set()
        self._load_p = np.zeros(len(self.loads))
        self._load_q = np.zeros(len(self.loads))
        self._commands: list[tuple[str, str, bool]] = []
        self._setpoints: dict[PointKey, Any] = {
            p.key: initial_setpoint(p.key, registry) for p in self.contract.setpoints()
        }
        self._flow: FlowView | None = None
        self._ev_hours: dict[str, np.ndarray] = {}
        self._started = False
        self._protected_version = -1
        self._dropped_lines: set[str] = set()  # unprotected faults: the cable fell out alone
        self.readings: dict[PointKey, Any] = {}
        self.status = SimStatus(
            converged=False,
            import_mw=0.0,
            losses_mw=0.0,
            active_faults=(),
            fallback_devices=(),
            unsupplied_loads=(),
        )
        self.prepare()

    # --- time --------------------------------------------------------------------------------

    @property
    def step_h(self) -> float:
        """The step length, one tick, in hours (``step_h`` in every room)."""
        return self.config.tick_s / 3600.0

    def step(self, ticks: int = 1) -> None:
        """Advance ``ticks`` ticks (see the module docstring)."""
        for _ in range(ticks):
            self._integrate()
            self.time = self.time + pd.Timedelta(seconds=self.config.tick_s)
            self.tick += 1
            self.prepare()

    def prepare(self) -> None:
        """Decide the coming tick at the present time: commands, protection, islands, sessions,
        device outputs, power flow and readings. Calling it twice at one time changes nothing."""
        self._run_commands()
        self._protect()
        self._update_islands()
        self._reset_indicators_on_restoration()
        self._update_sessions()
        self._dispatch()
        self._solve()
        self._publish()

    def _integrate(self) -> None:
        step_h = self.step_h
        for unit in self.bess.values():
            unit.integrate(step_h)
        for unit in self.ev.values():
            unit.integrate(self._ev_hours[unit.spec.id])
        for unit in (*self.bess.values(), *self.pv.values()):
            unit.p_prev_mw = unit.p_mw
        for unit in self.ev.values():
            unit.p_prev_kw = unit.p_kw.copy()

    # --- writes ------------------------------------------------------------------------------

    def check_write(self, key: PointKey, value: Any) -> WriteCheck:
        """Whether the field accepts ``value`` for point ``key`` (nothing is changed)."""
        point = self.contract.point(*key) if key in self.contract else None
        return check_write(point, value, reachable=key[0] not in self.faults.comm_lost)

    def write(self, key: PointKey, value: Any) -> WriteCheck:
        """Apply an accepted write (setpoints at the next prepare; switch, indicator and load
        connection commands are queued, in order); any accepted write to a BESS, PV or charger
        setpoint is that device's heartbeat."""
        verdict = self.check_write(key, value)
        if verdict != WriteCheck.OK:
            return verdict
        device_id, name = key
        self._setpoints[key] = value
        command = field_command(self.contract.point(*key).kind, name, value)
        if command is not None:
            self._commands.append((command[0], device_id, command[1]))
        unit = self.bess.get(device_id) or self.pv.get(device_id) or self.ev.get(device_id)
        if unit is not None:
            apply_setpoint(unit, name, float(value))
            unit.watchdog.last_write = self.time
        return verdict

    def setpoint(self, device_id: str, point: str) -> Any:
        """The last accepted value of a writable point (its initial value before any write)."""
        return self._setpoints[(device_id, point)]

    def _run_commands(self) -> None:
        commands, self._commands = self._commands, []
        for kind, device_id, value in commands:
            if kind == "reset":
                self._reset_indicator(device_id)
            elif kind == "load":
                self._connect_load(device_id, value)
            else:
                self._switch(device_id, value)

    def _reset_indicator(self, device_id: str) -> None:
        if self.indications.get(device_id):
            self._event(f"{device_id} reset")
        self.indications[device_id] = False

    def _switch(self, device_id: str, closed: bool) -> None:
        row = self.grid.switch_row(device_id)
        self.tripped_switches.discard(device_id)
        if self.grid.set_switch(row, closed):
            self._event(f"{device_id} {'closed' if closed else 'opened'} by command")

    def _connect_load(self, device_id: str, connected: bool) -> None:
        # the customer's intake switch: no grid switching state changes, the load just stops
        # (or resumes) drawing, so neither protection nor the energised buses need a re-check
        if connected and device_id in self.disconnected_loads:
            self.disconnected_loads.discard(device_id)
            self._event(f"{device_id} reconnected by command")
        elif not connected and device_id not in self.disconnected_loads:
            self.disconnected_loads.add(device_id)
            self._event(f"{device_id} disconnected by command")

    # --- sessions ------------------------------------------------------------------------------

    def _update_sessions(self) -> None:
        now = self.time
        for unit in self.ev.values():
            for session, delivered_kwh in unit.depart(now):
                self.departures.append((session, delivered_kwh))
                self._event(f"{session.site}/{session.connector} {session.id} left")
        for session in self.truth.arrivals_until(now):
            unit = self.ev.get(session.site)
            if unit is None or session.departure <= now:
                continue
            delivered = 0.0
            if not self._started and session.arrival < now:
                # plugged in before the simulation began, charging at the fallback power
                kw = min(session.max_kw, unit.spec.fallback_kw_per_connector)
                delivered = kw * (now - session.arrival).total_seconds() / 3600.0
            if not unit.arrive(session, delivered):
                self._event(
                    f"{session.id}: connector {session.connector} busy or unknown, session dropped"
                )
        self._started = True

    # --- dispatch and power flow ---------------------------------------------------------------

    def fallback_active(self, device_id: str) -> bool:
        unit = self.bess.get(device_id) or self.pv.get(device_id) or self.ev.get(device_id)
        return unit is not None and unit.watchdog.expired(
            self.time, self.config.heartbeat_timeout_s
        )

    def _dispatch(self) -> None:
        sample = self.truth.at(self.time + pd.Timedelta(seconds=self.config.tick_s / 2))
        energised = self.grid.energised()
        ramps, step_h = self.config.ramps, self.step_h
        # a load whose intake is open draws nothing: the power flow sees it shed
        connected = np.array([d.id not in self.disconnected_loads for d in self.loads], dtype=bool)
        self._load_p = np.where(connected, sample.load_p_mw, 0.0)
        self._load_q = np.where(connected, sample.load_q_mvar, 0.0)
        for unit, avail in zip(self.pv.values(), sample.pv_avail_mw, strict=True):
            unit.p_avail_mw = max(float(avail), 0.0)
            unit.tripped = unit.spec.id in self.faults.tripped_devices
            unit.dispatch(
                fallback=self.fallback_active(unit.spec.id),
                energised=self._bus[unit.spec.id] in energised,
                step_h=step_h,
                ramp_frac_per_s=ramps.pv_frac_per_s,
            )
        for unit in self.bess.values():
            unit.tripped = unit.spec.id in self.faults.tripped_devices
            unit.dispatch(
                fallback=self.fallback_active(unit.spec.id),
                energised=self._bus[unit.spec.id] in energised,
                step_h=step_h,
                ramp_frac_per_s=ramps.bess_frac_per_s,
            )
        self._ev_hours = {}
        for unit in self.ev.values():
            unit.tripped = unit.spec.id in self.faults.tripped_devices
            self._ev_hours[unit.spec.id] = unit.dispatch(
                now=self.time,
                fallback=self.fallback_active(unit.spec.id),
                energised=self._bus[unit.spec.id] in energised,
                step_h=step_h,
                ramp_frac_per_s=ramps.ev_frac_per_s,
            )

    def _solve(self) -> None:
        net = self.grid.net
        island_bess = {i.bess_id: i for i in self.grid.islands if self.grid.island_live(i)}
        injections = tick_injections(
            net,
            self.model.registry,
            loads=self.loads,
            load_p_mw=self._load_p,
            load_q_mvar=self._load_q,
            ev_site_p_mw={i: self._ev_mean_kw(unit).sum() / 1000.0 for i, unit in self.ev.items()},
            pv=self.pv.values(),
            bess=self.bess.values(),
            island_bess=island_bess,
        )
        result = self.grid.solve(injections)
        appliances = appliance_flows(net, injections, self.grid.energised())
        view = FlowView.of(result, self.grid.vn_kv(), appliances)
        if not view.converged:
            self._event("power flow did not converge; readings hold their last values")
            if self._flow is not None:
                return
        self._flow = view
        for bess_id, island in island_bess.items():
            k = list(net.ext_grid.index).index(island.ext_grid_row)
            unit = self.bess[bess_id]
            unit.p_mw = float(view.ext_grid_p_mw[k])
            unit.q_mvar = float(view.ext_grid_q_mvar[k])

    def _ev_mean_kw(self, unit: EvSiteUnit) -> np.ndarray:
        return unit.mean_power_kw(self._ev_hours[unit.spec.id], self.step_h)

    # --- readings ----------------------------------------------------------------------------

    def _publish(self) -> None:
        assert self._flow is not None
        view, model, energised = self._flow, self.model, self.grid.energised()
        net = self.grid.net
        out: dict[PointKey, Any] = {}
        for unit in self.bess.values():
            i = unit.spec.id
            out[(i, "p_mw")], out[(i, "q_mvar")] = unit.p_mw, unit.q_mvar
            out[(i, "soc_frac")] = unit.soc_frac
        for unit in self.pv.values():
            i = unit.spec.id
            out[(i, "p_mw")], out[(i, "q_mvar")] = unit.p_mw, unit.q_mvar
            out[(i, "p_avail_mw")] = unit.p_avail_mw
        for unit in self.ev.values():
            out.update(ev_site_readings(unit, self._ev_mean_kw(unit)))
        unsupplied = []
        for load, p, q in zip(self.loads, self._load_p, self._load_q, strict=True):
            connected = load.id not in self.disconnected_loads
            # a shed customer is interrupted like one behind an open switch
            live = connected and self._bus[load.id] in energised
            if not live:
                unsupplied.append(load.id)
            out[(load.id, "p_mw")] = float(p) if live else 0.0
            out[(load.id, "q_mvar")] = float(q) if live else 0.0
            out[(load.id, "energised")] = live
            out[(load.id, "connected")] = connected
        closed = dict(zip(net.switch.index, net.switch["closed"].astype(bool), strict=True))
        for sw in self.switches.values():
            out[(sw.id, "closed")] = bool(closed[sw.element.index])
            if sw.switch_kind == SwitchKind.BREAKER:
                out[(sw.id, "tripped")] = sw.id in self.tripped_switches
                out[(sw.id, "trip_count")] = self.trip_counts[sw.id]
        for fi, on in self.indications.items():
            out[(fi, "fault_detected")] = on
        out.update(instrument_readings(model, net, view, energised=energised, bus_of=self._bus))
        for frozen in self.faults.stuck.values():
            out.update(frozen)
        self.readings = out
        main = [list(net.ext_grid.index).index(r) for r in self.grid.main_ext_grids]
        self.status = SimStatus(
            converged=view.converged,
            import_mw=float(sum(view.ext_grid_p_mw[k] for k in main)),
            losses_mw=view.losses_mw,
            active_faults=tuple(self.faults.active()),
            fallback_devices=tuple(
                i for i in (*self.bess, *self.pv, *self.ev) if self.fallback_active(i)
            ),
            unsupplied_loads=tuple(unsupplied),
        )

    def network_view(self) -> dict[str, list[Any]]:
        """Bus voltages (0 where de-energised) and branch loadings of the last power flow."""
        assert self._flow is not None
        return network_view(self._flow, self.grid.net)

    def recent_events(self, n: int = 20) -> list[str]:
        return [f"{t.isoformat()} {text}" for t, text in list(self.events)[-n:]]

    def _event(self, text: str) -> None:
        self.events.append((self.time, text))
        self.event_count += 1

    # --- inspection helpers (tests, drills) ----------------------------------------------------

    def reading(self, device_id: str, point: str) -> Any:
        return self.readings[(device_id, point)]
