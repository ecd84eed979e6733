"""What the simulated field does by itself when its supply changes: protection clears faults,
fault indicators show and reset, campus microgrids island and resynchronise.

Run at every prepare of the simulator, before the devices are dispatched, so that the coming
tick sees the switching state protection left.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from hil_sim.config import SimConfig
from hil_sim.devices import BessUnit
from hil_sim.faults import FaultBook
from hil_sim.grid import Island, SimGrid
from hil_sim.protection import trip_for_fault
from network_models.model import GridModel

__all__ = ["FieldSupply"]


class FieldSupply:
    """Protection, fault indicators and islanding of :class:`~hil_sim.simulator.Simulator`
    (mixed into it); what they use of the simulator is listed below."""

    model: GridModel
    config: SimConfig
    grid: SimGrid
    faults: FaultBook
    time: pd.Timestamp
    bess: dict[str, BessUnit]
    tripped_switches: set[str]
    trip_counts: dict[str, int]
    indications: dict[str, bool]
    _indicators: tuple[tuple[str, int, int], ...]
    _indication_live_since: dict[str, pd.Timestamp]
    _protected_version: int
    _dropped_lines: set[str]
    _event: Callable[[str], None]

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

