"""What FLISR needs to know about a model, worked out once: sections, switches, indicators, loads.

Switch states are numpy bool arrays in ``net.switch`` row order (position, not index label).
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import networkx as nx
import numpy as np
import pandapower as pp

from controllers.flisr.records import LoadInfo
from network_models.ac_checks import OperatingPoint, apply_operating_point
from network_models.errors import InputError
from network_models.model import GridModel
from network_models.registry import (
    EvChargingSite,
    Load,
    SwitchDevice,
    SwitchKind,
    SwitchRole,
)
from network_models.topology import (
    Section,
    StateAdjacency,
    SwitchStateGraphs,
    sections,
    source_buses,
)

__all__ = ["FlisrContext"]

T = TypeVar("T")

_POWER_COLUMNS = (
    ("load", "p_mw"),
    ("load", "q_mvar"),
    ("sgen", "p_mw"),
    ("sgen", "q_mvar"),
    ("storage", "p_mw"),
    ("storage", "q_mvar"),
)
_STUDY_COLUMNS = (*_POWER_COLUMNS, ("switch", "closed"), ("trafo", "in_service"))


@dataclass(frozen=True, eq=False)
class FlisrContext:
    """Precomputed maps of one model (its net is not changed)."""

    model: GridModel
    net: pp.pandapowerNet
    devices: tuple[SwitchDevice | None, ...]  # per switch position
    device_position: Mapping[str, int]
    switch_names: tuple[str, ...]
    switch_bus: np.ndarray
    switch_element: np.ndarray
    switch_et: tuple[str, ...]
    normal_closed: np.ndarray
    switches_at: Mapping[tuple[str, int, int], tuple[int, ...]]  # (et, element, bus) → positions
    bus_names: Mapping[int, str]
    line_names: Mapping[int, str]
    line_ends: Mapping[int, tuple[int, int]]
    trafo_names: Mapping[int, str]
    trafo_index: Mapping[str, int]
    sections: tuple[Section, ...]
    section_of_bus: Mapping[str, Section]
    section_of_line: Mapping[str, Section]
    indicators: tuple[tuple[str, int, int], ...]  # (device id, line index, bus index)
    loads: tuple[LoadInfo, ...]
    microgrid_breakers: Mapping[int, frozenset[int]]  # switch position → microgrid bus indices
    sources: frozenset[int]
    _scratch: dict = field(default_factory=dict, repr=False)  # study net and operating points

    @classmethod
    def of(cls, model: GridModel) -> FlisrContext:
        net = model.net
        sw = net.switch
        rows = sw.index.tolist()
        position = {row: k for k, row in enumerate(rows)}
        devices: list[SwitchDevice | None] = [None] * len(rows)
        device_position: dict[str, int] = {}
        for d in model.registry.switches:
            k = position[int(d.element.index)]
            devices[k] = d
            device_position[d.id] = k
        switches_at: dict[tuple[str, int, int], list[int]] = defaultdict(list)
        for k, (et, element, bus) in enumerate(
            zip(sw["et"].tolist(), sw["element"].tolist(), sw["bus"].tolist(), strict=True)
        ):
            switches_at[(et, int(element), int(bus))].append(k)
        bus_names = dict(zip(net.bus.index.tolist(), map(str, net.bus["name"]), strict=True))
        bus_index = {name: i for i, name in bus_names.items()}
        line_names = dict(zip(net.line.index.tolist(), map(str, net.line["name"]), strict=True))
        line_index = {name: i for i, name in line_names.items()}
        all_sections = sections(net)
        return cls(
            model=model,
            net=net,
            devices=tuple(devices),
            device_position=device_position,
            switch_names=tuple(map(str, sw["name"])),
            switch_bus=sw["bus"].to_numpy(dtype=int),
            switch_element=sw["element"].to_numpy(dtype=int),
            switch_et=tuple(sw["et"].tolist()),
            normal_closed=sw["closed"].to_numpy(dtype=bool).copy(),
            switches_at={key: tuple(v) for key, v in switches_at.items()},
            bus_names=bus_names,
            line_names=line_names,
            line_ends={
                i: (int(f), int(t))
                for i, f, t in zip(
                    net.line.index.tolist(), net.line["from_bus"], net.line["to_bus"], strict=True
                )
            },
            trafo_names=dict(
                zip(net.trafo.index.tolist(), map(str, net.trafo["name"]), strict=True)
            ),
            trafo_index={
                str(n): int(i) for i, n in zip(net.trafo.index, net.trafo["name"], strict=True)
            },
            sections=all_sections,
            section_of_bus={b: s for s in all_sections for b in s.buses},
            section_of_line={ln: s for s in all_sections for ln in s.lines},
            indicators=tuple(
                (fi.id, line_index[fi.line], bus_index[fi.bus])
                for fi in model.registry.fault_indicators
            ),
            loads=_loads(model),
            microgrid_breakers={
                device_position[mg.breaker]: frozenset(bus_index[b] for b in mg.buses)
                for mg in model.microgrids
                if mg.breaker in device_position
            },
            sources=source_buses(net),
        )

    # --- switch states ------------------------------------------------------------------

    def state_from(self, switch_closed: Mapping[str, bool]) -> np.ndarray:
        """Switch states: the normal state with the given ``closed`` points applied."""
        state = self.normal_closed.copy()
        for device_id, closed in switch_closed.items():
            if device_id not in self.device_position:
                raise InputError(
                    f"no switch {device_id!r} in model {self.model.name!r}: expected a switch id",
                    source="ProtectionReport",
                    element=device_id,
                    field="switch_closed",
                )
            state[self.device_position[device_id]] = bool(closed)
        return state

    def switch_id(self, position: int) -> str:
        device = self.devices[position]
        return device.id if device is not None else self.switch_names[position]

    def role(self, position: int) -> SwitchRole | None:
        device = self.devices[position]
        return device.role if device is not None else None

    def is_breaker(self, position: int) -> bool:
        device = self.devices[position]
        return device is not None and device.switch_kind == SwitchKind.BREAKER

    def positions_of(self, names: tuple[str, ...]) -> list[int]:
        index = {n: k for k, n in enumerate(self.switch_names)}
        return [index[n] for n in names]

    def study_net(self) -> pp.pandapowerNet:
        """A copy of the net to study on."""
        return copy.deepcopy(self.net)

    def reset_study_net(self) -> pp.pandapowerNet:
        """The context's own study copy, with every column FLISR changes set back to the model's.

        Reused from run to run because a deep copy costs more than the rest of a plan; so a
        context serves one plan at a time.
        """
        cached = self._scratch.get("net")
        if cached is None:
            cached = self._scratch["net"] = self.study_net()
        for table, column in _STUDY_COLUMNS:
            if len(self.net[table]):
                cached[table][column] = self.net[table][column].to_numpy(copy=True)
        return cached

    def cached(self, key: tuple, make: Callable[[], T]) -> T:
        """``make()`` the first time ``key`` is asked for, the same object after that.

        For what a study derives from the context's study net (a converted net) and may keep
        from plan to plan; ``key`` must say everything the object depends on.
        """
        if key not in self._scratch:
            self._scratch[key] = make()
        return self._scratch[key]

    def bus_graph_of(self, net: pp.pandapowerNet, state: np.ndarray) -> nx.MultiGraph:
        """``bus_graph`` of ``net`` (a study copy of the model's) in switch state ``state``."""
        return self._state_graphs(net).graph(state)

    def adjacency_of(self, net: pp.pandapowerNet, state: np.ndarray) -> StateAdjacency:
        """The adjacency of :meth:`bus_graph_of`, for walks (``SupplyTree.of``)."""
        return self._state_graphs(net).adjacency(state)

    def parts_in(
        self, net: pp.pandapowerNet, state: np.ndarray, buses: Iterable[int]
    ) -> list[frozenset[int]]:
        """Connected parts of ``net`` in ``state`` among ``buses`` (networkx's order)."""
        return self._state_graphs(net).components(state, buses)

    def energised_in(self, net: pp.pandapowerNet, state: np.ndarray) -> frozenset[int]:
        """Buses of ``net`` (a study copy) connected to a source in switch state ``state``."""
        return self._state_graphs(net).reached(state, self.sources)

    def _state_graphs(self, net: pp.pandapowerNet) -> SwitchStateGraphs:
        """The tables read once per set of ``in_service`` flags, kept from plan to plan."""
        key = ("bus graphs", *(net[t]["in_service"].to_numpy(dtype=bool).tobytes()
                               for t in ("bus", "line", "trafo", "trafo3w", "impedance")
                               if t in net))
        return self.cached(key, lambda: SwitchStateGraphs(net))

    def operating_columns(self, point: OperatingPoint) -> dict[tuple[str, str], np.ndarray]:
        """Load, sgen and storage powers at an operating point (computed once per point)."""
        key = ("point", point)
        if key not in self._scratch:
            net = self.study_net()
            apply_operating_point(self.model, net, point)
            self._scratch[key] = {
                (table, column): net[table][column].to_numpy(copy=True)
                for table, column in _POWER_COLUMNS
                if len(net[table])
            }
        return self._scratch[key]


def _loads(model: GridModel) -> tuple[LoadInfo, ...]:
    net = model.net
    position = {row: k for k, row in enumerate(net.load.index.tolist())}
    out = []
    for d in model.registry.of_type(Load):
        out.append(
            LoadInfo(
                device=d.id,
                kind="load",
                position=position[int(d.element.index)],
                bus=int(net.load.at[d.element.index, "bus"]),
                customers=d.customers,
                priority=d.priority,
                critical=d.critical,
            )
        )
    for d in model.registry.of_type(EvChargingSite):
        out.append(
            LoadInfo(
                device=d.id,
                kind="ev_site",
                position=position[int(d.element.index)],
                bus=int(net.load.at[d.element.index, "bus"]),
                customers=0,
                priority=None,
                critical=False,
            )
        )
    return tuple(out)
