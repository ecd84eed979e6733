"""How pandapower buses and switches become power-grid-model nodes and branch-end states.

Closed bus-bus switches without impedance fuse buses into one node (as pandapower does); open
switches at line and transformer ends open that end. Every power-grid-model component of one
model needs an id of its own: ``IdCounter`` hands them out.
"""

from __future__ import annotations

import numpy as np
import pandapower as pp
import pandas as pd


class IdCounter:
    """Unique ids across all PGM components of one model, as power-grid-model requires."""

    def __init__(self) -> None:
        self._next = 0

    def take(self, count: int) -> np.ndarray:
        ids = np.arange(self._next, self._next + count, dtype=np.int32)
        self._next += count
        return ids


def fused_bus_nodes(net: pp.pandapowerNet, bus_in_service: np.ndarray) -> np.ndarray:
    """PGM node position per bus row: closed bus-bus switches with z_ohm = 0 fuse in-service buses.

    pandapower merges such buses into one; a link would leave a small impedance between them.
    """
    position = bus_positions(net)
    parent = np.arange(len(net.bus))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sw = net.switch
    fused = (sw["et"] == "b") & sw["closed"].astype(bool) & ~(switch_z_ohm(sw) > 0)
    for bus, element in zip(sw.loc[fused, "bus"], sw.loc[fused, "element"], strict=True):
        a, b = int(position[bus]), int(position[element])
        if bus_in_service[a] and bus_in_service[b]:
            parent[root(a)] = root(b)
    roots = np.array([root(i) for i in range(len(parent))], dtype=int)
    _, node_of_bus = np.unique(roots, return_inverse=True)
    return node_of_bus.astype(int)


def bus_positions(net: pp.pandapowerNet) -> np.ndarray:
    """Row position of each bus, indexed by bus index (-1 where no bus has that index)."""
    index = net.bus.index.to_numpy(dtype=np.int64)
    position = np.full(int(index.max()) + 1 if len(index) else 0, -1, dtype=np.int64)
    position[index] = np.arange(len(index))
    return position


def switch_z_ohm(sw: pd.DataFrame) -> pd.Series:
    if "z_ohm" not in sw:
        return pd.Series(0.0, index=sw.index)
    return sw["z_ohm"].fillna(0.0).astype(float)


class Topology:
    """Node ids of buses and the open ends of lines and transformers."""

    def __init__(
        self, net: pp.pandapowerNet, node_of_bus: np.ndarray, bus_in_service: np.ndarray
    ) -> None:
        self._position = bus_positions(net)
        self._vn_kv = net.bus["vn_kv"].to_numpy(dtype=float)
        self._node_of_bus = node_of_bus
        self._bus_in_service = bus_in_service
        open_sw = net.switch[~net.switch["closed"].astype(bool)]
        self._open_ends = {
            (et, int(element), int(bus))
            for et, element, bus in zip(
                open_sw["et"], open_sw["element"], open_sw["bus"], strict=True
            )
        }

    def _rows(self, buses: pd.Series) -> np.ndarray:
        return self._position[buses.to_numpy(dtype=np.int64)]

    def node(self, buses: pd.Series) -> np.ndarray:
        return self._node_of_bus[self._rows(buses)]

    def bus_alive(self, buses: pd.Series) -> np.ndarray:
        return self._bus_in_service[self._rows(buses)]

    def vn_kv(self, buses: pd.Series) -> np.ndarray:
        return self._vn_kv[self._rows(buses)]

    def end_closed(self, et: str, table: pd.DataFrame, bus_column: str) -> np.ndarray:
        """Whether each branch end is connected: in-service bus and no open switch there."""
        no_open_switch = np.array(
            [(et, int(i), int(b)) not in self._open_ends
             for i, b in zip(table.index, table[bus_column], strict=True)],
            dtype=bool,
        )
        return self.bus_alive(table[bus_column]) & no_open_switch
