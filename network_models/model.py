"""A grid model: the pandapower net, its device registry and the structure an operator names."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import pandapower as pp
import pandas as pd

from network_models.constants import TIMEZONE
from network_models.registry import DeviceRegistry


@dataclass(frozen=True, kw_only=True)
class Site:
    """Where the grid is; PV forecasts and clocks use it."""

    name: str
    latitude_deg: float
    longitude_deg: float
    altitude_m: float = 5.0
    timezone: str = TIMEZONE


@dataclass(frozen=True, kw_only=True)
class Assumption:
    """A modelling choice that is not a published fact; reports list them."""

    value: Any
    unit: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class Substation:
    """A 110/10 kV substation: its HV bus, its 10 kV bus sections and transformers (by name)."""

    name: str
    hv_bus: str
    sections: tuple[str, ...]
    transformers: tuple[str, ...]
    bus_coupler: str | None = None


@dataclass(frozen=True, kw_only=True)
class SwitchingStation:
    """A 10 kV switching station (开关站): two bus sections and a normally-open bus-tie switch."""

    name: str
    sections: tuple[str, str]
    bus_tie: str


@dataclass(frozen=True, kw_only=True)
class Microgrid:
    """A part of the grid behind one breaker that can run islanded on its own PV and BESS."""

    name: str
    breaker: str
    buses: tuple[str, ...]
    grid_forming_bess: str


@dataclass(frozen=True, kw_only=True, eq=False)
class GridProfiles:
    """The grid's own year of series per device, as shipped with it (SimBench's), by device id.

    Rows are the steps of ``year`` from 1 January 00:00 local time, ``step_minutes`` apart; columns
    are registry ids (loads in ``load_p_mw``/``load_q_mvar``, PV systems in ``pv_p_mw``). Powers
    in MW and Mvar: load consumption positive, PV generation positive. ``source`` says where they
    come from, for the forecast's provenance.
    """

    source: str
    year: int
    step_minutes: int
    load_p_mw: pd.DataFrame
    load_q_mvar: pd.DataFrame
    pv_p_mw: pd.DataFrame


@dataclass(frozen=True, kw_only=True)
class GridModel:
    """A pandapower net with its registry and named structure.

    Every bus, line, transformer and switch of the net has a unique name; devices and structure
    refer to them by name. Treat ``net`` as read-only and study on ``copy_net()``.
    """

    name: str
    net: pp.pandapowerNet
    registry: DeviceRegistry
    site: Site
    source: str
    substations: tuple[Substation, ...] = ()
    switching_stations: tuple[SwitchingStation, ...] = ()
    microgrids: tuple[Microgrid, ...] = ()
    backbone_lines: tuple[str, ...] = ()
    assumptions: Mapping[str, Assumption] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""
    # kept beside the net, not in it: studies deep-copy the net, never a year of series
    profiles: GridProfiles | None = None

    def copy_net(self) -> pp.pandapowerNet:
        return copy.deepcopy(self.net)

    def bus_index(self, name: str) -> int:
        return _index_by_name(self._rows_by_name["bus"], name, "bus")

    def line_index(self, name: str) -> int:
        return _index_by_name(self._rows_by_name["line"], name, "line")

    def trafo_index(self, name: str) -> int:
        return _index_by_name(self._rows_by_name["trafo"], name, "trafo")

    def switch_index(self, name: str) -> int:
        return _index_by_name(self._rows_by_name["switch"], name, "switch")

    @functools.cached_property
    def _rows_by_name(self) -> dict[str, dict[str, list[int]]]:
        """Rows of each named table by name, looked up once (``net`` is read-only)."""
        out: dict[str, dict[str, list[int]]] = {}
        for table in ("bus", "line", "trafo", "switch"):
            rows: dict[str, list[int]] = {}
            for row, name in self.net[table]["name"].items():
                rows.setdefault(str(name), []).append(int(row))
            out[table] = rows
        return out


def _index_by_name(rows: Mapping[str, list[int]], name: str, what: str) -> int:
    hits = rows.get(name, [])
    if len(hits) != 1:
        raise KeyError(f"{what} {name!r}: expected exactly one, found {len(hits)}")
    return hits[0]
