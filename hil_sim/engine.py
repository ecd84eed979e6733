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
from hil_sim.errors import SimulatorInputError
from hil_sim.faults import FaultBook
from hil_sim.grid import Island, SimGrid
from hil_sim.protection import trip_for_fault
from hil_sim.readings import (
    FlowView,
    ev_site_readings,
    meter_readings,
    transformer_readings,
)
from hil_sim.setpoints import (
    WriteCheck,
    apply_setpoint,
    check_write,
    field_command,
    initial_setpoint,
)
from hil_sim.truth import FieldTruth
from network_models.model import GridModel
from network_models.powerflow import TimeSeriesInjections
from network_models.registry import (
    Bess,
    EvChargingSite,
    Meter,
    PvSystem,
    SubstationTransformer,
    SwitchDevice,
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


class Simulator:
    """The field of one model, without any network I/O (the OPC UA server wraps it)."""

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
        self._positions = {t: self.grid.row_positions(t) for t in ("load", "sgen", "storage")}
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
    def tick_h(self) -> float:
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
        dt_h = self.tick_h
        for unit in self.bess.values():
            unit.integrate(dt_h)
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

    # --- fault injection ---------------------------------------------------------------------

    def fault_line(self, line: str) -> str:
        """A permanent fault on cable ``line``: protection clears it at once."""
        self._require(
            line in set(self.model.net.line["name"]),
            f"no line {line!r}: expected the name of a cable of the model",
            field="line",
        )
        if line in self.faults.lines:
            return f"{line} is already faulted"
        self.faults.lines.add(line)
        self._protected_version = -1
        self._event(f"fault on {line}")
        before = set(self.tripped_switches)
        shown = {fi for fi, on in self.indications.items() if on}
        self.prepare()
        tripped = sorted(self.tripped_switches - before)
        set_fi = sorted(fi for fi, on in self.indications.items() if on and fi not in shown)
        row = self.model.line_index(line)
        if not tripped and not bool(self.grid.net.line.at[row, "in_service"]):
            cleared = "no breaker between the fault and a source: the cable dropped out alone"
        else:
            cleared = f"tripped {', '.join(tripped) or 'nothing (not energised)'}"
        return f"{line} faulted: {cleared}; indicators set: {', '.join(set_fi) or 'none'}"

    def lose_transformer(self, name: str) -> str:
        """Internal fault of a transformer: its breakers trip and it is out of service."""
        net = self.grid.net
        rows = net.trafo.index[net.trafo["name"] == name]
        self._require(
            len(rows) == 1,
            f"no transformer {name!r}: expected the name of a transformer of the model",
            field="transformer",
        )
        self.faults.transformers.add(name)
        self.grid.set_in_service("trafo", int(rows[0]), False)
        opened = self._trip_transformer_breakers(int(rows[0]))
        self._event(f"transformer {name} lost; tripped {', '.join(opened) or 'nothing'}")
        self.prepare()
        return f"{name} out of service; tripped {', '.join(opened) or 'nothing'}"

    def lose_substation(self, name: str) -> str:
        """The 110 kV supply of a substation (or an external grid by name) is lost; the
        substation's transformer breakers trip on loss of voltage, so its 10 kV sections are
        not fed back into the dead 110 kV bus."""
        rows = self._ext_grid_rows(name)
        self.faults.substations.add(name)
        for r in rows:
            self.grid.set_in_service("ext_grid", r, False)
        opened = []
        for substation in self.model.substations:
            if substation.name == name:
                for trafo in substation.transformers:
                    opened += self._trip_transformer_breakers(self.model.trafo_index(trafo))
        self._event(f"supply of {name} lost; tripped {', '.join(opened) or 'nothing'}")
        self.prepare()
        return f"supply of {name} lost; tripped {', '.join(opened) or 'nothing'}"

    def _trip_transformer_breakers(self, trafo_row: int) -> list[str]:
        opened = []
        for (trafo, _bus), sw in self.grid.pmap.trafo_end_switch.items():
            if trafo == trafo_row and self.grid.pmap.breaker.get(sw, False):
                switch = str(self.grid.net.switch.at[sw, "name"])
                if self.grid.set_switch(sw, False):
                    self._tripped(switch)
                    opened.append(switch)
        return opened

    def lose_comm(self, device_id: str) -> str:
        """Communication with a device is lost: its values go stale, writes are refused."""
        self._require_device(device_id)
        self.faults.comm_lost.add(device_id)
        self._event(f"communication with {device_id} lost")
        return f"communication with {device_id} lost"

    def trip_device(self, device_id: str) -> str:
        """A PV inverter, BESS or charging site trips to 0; a breaker opens as if by protection."""
        self._require_device(device_id)
        device = self.model.registry[device_id]
        if isinstance(device, SwitchDevice) and device.switch_kind == SwitchKind.BREAKER:
            self.grid.set_switch(self.grid.switch_row(device_id), False)
            self._tripped(device_id)
        else:
            self._require(
                isinstance(device, PvSystem | Bess | EvChargingSite),
                f"{device_id} is a {device.kind.value}: expected a PV system, BESS, "
                "EV charging site or breaker",
                field="device",
            )
            self.faults.tripped_devices.add(device_id)
        self._event(f"{device_id} tripped")
        self.prepare()
        return f"{device_id} tripped"

    def stick_meter(self, device_id: str) -> str:
        """A device's readings freeze at their present values and still read Good."""
        self._require_device(device_id)
        frozen = {k: v for k, v in self.readings.items() if k[0] == device_id}
        self.faults.stuck[device_id] = frozen
        self._event(f"{device_id} readings stuck")
        return f"{device_id} readings stuck"

    def clear_fault(self, target: str) -> str:
        """Clear every fault injected on ``target``. Breakers that protection opened stay open:
        closing them is the operator's (or the controller's) job."""
        kinds = self.faults.kinds_of(target)
        self._require(
            bool(kinds),
            f"nothing to clear on {target!r}: active faults are "
            f"{', '.join(self.faults.active()) or 'none'}",
            field="target",
        )
        self.faults.lines.discard(target)
        if target in self._dropped_lines:
            self._dropped_lines.discard(target)
            self.grid.set_in_service("line", self.model.line_index(target), True)
        self.faults.comm_lost.discard(target)
        self.faults.tripped_devices.discard(target)
        self.faults.stuck.pop(target, None)
        if target in self.faults.transformers:
            self.faults.transformers.discard(target)
            row = int(self.grid.net.trafo.index[self.grid.net.trafo["name"] == target][0])
            self.grid.set_in_service("trafo", row, True)
        if target in self.faults.substations:
            self.faults.substations.discard(target)
            for r in self._ext_grid_rows(target):
                self.grid.set_in_service("ext_grid", r, True)
        self._event(f"cleared {', '.join(kinds)} on {target}")
        self.prepare()
        return f"cleared {', '.join(kinds)} on {target}"

    def clear_all(self) -> str:
        targets = {a.split(" ", 1)[1] for a in self.faults.active()}
        for target in sorted(targets):
            self.clear_fault(target)
        return f"cleared {len(targets)} target(s)"

    def _ext_grid_rows(self, name: str) -> list[int]:
        net = self.grid.net
        hv = {s.name: s.hv_bus for s in self.model.substations}
        if name in hv:
            bus = self.model.bus_index(hv[name])
            rows = [r for r in self.grid.main_ext_grids if int(net.ext_grid.at[r, "bus"]) == bus]
        else:
            rows = [r for r in self.grid.main_ext_grids if net.ext_grid.at[r, "name"] == name]
        known = [s.name for s in self.model.substations] or [
            str(net.ext_grid.at[r, "name"]) for r in self.grid.main_ext_grids
        ]
        self._require(
            bool(rows),
            f"no substation {name!r}: expected one of {', '.join(known)}",
            field="substation",
        )
        return rows

    def _require_device(self, device_id: str) -> None:
        self._require(
            device_id in self.model.registry,
            f"no device {device_id!r} in the registry: expected a device id",
            field="device",
        )

    @staticmethod
    def _require(ok: bool, message: str, *, field: str) -> None:
        if not ok:
            raise SimulatorInputError(message, field=field)

    # --- protection, islands, sessions ---------------------------------------------------------

    def _protect(self) -> None:
        # protection acts on a change: a new fault, or switching that may energise a fault
        if not self.faults.lines or self._protected_version == self.grid.version:
            return
        net = self.grid.net
        for _ in range(len(self.faults.lines) + 2):
            changed = False
            for line in sorted(self.faults.lines):
                row = int(net.line.index[net.line["name"] == line][0])
                trip = trip_for_fault(net, row, self.grid.pmap)
                if not trip.breakers and not trip.unprotected:
                    continue
                self.grid.invalidate()
                changed = changed or bool(trip.breakers)
                for breaker in trip.breakers:
                    self._tripped(breaker)
                for fi in trip.indicators:
                    self.indications[fi] = True
                self._event(
                    f"protection cleared {line}: tripped "
                    f"{', '.join(trip.breakers) or 'nothing'}; indicators "
                    f"{', '.join(trip.indicators) or 'none'}"
                    + ("; NO BREAKER between the fault and a source" if trip.unprotected else "")
                )
                if trip.unprotected:
                    self.grid.set_in_service("line", row, False)
                    self._dropped_lines.add(line)
            if not changed:
                break
        self._protected_version = self.grid.version

    def _tripped(self, breaker: str) -> None:
        """Protection opened ``breaker`` (it is open already): flag it and count the trip."""
        self.tripped_switches.add(breaker)
        if breaker in self.trip_counts:
            self.trip_counts[breaker] += 1

    def _reset_indicators_on_restoration(self) -> None:
        """Indicators whose cable has been live again, unfaulted, for ``indicator_reset_s``
        reset themselves; a dead cable's indicator keeps its indication."""
        reset_s = self.config.indicator_reset_s
        if reset_s <= 0 or not any(self.indications.values()):
            self._indication_live_since.clear()
            return
        faulted = {self.model.line_index(line) for line in self.faults.lines}
        for fi, line, _bus in self._indicators:
            if not self.indications[fi]:
                continue
            energised = line not in faulted and self.grid.line_live(line)
            if not energised:
                self._indication_live_since.pop(fi, None)
                continue
            since = self._indication_live_since.setdefault(fi, self.time)
            if (self.time - since).total_seconds() >= reset_s:
                self.indications[fi] = False
                del self._indication_live_since[fi]
                self._event(f"{fi} reset on restoration of supply")

    def _update_islands(self) -> None:
        for island in self.grid.islands:
            self._update_island(island)

    def _update_island(self, island: Island) -> None:
        bus = self.grid.island_bus(island)
        bess = self.bess[island.bess_id]
        if bus in self.grid.mains_energised():
            if self.grid.set_island(island, False):
                self._event(f"{island.microgrid.name} back on the grid")
            return
        if self.grid.is_closed(island.pcc_row):
            # loss of mains: the point of common coupling opens before the island forms
            self.grid.set_switch(island.pcc_row, False)
            self._tripped(island.microgrid.breaker)
            self._event(f"loss of mains: {island.microgrid.breaker} opened")
        able = (
            not bess.tripped
            and bess.spec.id not in self.faults.tripped_devices
            and bess.soc_frac > bess.spec.soc_min_frac + 1e-6
        )
        if self.grid.set_island(island, able):
            what = f"islanded on {bess.spec.id}" if able else "island collapsed"
            self._event(f"{island.microgrid.name} {what}")

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
        ramps, dt_h = self.config.ramps, self.tick_h
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
                dt_h=dt_h,
                ramp_frac_per_s=ramps.pv_frac_per_s,
            )
        for unit in self.bess.values():
            unit.tripped = unit.spec.id in self.faults.tripped_devices
            unit.dispatch(
                fallback=self.fallback_active(unit.spec.id),
                energised=self._bus[unit.spec.id] in energised,
                dt_h=dt_h,
                ramp_frac_per_s=ramps.bess_frac_per_s,
            )
        self._ev_hours = {}
        for unit in self.ev.values():
            unit.tripped = unit.spec.id in self.faults.tripped_devices
            self._ev_hours[unit.spec.id] = unit.dispatch(
                now=self.time,
                fallback=self.fallback_active(unit.spec.id),
                energised=self._bus[unit.spec.id] in energised,
                dt_h=dt_h,
                ramp_frac_per_s=ramps.ev_frac_per_s,
            )

    def _solve(self) -> None:
        net = self.grid.net
        pos = self._positions
        load_p = net.load["p_mw"].to_numpy(dtype=float).copy()
        load_q = net.load["q_mvar"].to_numpy(dtype=float).copy()
        for load, p, q in zip(self.loads, self._load_p, self._load_q, strict=True):
            k = pos["load"][load.element.index]
            load_p[k], load_q[k] = p, q
        for unit in self.ev.values():
            k = pos["load"][unit.spec.element.index]
            load_p[k] = self._ev_mean_kw(unit).sum() / 1000.0
            load_q[k] = 0.0
        sgen_p = net.sgen["p_mw"].to_numpy(dtype=float).copy()
        sgen_q = net.sgen["q_mvar"].to_numpy(dtype=float).copy()
        for unit in self.pv.values():
            k = pos["sgen"][unit.spec.element.index]
            sgen_p[k], sgen_q[k] = unit.p_mw, unit.q_mvar
        storage_p = np.zeros(len(net.storage))
        storage_q = np.zeros(len(net.storage))
        island_bess = {i.bess_id: i for i in self.grid.islands if self.grid.island_live(i)}
        for unit in self.bess.values():
            k = pos["storage"][unit.spec.element.index]
            if unit.spec.id not in island_bess:
                # pandapower storage consumes: charging is positive
                storage_p[k], storage_q[k] = -unit.p_mw, -unit.q_mvar
        result = self.grid.solve(
            TimeSeriesInjections(
                load_p_mw=load_p[None, :],
                load_q_mvar=load_q[None, :],
                sgen_p_mw=sgen_p[None, :],
                sgen_q_mvar=sgen_q[None, :],
                storage_p_mw=storage_p[None, :],
                storage_q_mvar=storage_q[None, :],
            )
        )
        live = self.grid.energised()
        appliances: dict[tuple[str, int], tuple[float, float]] = {}
        for table, p_arr, q_arr, sign in (
            ("load", load_p, load_q, 1.0),
            ("sgen", sgen_p, sgen_q, -1.0),
            ("storage", storage_p, storage_q, 1.0),
        ):
            frame = net[table]
            on = np.isin(frame["bus"].to_numpy(), list(live)) & frame["in_service"].to_numpy(
                dtype=bool
            )
            for k, (row, live_k) in enumerate(zip(frame.index, on, strict=True)):
                appliances[(table, int(row))] = (
                    (sign * p_arr[k], sign * q_arr[k]) if live_k else (0.0, 0.0)
                )
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
        return unit.mean_power_kw(self._ev_hours[unit.spec.id], self.tick_h)

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
        for device in model.registry:
            if isinstance(device, Meter):
                for name, value in meter_readings(device, net, view, self._bus[device.id]).items():
                    out[(device.id, name)] = value
            elif isinstance(device, SubstationTransformer):
                in_service = bool(net.trafo.at[device.element.index, "in_service"])
                for name, value in transformer_readings(
                    device,
                    view,
                    in_service=in_service,
                    hv_energised=model.bus_index(device.hv_bus) in energised,
                ).items():
                    out[(device.id, name)] = value
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
        view, net = self._flow, self.grid.net
        return {
            "bus_names": [str(n) for n in net.bus["name"]],
            "bus_vm_pu": [float(view.vm_pu[view.bus_pos[int(r)]]) for r in net.bus.index],
            "line_names": [str(n) for n in net.line["name"]],
            "line_loading_pct": [float(x) for x in view.line_loading_pct],
            "trafo_names": [str(n) for n in net.trafo["name"]],
            "trafo_loading_pct": [float(x) for x in view.trafo_loading_pct],
        }

    def recent_events(self, n: int = 20) -> list[str]:
        return [f"{t.isoformat()} {text}" for t, text in list(self.events)[-n:]]

    def _event(self, text: str) -> None:
        self.events.append((self.time, text))
        self.event_count += 1

    # --- inspection helpers (tests, drills) ----------------------------------------------------

    def reading(self, device_id: str, point: str) -> Any:
        return self.readings[(device_id, point)]
