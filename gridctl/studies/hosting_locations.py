"""Where a hosting study adds its EV connectors or PV kWp, and the study model that holds them.

A *location* (the whole grid, a distribution feeder, a distribution transformer, an EV site) has
*targets*: the EV sites or PV systems, existing or added, among which its amount is shared
(EV connectors by Sainte-Laguë, which never takes a connector away when the total grows; PV kWp
in proportion). The study model carries every added device at zero, so one dispatcher per day
serves every location and value. See :mod:`gridctl.studies.hosting` for the assumptions.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
import pandapower as pp

from network_models.model import GridModel
from network_models.registry import (
    Device,
    DeviceRegistry,
    ElementRef,
    ElementTable,
    EvChargingSite,
    EvSiteType,
    PvSystem,
)
from network_models.topology import distribution_feeders, switch_roles

# The planned days whose worst the capacity must hold (local days of the model's site):
# a July weekday: the summer peak of load (cooling) with every commuter and depot session;
# a Sunday in the May Day holiday: light load (offices and industry idle) under a high spring
# sun, where PV's reverse flow and over-voltage are worst and evening residential charging still
# comes on top of the lowest base.
DEFAULT_DAYS = (dt.date(2026, 7, 15), dt.date(2026, 5, 3))

# connector kW and connection-limit share per connector (kW) of a new site, when the model has
# no site of the type to copy (Jiuke Oasis's sites: 7/4.5, 7/4.2, 120/75, 150/120)
EV_TYPE_DEFAULTS: dict[EvSiteType, tuple[float, float]] = {
    EvSiteType.OFFICE_AC: (7.0, 4.5),
    EvSiteType.RESIDENTIAL_AC: (7.0, 4.2),
    EvSiteType.PUBLIC_DC: (120.0, 75.0),
    EvSiteType.BUS_DEPOT: (150.0, 120.0),
}
_NOMINAL_KWP = 1.0  # an added PV system's rating in the study model, only for its forecast shape


class What(StrEnum):
    EV = "ev"
    PV = "pv"


class Control(StrEnum):
    UNCONTROLLED = "uncontrolled"
    ORDERLY = "orderly"


class Scope(StrEnum):
    GRID = "grid"
    FEEDERS = "feeders"
    TRANSFORMERS = "transformers"
    SITES = "sites"


@dataclass(frozen=True, kw_only=True)
class HostingSettings:
    """How the search runs and what orderly dispatch may do (every figure an assumption)."""

    resolution: int = 1  # connectors (EV) or kWp (PV) between the value found and the failure
    first_step: int | None = None  # first value tried above 0; None: by what and scope
    cap: int | None = None  # largest value tried; None: 5,000 connectors or 200,000 kWp
    ev_type: EvSiteType = EvSiteType.RESIDENTIAL_AC  # a new site where a location has none
    seed: int = 0
    controls: tuple[Control, ...] = (Control.UNCONTROLLED, Control.ORDERLY)
    # orderly must serve: at most this share of the day's EV energy short by the grid or plan
    ev_short_frac: float = 0.001
    # orderly may curtail: at most this share of the day's available PV energy (China's target
    # of 95 % utilisation of new energy, NEA 2024: an assumption for a distribution grid)
    pv_curtail_frac: float = 0.05
    pv_s_per_p: float = 1.1  # inverter kVA per kWp of added PV
    # re-linearisations an orderly plan may take while the search is still narrowing (a plan
    # that passes within them is the full plan's result: its loop stops at the first pass); a
    # value that fails so is planned in full before it is reported as the failure. None (the
    # default): every plan in full. Measured on the whole Jiuke grid (bench_hosting.py, same
    # machine and load): capped at 1, 28 orderly checks, 246 s wall, 164 CPU-s (plans cut short
    # failed at +1,071 where the full plan held, and the search went back up to +2,142); in
    # full, 14 checks, 175 s, 130 CPU-s, the same +1,241; PV the same +13,610 kWp either way
    probe_relinearisations: int | None = None
    workers: int = 1  # processes: locations are searched in parallel, each its own day plans


@dataclass(frozen=True, kw_only=True)
class Target:
    """One place a location's added amount goes: an EV site or PV system (existing or added)
    and its share weight."""

    device_id: str
    bus: str
    weight: float


@dataclass(frozen=True, kw_only=True)
class Location:
    kind: str  # grid, feeder, transformer, ev_site
    name: str
    feeder: str | None
    targets: tuple[Target, ...]
    note: str


# ---------------------------------------------------------------------------------------------
# where: the locations of a model


def distribution_transformers(model: GridModel) -> list[int]:
    """Rows of the in-service transformers that are not 110/10 kV substation transformers."""
    net = model.net
    substation = {d.element.index for d in model.registry.substation_transformers}
    return [int(i) for i in net.trafo.index
            if i not in substation and bool(net.trafo.in_service.at[i])]


def hosting_locations(
    model: GridModel, what: What, scopes: Iterable[Scope], ev_type: EvSiteType
) -> list[Location]:
    """The locations of ``scopes`` in the model, each with where its added amount goes.

    About 90 lines, above the house's ~80, for a stated reason: the four scopes are read as one
    table of rules (grid, feeder, transformer, site) over the same transformers' LV buses and
    ratings and the same two target rules (``ev_targets``, ``pv_targets``)."""
    scopes = list(scopes)
    net = model.net
    reg = model.registry
    bus_name = net.bus.name
    trafos = distribution_transformers(model)
    lv_bus = {str(net.trafo.name.at[i]): str(bus_name.at[net.trafo.lv_bus.at[i]]) for i in trafos}
    kva = {str(net.trafo.name.at[i]): float(net.trafo.sn_mva.at[i]) * 1000 for i in trafos}
    sites_at: dict[str, list[EvChargingSite]] = {}
    for s in reg.ev_sites:
        sites_at.setdefault(s.bus, []).append(s)

    def new_ev(bus: str, weight: float) -> Target:
        return Target(device_id=f"EV+{bus}", bus=bus, weight=weight)

    def new_pv(bus: str, weight: float) -> Target:
        return Target(device_id=f"PV+{bus}", bus=bus, weight=weight)

    def ev_targets(buses: Sequence[str], trafo_names: Sequence[str]) -> tuple[tuple, str]:
        existing = [s for b in buses for s in sites_at.get(b, [])]
        if existing:
            return (tuple(Target(device_id=s.id, bus=s.bus, weight=s.n_connectors)
                          for s in existing),
                    "more connectors at the existing site(s) of their own type, each site's "
                    "limit raised by its per-connector share; shared by existing connectors")
        return (tuple(new_ev(lv_bus[t], kva[t]) for t in trafo_names),
                f"no EV site here: a new {ev_type.value} site at each transformer's LV bus, "
                "shared by transformer kVA")

    def pv_targets(trafo_names: Sequence[str]) -> tuple[tuple, str]:
        return (tuple(new_pv(lv_bus[t], kva[t]) for t in trafo_names),
                "new PV at each distribution transformer's LV bus, shared by transformer kVA")

    out: list[Location] = []
    if Scope.GRID in scopes:
        if what is What.EV:
            if reg.ev_sites:
                targets = tuple(Target(device_id=s.id, bus=s.bus, weight=s.n_connectors)
                                for s in reg.ev_sites)
                note = ("every EV site grown together in proportion to its connectors, of its "
                        "own type, each site's limit raised by its per-connector share")
            else:
                targets, note = ev_targets([], list(lv_bus))
        elif reg.pv:
            targets = tuple(Target(device_id=p.id, bus=p.bus, weight=p.p_mwp) for p in reg.pv)
            note = "every existing PV system scaled together, in proportion to its kWp"
        else:
            targets, note = pv_targets(list(lv_bus))
        out.append(Location(kind="grid", name=model.name, feeder=None, targets=targets,
                            note=note))
    feeders = ()
    if Scope.FEEDERS in scopes or Scope.TRANSFORMERS in scopes or Scope.SITES in scopes:
        feeders = distribution_feeders(net, switch_roles(net, reg)) if reg.switches else ()

    def feeder_of(bus: str) -> str | None:
        return next((f.name for f in feeders if bus in f.buses), None)

    if Scope.FEEDERS in scopes:
        for f in feeders:
            names = [t for t in f.trafos if t in lv_bus]
            if not names and not any(b in sites_at for b in f.buses):
                continue
            targets, note = (ev_targets(list(f.buses), names) if what is What.EV
                             else pv_targets(names))
            if targets:
                out.append(Location(kind="feeder", name=f.name, feeder=f.name, targets=targets,
                                    note=note))
    if Scope.TRANSFORMERS in scopes:
        for t in lv_bus:
            targets, note = (ev_targets([lv_bus[t]], [t]) if what is What.EV
                             else pv_targets([t]))
            out.append(Location(kind="transformer", name=t, feeder=feeder_of(lv_bus[t]),
                                targets=targets, note=note))
    if Scope.SITES in scopes:
        for s in reg.ev_sites:
            if what is What.EV:
                targets = (Target(device_id=s.id, bus=s.bus, weight=1.0),)
                note = (f"more {s.site_type.value} connectors of {s.p_connector_kw:g} kW, the "
                        f"site limit raised by {s.p_site_max_kw / s.n_connectors:g} kW each")
            else:
                targets = (new_pv(s.bus, 1.0),)
                note = "new PV at the site's bus"
            out.append(Location(kind="ev_site", name=s.id, feeder=feeder_of(s.bus),
                                targets=targets, note=note))
    return out


# ---------------------------------------------------------------------------------------------
# the study model: the grid with every added device present at zero


def study_model(model: GridModel, locations: Sequence[Location], ev_type: EvSiteType) -> GridModel:
    """The model with an EV site of no connectors (``EV+bus``) or a PV system of nominal
    :data:`_NOMINAL_KWP` at zero output (``PV+bus``) wherever a location adds a new one, so one
    dispatcher serves every location and value."""
    wanted = {t.device_id: t.bus for loc in locations for t in loc.targets
              if t.device_id not in model.registry}
    if not wanted:
        return model
    net = model.copy_net()
    devices: list[Device] = list(model.registry.devices)
    kw, _ = type_ratings(model, ev_type)
    for dev_id, bus in wanted.items():
        b = model.bus_index(bus)
        if dev_id.startswith("EV+"):
            i = pp.create_load(net, b, p_mw=0.0, q_mvar=0.0, name=dev_id, type="ev_hosting")
            devices.append(EvChargingSite(
                id=dev_id, bus=bus, element=ElementRef(table=ElementTable.LOAD, index=int(i)),
                site_type=ev_type, n_connectors=0, p_connector_kw=kw, p_site_max_kw=0.0,
                description="added by the hosting study"))
        else:
            p_mw = _NOMINAL_KWP / 1000.0
            i = pp.create_sgen(net, b, p_mw=0.0, q_mvar=0.0, sn_mva=p_mw, name=dev_id, type="PV")
            devices.append(PvSystem(
                id=dev_id, bus=bus, element=ElementRef(table=ElementTable.SGEN, index=int(i)),
                p_mwp=p_mw, s_mva=p_mw, description="added by the hosting study"))
    return replace(model, net=net, registry=DeviceRegistry(tuple(devices)))


def type_ratings(model: GridModel, site_type: EvSiteType) -> tuple[float, float]:
    """(connector kW, limit share per connector kW) of the model's first site of the type."""
    for s in model.registry.ev_sites:
        if s.site_type is site_type and s.n_connectors > 0:
            return s.p_connector_kw, s.p_site_max_kw / s.n_connectors
    return EV_TYPE_DEFAULTS[site_type]


def sainte_lague(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` whole units shared in proportion to ``weights``, one at a time to the largest
    ``w / (2 a + 1)``: a share never falls when the total grows (house-monotone)."""
    w = np.asarray(weights, dtype=float)
    a = np.zeros(len(w), dtype=int)
    if total <= 0 or len(w) == 0:
        return a.tolist()
    # most of the total at once (floor of the exact shares: never more than Sainte-Laguë's),
    # then the rest one by one
    a = np.floor(total * w / w.sum()).astype(int)
    a = np.minimum(a, total)
    while a.sum() < total:
        a[int(np.argmax(w / (2 * a + 1)))] += 1
    return a.tolist()
