"""The simulator's own copy of the grid: switching, supply, islanding and AC power flow.

The net is the model's, copied, plus one out-of-service external grid at the bus of every
microgrid's grid-forming BESS: it becomes the island's slack (voltage source) while the
microgrid runs islanded, and its power is then the BESS's output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandapower as pp

from hil_sim.protection import ProtectionMap
from network_models.model import GridModel, Microgrid
from network_models.powerflow import (
    PowerFlowCase,
    PowerFlowEngine,
    TimeSeriesInjections,
    TimeSeriesResult,
)
from network_models.topology import energised_buses


@dataclass(frozen=True)
class Island:
    """A microgrid's island source: its ext_grid row and the buses it can hold up."""

    microgrid: Microgrid
    ext_grid_row: int
    pcc_row: int
    bess_id: str


class SimGrid:
    """The net the simulator switches and solves (see the module docstring)."""

    def __init__(self, model: GridModel, *, engine: PowerFlowEngine) -> None:
        self.model = model
        self.engine = engine
        self.net = model.copy_net()
        self.main_ext_grids = tuple(int(r) for r in self.net.ext_grid.index)
        self.islands = tuple(self._island(m) for m in model.microgrids)
        self.pmap = ProtectionMap.of(model, self.net)
        self._switch_row = {str(n): int(r) for r, n in self.net.switch["name"].items()}
        self._energised: set[int] | None = None
        self._mains_energised: set[int] | None = None
        self.version = 0  # counts changes of switches and in-service flags
        self._case: tuple[int, PowerFlowCase] | None = None  # converted for this version

    def _island(self, microgrid: Microgrid) -> Island:
        bess = self.model.registry[microgrid.grid_forming_bess]
        row = pp.create_ext_grid(self.net, self.model.bus_index(bess.bus), vm_pu=1.0,
                                 in_service=False, name=f"ISLAND_{microgrid.name}")
        # the breaker by its registry id (on a JSON or SimBench net, not the switch's name)
        pcc_row = int(self.model.registry[microgrid.breaker].element.index)
        return Island(microgrid=microgrid, ext_grid_row=int(row), pcc_row=pcc_row,
                      bess_id=bess.id)

    # --- switching ---------------------------------------------------------------------------

    def switch_row(self, name: str) -> int:
        return self._switch_row[name]

    def is_closed(self, switch_row: int) -> bool:
        return bool(self.net.switch.at[switch_row, "closed"])

    def set_switch(self, switch_row: int, closed: bool) -> bool:
        """Set a switch; True if its state changed."""
        if self.is_closed(switch_row) == closed:
            return False
        self.net.switch.at[switch_row, "closed"] = closed
        self.invalidate()
        return True

    def set_in_service(self, table: str, row: int, in_service: bool) -> None:
        self.net[table].at[row, "in_service"] = in_service
        self.invalidate()

    def invalidate(self) -> None:
        """Forget what is energised (after any change of switches or in-service flags)."""
        self.version += 1
        self._energised = None
        self._mains_energised = None

    # --- supply ------------------------------------------------------------------------------

    def energised(self) -> set[int]:
        """Buses with supply now: from the external grids or a live island."""
        if self._energised is None:
            self._energised = energised_buses(self.net)
        return self._energised

    def line_live(self, line_row: int) -> bool:
        """Whether cable ``line_row`` is energised: in service and joined through a closed
        end (or an end without a switch) to a bus with supply."""
        if not bool(self.net.line.at[line_row, "in_service"]):
            return False
        live = self.energised()
        for end in (int(self.net.line.at[line_row, "from_bus"]),
                    int(self.net.line.at[line_row, "to_bus"])):
            switch = self.pmap.line_end_switch.get((line_row, end))
            if end in live and (switch is None or self.is_closed(switch)):
                return True
        return False

    def mains_energised(self) -> set[int]:
        """Buses supplied from the external grids alone (islands not counted)."""
        if self._mains_energised is None:
            mains = {int(self.net.ext_grid.at[r, "bus"]) for r in self.main_ext_grids
                     if bool(self.net.ext_grid.at[r, "in_service"])}
            self._mains_energised = energised_buses(self.net, sources=mains)
        return self._mains_energised

    def island_live(self, island: Island) -> bool:
        return bool(self.net.ext_grid.at[island.ext_grid_row, "in_service"])

    def set_island(self, island: Island, live: bool) -> bool:
        """Start or stop an island's voltage source; True if that changed anything."""
        if self.island_live(island) == live:
            return False
        self.set_in_service("ext_grid", island.ext_grid_row, live)
        return True

    def island_bus(self, island: Island) -> int:
        return int(self.net.ext_grid.at[island.ext_grid_row, "bus"])

    # --- power flow --------------------------------------------------------------------------

    def solve(self, injections: TimeSeriesInjections) -> TimeSeriesResult:
        """One AC power flow of the present state with these injections (one step).

        The net is converted for the engine once per switching state, not every tick."""
        if self._case is None or self._case[0] != self.version:
            self._case = (self.version, PowerFlowCase(self.net, engine=self.engine))
        return self._case[1].run(injections)

    def vn_kv(self) -> np.ndarray:
        return self.net.bus["vn_kv"].to_numpy(dtype=float)
