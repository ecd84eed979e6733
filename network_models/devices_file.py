"""A devices file: batteries, PV, EV charging sites and microgrids declared on any grid.

A pandapower JSON net or a SimBench grid brings its buses, lines, loads and generation but
nothing to dispatch. A devices file (YAML, the vocabulary of the gridctl grid file) adds them:

    schema_version: 1
    site: {name: ..., latitude_deg: ..., longitude_deg: ..., timezone: Europe/Berlin}
    bess: [{name: ..., bus: <a bus of the net>, p_mw: ..., e_mwh: ..., s_mva: ...}]
    pv: [...]
    ev_sites: [...]
    loads: [{name: <a load of the net> | bus: <every load at that bus>, priority: 1, ...}]
    microgrids: [{name: ..., breaker: <a switch of the net>, buses: [...], grid_forming_bess: ...}]

Every name it refers to is checked against the net: an error names the file, the entry
(``ev_sites[2] hub``), the field and what was expected. ``apply_devices`` returns a new model with
the devices in the net (storage, sgen, load) and in the registry; the model given is unchanged.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import Field, model_validator

from network_models._grid_schema import _Spec
from network_models.builder import add_bess, add_ev_site, add_pv
from network_models.errors import ModelError
from network_models.grid_file import (
    BessSpec,
    EvSiteSpec,
    MicrogridSpec,
    PvSpec,
    SiteSpec,
    read_spec,
)
from network_models.model import Assumption, GridModel, Microgrid, Site
from network_models.registry import (
    CustomerClass,
    Device,
    DeviceRegistry,
    Load,
    SwitchDevice,
)

__all__ = [
    "DevicesSpec", "LoadSettingsSpec", "apply_devices", "apply_devices_spec", "load_devices",
    "sibling_devices",
]

# buses and switches of a foreign net are named as it names them ("MV3.101 Bus 11")
NetName = Annotated[str, Field(min_length=1)]
SUFFIX = ".devices.yaml"


class DeviceBessSpec(BessSpec):
    bus: NetName


class DevicePvSpec(PvSpec):
    bus: NetName


class DeviceEvSiteSpec(EvSiteSpec):
    bus: NetName


class DeviceMicrogridSpec(MicrogridSpec):
    breaker: NetName
    buses: Annotated[list[NetName], Field(min_length=1)]


class LoadSettingsSpec(_Spec):
    """What the operator knows about existing loads: one by ``name`` or all at ``bus``."""

    name: NetName | None = None
    bus: NetName | None = None
    customer_class: CustomerClass | None = None
    customers: Annotated[int, Field(ge=1)] | None = None
    priority: Annotated[int, Field(ge=1, le=5)] | None = None
    critical: bool | None = None

    @model_validator(mode="after")
    def _check(self) -> LoadSettingsSpec:
        if (self.name is None) == (self.bus is None):
            raise ValueError("expected either name (one load) or bus (every load at it)")
        if not self.settings():
            raise ValueError("expected at least one of customer_class, customers, priority, "
                             "critical")
        return self

    def settings(self) -> dict[str, object]:
        return {k: v for k, v in self.model_dump(exclude={"name", "bus"}).items()
                if v is not None}


class DevicesSpec(_Spec):
    """A whole devices file."""

    schema_version: Literal[1]
    description: str = ""
    site: SiteSpec | None = None
    bess: list[DeviceBessSpec] = Field(default_factory=list)
    pv: list[DevicePvSpec] = Field(default_factory=list)
    ev_sites: list[DeviceEvSiteSpec] = Field(default_factory=list)
    loads: list[LoadSettingsSpec] = Field(default_factory=list)
    microgrids: list[DeviceMicrogridSpec] = Field(default_factory=list)


def load_devices(path: str | Path) -> DevicesSpec:
    """Read and validate a devices file (not yet against a net); ModelError naming where."""
    return read_spec(path, DevicesSpec, expected="a gridctl devices file (YAML)",
                     sections="schema_version, site, bess, pv, ev_sites, loads, microgrids")


def sibling_devices(path: str | Path) -> Path | None:
    """``NAME.devices.yaml`` beside the model file ``NAME.json``, if there is one."""
    path = Path(path)
    sibling = path.with_name(path.stem + SUFFIX)
    return sibling if sibling.is_file() else None


def apply_devices(model: GridModel, path: str | Path) -> GridModel:
    """``model`` with the devices of the devices file ``path`` added (a new model and net)."""
    return apply_devices_spec(model, load_devices(path), source=str(path))


def apply_devices_spec(
    model: GridModel, spec: DevicesSpec, *, source: str, section: str = "",
    note_key: str = "devices_file",
) -> GridModel:
    """``model`` with the devices of ``spec`` added, read from ``source``; ``section`` prefixes
    the entries an error names (a scenario's ``add.``), ``note_key`` names the assumption that
    records where they came from."""
    refs = _References(model, source, section)
    refs.check(spec)
    net = model.copy_net()
    added: list[Device] = []
    added += [add_bess(net, model.bus_index(b.bus), b) for b in spec.bess]
    added += [add_pv(net, model.bus_index(p.bus), p) for p in spec.pv]
    added += [add_ev_site(net, model.bus_index(e.bus), e) for e in spec.ev_sites]
    settings = refs.load_settings(spec.loads)
    kept = [dataclasses.replace(d, **settings[d.id]) if d.id in settings else d
            for d in model.registry]
    microgrids = tuple(
        Microgrid(name=m.name, breaker=refs.switch_id(m.breaker), buses=tuple(m.buses),
                  grid_forming_bess=m.grid_forming_bess)
        for m in spec.microgrids
    )
    site = model.site if spec.site is None else Site(**spec.site.model_dump())
    notes = dict(model.assumptions)
    notes[note_key] = Assumption(
        value=source, note=f"{len(added)} devices, {len(spec.microgrids)} microgrids and "
        f"{len(spec.loads)} load settings declared on the grid" + (
            f"; site {site.name}" if spec.site is not None else ""))
    if spec.site is not None:
        notes["site"] = Assumption(value=site.name, note=f"from {source}")
    return dataclasses.replace(
        model, net=net, registry=DeviceRegistry((*kept, *added)), site=site,
        microgrids=(*model.microgrids, *microgrids), assumptions=MappingProxyType(notes),
        description=(model.description + f"; devices from {Path(source).name}").lstrip("; "),
    )


def _examples(names: Iterable[str], wanted: str) -> str:
    names = list(names)
    close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.6)
    shown = close or names[:3]
    more = f" ({len(names)} in all)" if len(names) > len(shown) else ""
    return (("did you mean " if close else "e.g. ") + ", ".join(repr(n) for n in shown) + more
            if shown else "none in this net")


class _References:
    """The names of the net a devices file may refer to, and the errors when it does not."""

    def __init__(self, model: GridModel, source: str, section: str = "") -> None:
        self.model, self.source, self.section = model, source, section
        self.buses = set(model.net.bus["name"].astype(str))
        self.bus_order = [str(b) for b in model.net.bus["name"]]
        self.device_ids = {d.id for d in model.registry}
        self.loads = model.registry.loads
        self.switches = model.registry.switches
        self.bess = {d.id: d for d in model.registry.bess}

    def fail(self, table: str, i: int, name: str | None, field: str, message: str) -> None:
        element = f"{self.section}{table}[{i}]" + (f" {name}" if name else "")
        raise ModelError(message, source=self.source, element=element, field=field)

    def bus(self, table: str, i: int, name: str | None, field: str, bus: str) -> None:
        if bus not in self.buses:
            self.fail(table, i, name, field, f"no bus {bus!r}: expected a bus of the net, "
                      f"{_examples(self.bus_order, bus)}")

    def check(self, spec: DevicesSpec) -> None:
        seen: dict[str, str] = {}
        for table in ("bess", "pv", "ev_sites"):
            for i, it in enumerate(getattr(spec, table)):
                self.bus(table, i, it.name, "bus", it.bus)
                if it.name in self.device_ids:
                    self.fail(table, i, it.name, "name", f"name {it.name!r} is already a device "
                              "of the grid: expected a new name")
                if it.name in seen:
                    self.fail(table, i, it.name, "name", f"name {it.name!r} is also given to "
                              f"{seen[it.name]}: expected each device name once")
                seen[it.name] = f"{table}[{i}]"
        new_bess = {b.name: b for b in spec.bess}
        known_mg = {m.name for m in self.model.microgrids}
        for i, mg in enumerate(spec.microgrids):
            if mg.name in known_mg:
                self.fail("microgrids", i, mg.name, "name", f"microgrid {mg.name!r} is given "
                          "twice (or the grid has it): expected each microgrid once")
            known_mg.add(mg.name)
            self.switch_id(mg.breaker, ("microgrids", i, mg.name))
            for bus in mg.buses:
                self.bus("microgrids", i, mg.name, "buses", bus)
            forming = new_bess.get(mg.grid_forming_bess) or self.bess.get(mg.grid_forming_bess)
            if forming is None:
                names = [*new_bess, *self.bess]
                self.fail("microgrids", i, mg.name, "grid_forming_bess",
                          f"no BESS {mg.grid_forming_bess!r}: expected a battery of this file "
                          f"or of the grid, {_examples(names, mg.grid_forming_bess)}")
            elif not forming.grid_forming:
                self.fail("microgrids", i, mg.name, "grid_forming_bess",
                          f"BESS {mg.grid_forming_bess!r} is not grid-forming: expected one "
                          "with grid_forming: true (it holds the island's voltage)")
            elif forming.bus not in mg.buses:
                self.fail("microgrids", i, mg.name, "grid_forming_bess",
                          f"BESS {mg.grid_forming_bess!r} is at bus {forming.bus!r}: expected "
                          "it on one of the microgrid's buses")
        self.load_settings(spec.loads)

    def switch_id(self, name: str, where: tuple[str, int, str] | None = None) -> str:
        """The registry id of the switch named ``name`` (its id or its name in the net)."""
        for sw in self.switches:
            if name == sw.id:
                return sw.id
        hits = [sw for sw in self.switches if name == self._net_name(sw)]
        if len(hits) == 1:
            return hits[0].id
        if where is not None:
            names = [self._net_name(s) for s in self.switches]
            self.fail(*where, "breaker", f"no switch {name!r}: expected a switch of the net "
                      f"(its name or id), {_examples(names, name)}")
        raise KeyError(name)

    def _net_name(self, sw: SwitchDevice) -> str:
        return str(self.model.net.switch.at[sw.element.index, "name"])

    def load_settings(self, entries: Sequence[LoadSettingsSpec]) -> dict[str, dict[str, object]]:
        """Settings per load id; later entries refine earlier ones (a bus, then one load)."""
        out: dict[str, dict[str, object]] = {}
        for i, entry in enumerate(entries):
            if entry.name is not None:
                hits = [ld for ld in self.loads if entry.name in (ld.id, self._load_name(ld))]
                if not hits:
                    names = [self._load_name(ld) for ld in self.loads]
                    self.fail("loads", i, entry.name, "name",
                              f"no load {entry.name!r}: expected a load of the net (its name "
                              f"or id), {_examples(names, entry.name)}")
                if len(hits) > 1:
                    self.fail("loads", i, entry.name, "name",
                              f"{len(hits)} loads are named {entry.name!r}: expected one, give "
                              f"its id ({', '.join(ld.id for ld in hits[:3])})")
            else:
                assert entry.bus is not None
                self.bus("loads", i, None, "bus", entry.bus)
                hits = [ld for ld in self.loads if ld.bus == entry.bus]
                if not hits:
                    with_loads = sorted({ld.bus for ld in self.loads})
                    self.fail("loads", i, None, "bus", f"no load at bus {entry.bus!r}: expected "
                              f"a bus with loads, {_examples(with_loads, entry.bus)}")
            for ld in hits:
                out.setdefault(ld.id, {}).update(entry.settings())
        return out

    def _load_name(self, ld: Load) -> str:
        return str(self.model.net.load.at[ld.element.index, "name"])

