"""Fault injection into the simulated field: cable faults, lost transformers and supplies,
lost communication, tripped devices, stuck meters, and clearing them again.

A fault acts at once: protection clears it and the readings change without the clock moving
(each handle ends with the simulator's ``prepare``). The handles are what drills, benchmarks and
the ``Simulator`` object of the OPC UA server call; wrong input raises
:class:`~hil_sim.errors.SimulatorInputError` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gridctl.field.contract import PointKey
from hil_sim.errors import SimulatorInputError
from hil_sim.faults import FaultBook
from hil_sim.grid import SimGrid
from network_models.model import GridModel
from network_models.registry import Bess, EvChargingSite, PvSystem, SwitchDevice, SwitchKind

__all__ = ["FaultInjection"]


class FaultInjection:
    """The fault handles of :class:`~hil_sim.simulator.Simulator` (mixed into it).

    What they use of the simulator is listed below; ``_tripped`` comes from
    :class:`~hil_sim.supply.FieldSupply`.
    """

    model: GridModel
    grid: SimGrid
    faults: FaultBook
    tripped_switches: set[str]
    indications: dict[str, bool]
    readings: dict[PointKey, Any]
    _protected_version: int
    _dropped_lines: set[str]
    prepare: Callable[[], None]
    _event: Callable[[str], None]
    _tripped: Callable[[str], None]

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

