"""Hosting capacity: how many more EV connectors, or how many more kWp of PV, a grid can take.

For every distribution feeder, distribution transformer and EV site (and the whole grid), the
largest *added* amount for which every planned day still holds every AC limit, found twice:

- **uncontrolled**: gridctl's day-ahead baseline (PV uncurtailed, batteries idle, every vehicle
  at full power from arrival within its site's limit), checked in AC; no solve;
- **orderly**: gridctl's own day-ahead dispatch (:meth:`controllers.dispatch.Dispatcher.plan`,
  what :func:`controllers.dayahead.run_dayahead` runs), which must pass its AC check, serve every
  session what it could get alone (at most :attr:`HostingSettings.ev_short_frac` of the day's EV
  energy left short by the grid or the plan) and curtail at most
  :attr:`HostingSettings.pv_curtail_frac` of the day's available PV energy.

The amount is searched on its integer grid (connectors, kWp) by doubling, then bisection to
``resolution``; every reported value passed, in AC, on every day at exactly that value, and the
value one ``resolution`` above failed on some day: that day's first broken limit (largest breach)
is the **binding element**.

What is added, where (assumptions, said in every result's ``note``):

- EV: at an existing site, more connectors of its type, its connection limit raised by its own
  per-connector share (``p_site_max_kw / n_connectors``); where a feeder or transformer has no
  site, a new site of ``ev_type`` at each distribution transformer's LV bus, with the
  per-connector share of that type's first site in the model (else :data:`EV_TYPE_DEFAULTS`).
  Several sites share a total by Sainte-Laguë (weights: existing connectors, or transformer
  kVA), which never takes a connector away when the total grows. The added connectors' sessions
  are drawn by :mod:`forecasts.ev_generator` for one-connector sites of the same type, one per
  added connector (seeded by site and connector number), so the existing sessions stay as they
  are and ``k + 1`` added connectors carry the sessions of ``k`` plus one: the search is monotone.
- PV: new PV at a location's LV buses (a feeder: each of its distribution transformers, shared
  by kVA), facing south at 20°, with the per-kWp profile of gridctl's forecast for that bus and an
  inverter of :attr:`HostingSettings.pv_s_per_p` kVA per kWp; the whole grid: every existing PV
  system scaled together (in proportion to its kWp).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

import numpy as np
import pandapower as pp
import pandas as pd

from controllers.config import DispatchConfig
from controllers.dayahead import schedule_kpis, sessions_at_start
from controllers.dispatch import Dispatcher
from controllers.schedule import AcCheck
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle, build
from forecasts.ev import EvSession
from forecasts.ev_generator import generate_sessions
from forecasts.timegrid import local_days
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

__all__ = [
    "DEFAULT_DAYS",
    "EV_TYPE_DEFAULTS",
    "Control",
    "HostingResult",
    "HostingSettings",
    "HostingStudy",
    "Location",
    "Scope",
    "What",
    "hosting_locations",
    "run_hosting",
]

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


@dataclass(frozen=True, kw_only=True)
class Found:
    """The largest value that held on every day, checked in AC at that value."""

    value: int
    unit: str
    capped: bool  # the search reached its cap without a failure
    worst_day: str | None  # the day that failed just above
    binding: dict[str, Any] | None  # what broke first just above the value
    at_value: dict[str, Any]  # figures of the AC check at the value, worst over the days
    evaluations: int
    wall_s: float


@dataclass(frozen=True, kw_only=True)
class HostingResult:
    location: Location
    what: What
    found: dict[Control, Found]
    added_at_value: dict[Control, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "kind": loc.kind,
            "name": loc.name,
            "feeder": loc.feeder,
            "what": self.what.value,
            "note": loc.note,
            "targets": [t.device_id for t in loc.targets],
            **{c.value: {
                "added": f.value,
                "unit": f.unit,
                "capped": f.capped,
                "worst_day": f.worst_day,
                "binding": f.binding,
                "at_value": f.at_value,
                "added_by_target": self.added_at_value.get(c, {}),
                "evaluations": f.evaluations,
                "wall_s": round(f.wall_s, 3),
            } for c, f in self.found.items()},
        }


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
    """The locations of ``scopes`` in the model, each with where its added amount goes."""
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
    kw, _ = _type_ratings(model, ev_type)
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


def _type_ratings(model: GridModel, site_type: EvSiteType) -> tuple[float, float]:
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


# ---------------------------------------------------------------------------------------------
# one day: its bundle, its dispatcher, and what a value looks like on it


class _Day:
    def __init__(self, study: HostingStudy, date: dt.date) -> None:
        m = study.model
        start, horizon = local_days(date, 1, m.site.timezone)
        self.date = date
        self.bundle: ForecastBundle = build(m, start, horizon, "15min", seed=study.settings.seed)
        self.dispatcher = Dispatcher(m, steps=len(self.bundle.index), step_h=self.bundle.step_h,
                                     config=study.config)
        self._added_sessions: dict[tuple[str, int], tuple[EvSession, ...]] = {}
        self.study = study

    def sessions_of_added(self, site: EvChargingSite, j: int) -> tuple[EvSession, ...]:
        """Sessions of added connector ``j`` (1-based) of ``site``: a one-connector site of its
        type, seeded by site and number, put on connector ``n + j``."""
        key = (site.id, j)
        if key not in self._added_sessions:
            b = self.bundle
            probe = replace(site, id=f"{site.id}+{j}", n_connectors=1)
            drawn = generate_sessions([probe], b.start, b.end, self.study.settings.seed)
            c = f"c{site.n_connectors + j}"
            self._added_sessions[key] = tuple(
                replace(s, id=f"{site.id}/added{j}/{s.id.split('/', 1)[1]}", site=site.id,
                        connector=c)
                for s in drawn)
        return self._added_sessions[key]

    def case(self, loc: Location, value: int) -> tuple[GridModel, ForecastBundle, dict]:
        """The study model and the day's bundle with ``value`` added at ``loc``."""
        st = self.study
        base = st.model
        shares = st.shares(loc, value)
        devices = {d.id: d for d in base.registry.devices}
        bundle = self.bundle
        if st.what is What.EV:
            sessions = list(bundle.ev_sessions)
            for dev_id, n in shares.items():
                site = devices[dev_id]
                assert isinstance(site, EvChargingSite)
                share = st.share_kw[dev_id]
                for j in range(1, int(n) + 1):
                    sessions.extend(self.sessions_of_added(site, j))
                devices[dev_id] = replace(site, n_connectors=site.n_connectors + int(n),
                                          p_site_max_kw=site.p_site_max_kw + share * n)
            sessions.sort(key=lambda s: (s.arrival.value, s.id))
            bundle = replace(bundle, ev_sessions=tuple(sessions))
        else:
            pv = bundle.pv_p_mw.copy()
            for dev_id, kwp in shares.items():
                sys = devices[dev_id]
                assert isinstance(sys, PvSystem)
                per_kwp = self.bundle.pv_p_mw[dev_id] / (sys.p_mwp * 1000.0)
                added = dev_id not in st.original_ids
                kwp_now = (0.0 if added else sys.p_mwp * 1000.0) + kwp
                pv[dev_id] = per_kwp * kwp_now
                ratio = st.settings.pv_s_per_p if added else sys.s_mva / sys.p_mwp
                devices[dev_id] = replace(sys, p_mwp=max(kwp_now, 1e-6) / 1000.0,
                                          s_mva=max(kwp_now, 1e-6) * ratio / 1000.0)
            bundle = replace(bundle, pv_p_mw=pv)
        model = replace(base, registry=DeviceRegistry(tuple(devices[d.id]
                                                            for d in base.registry.devices)))
        return model, bundle, shares

    def check(self, loc: Location, value: int, control: Control) -> dict[str, Any]:
        """Whether ``value`` at ``loc`` holds on this day under ``control``, with its figures."""
        model, bundle, _ = self.case(loc, value)
        d = self.dispatcher
        # the dispatcher is built once for the study model; a value changes ratings only (site
        # limits and connectors, PV kWp and inverter kVA), which it reads from these
        d.model, d.ev_sites = model, model.registry.ev_sites
        states = sessions_at_start(bundle)
        snapshot = GridSnapshot.initial(model, bundle.start, states)
        if control is Control.UNCONTROLLED:
            schedule = d.baseline(bundle, snapshot, states=states)
            ac = d.evaluate(bundle, schedule)
            ok, why = ac.passed, [] if ac.passed else ["AC limits"]
        else:
            plan = d.plan(bundle, snapshot)
            schedule, ac = plan.schedule, plan.ac
            ok = plan.solution is not None and plan.solution.ok and ac.passed
            why = [] if ok else [plan.record.status if not ac.passed or plan.solution is None
                                 or not plan.solution.ok else ""]
            why = ["AC limits"] if not ac.passed else why
        kpis = schedule_kpis(bundle, schedule, ac, states)
        ev_mwh = kpis["ev_energy_requested_mwh"]
        short = kpis["ev_energy_short_by_grid_or_plan_mwh"]
        pv_mwh = float(bundle.pv_p_mw.sum().sum() * bundle.step_h)
        curtailed = kpis["pv_curtailed_mwh"]
        if control is Control.ORDERLY:
            if short > self.study.settings.ev_short_frac * max(ev_mwh, 1e-9) + 1e-4:
                ok = False
                why.append(f"EV energy short by the grid or the plan: {short * 1000:.1f} kWh")
            if curtailed > self.study.settings.pv_curtail_frac * pv_mwh + 1e-4:
                ok = False
                why.append(f"PV curtailed {curtailed:.3f} of {pv_mwh:.3f} MWh")
        return {
            "passed": bool(ok),
            "index": bundle.index,
            "why": [w for w in why if w],
            "ac": ac,
            "figures": {
                "v_min_pu": kpis["v_min_pu"],
                "v_max_pu": kpis["v_max_pu"],
                "max_line_loading_pct": kpis["max_line_loading_pct"],
                "max_trafo_loading_pct": kpis["max_trafo_loading_pct"],
                "ac_validated": kpis["ac_validated"],
                "ac_violations": kpis["ac_violations"],
                "ev_sessions": kpis["ev_sessions"],
                "ev_energy_short_by_grid_or_plan_mwh": short,
                "pv_curtailed_mwh": curtailed,
                "peak_import_mw": kpis["peak_import_mw"],
            },
        }


# ---------------------------------------------------------------------------------------------
# the study


class HostingStudy:
    """One hosting study of a model: its days, built once, and the search per location."""

    def __init__(
        self,
        model: GridModel,
        what: What,
        *,
        scopes: Iterable[Scope] = tuple(Scope),
        days: Sequence[dt.date] = DEFAULT_DAYS,
        settings: HostingSettings | None = None,
        config: DispatchConfig | None = None,
    ) -> None:
        self.what = what
        self.settings = settings or HostingSettings()
        self.config = config or DispatchConfig()
        self.original_ids = frozenset(d.id for d in model.registry.devices)
        self.locations = hosting_locations(model, what, scopes, self.settings.ev_type)
        self.model = study_model(model, self.locations, self.settings.ev_type)
        _, new_share = _type_ratings(model, self.settings.ev_type)
        self.share_kw = {
            s.id: (s.p_site_max_kw / s.n_connectors if s.n_connectors else new_share)
            for s in self.model.registry.ev_sites
        }
        self.day_dates = tuple(days)
        self._days: dict[dt.date, _Day] = {}

    @property
    def unit(self) -> str:
        return "connectors" if self.what is What.EV else "kWp"

    def day(self, date: dt.date) -> _Day:
        if date not in self._days:
            self._days[date] = _Day(self, date)
        return self._days[date]

    def shares(self, loc: Location, value: int) -> dict[str, float]:
        """What each target gets of ``value`` (connectors or kWp)."""
        weights = [t.weight for t in loc.targets]
        if self.what is What.EV:
            return {t.device_id: a for t, a in zip(loc.targets, sainte_lague(value, weights),
                                                    strict=True)}
        total = sum(weights)
        return {t.device_id: value * t.weight / total for t in loc.targets}

    def run(self, progress: Callable[[str], None] | None = None) -> list[HostingResult]:
        out = []
        for loc in self.locations:
            out.append(self.locate(loc))
            if progress is not None:
                progress(_one_line(out[-1]))
        return out

    def locate(self, loc: Location) -> HostingResult:
        found: dict[Control, Found] = {}
        added: dict[Control, dict[str, float]] = {}
        floor = 0
        for control in self.settings.controls:
            # orderly starts from what uncontrolled holds: it is checked there first and the
            # search goes down from it only if it fails
            f = self._search(loc, control, start=floor)
            found[control] = f
            added[control] = {k: round(float(v), 3) for k, v in self.shares(loc, f.value).items()
                              if v}
            if control is Control.UNCONTROLLED:
                floor = f.value
        return HostingResult(location=loc, what=self.what, found=found, added_at_value=added)

    def _search(self, loc: Location, control: Control, *, start: int) -> Found:
        t0 = time.perf_counter()
        s = self.settings
        res = max(1, s.resolution)
        cap = s.cap or (5000 if self.what is What.EV else 200_000)
        first = s.first_step or (4 if self.what is What.EV else 200)
        if loc.kind == "grid":
            first *= 8
        first = max(first, res)
        evaluations = 0
        order = list(self.day_dates)
        cache: dict[int, tuple[bool, dt.date | None, dict | None]] = {}

        def holds(value: int) -> bool:
            nonlocal evaluations
            if value in cache:
                return cache[value][0]
            for date in list(order):
                evaluations += 1
                r = self.day(date).check(loc, value, control)
                if not r["passed"]:
                    order.remove(date)
                    order.insert(0, date)  # the day that fails first is tried first next time
                    cache[value] = (False, date, r)
                    return False
            cache[value] = (True, None, None)
            return True

        lo, hi = 0, None
        if start > 0 and holds(start):
            lo = start
        elif start > 0:
            hi = start
        if hi is None:
            if not holds(0):
                hi = 0
                lo = -1
            else:
                v = max(lo * 2, first) if lo else first
                while v <= cap and holds(v):
                    lo, v = v, v * 2
                hi = v if v <= cap else None
                if hi is None and lo < cap:
                    hi = cap if not holds(cap) else None
                    if hi is None:
                        lo = cap
        while hi is not None and hi - lo > res:
            mid = (lo + hi) // 2
            if res > 1:
                mid = lo + max(res, ((hi - lo) // 2 // res) * res)
                if mid >= hi:
                    break
            if holds(mid):
                lo = mid
            else:
                hi = mid
        value = max(lo, 0)
        binding, worst = None, None
        if hi is not None:
            _, date, r = cache[hi]
            worst = date.isoformat() if date else None
            binding = _binding(r, self.day(date).dispatcher.net, self.config) if r else None
            if lo < 0:
                binding = {**(binding or {}), "note": "the grid as it is already breaks this "
                           "limit on that day: nothing more can be hosted"}
        at_value = self._at_value(loc, value, control)
        return Found(value=value, unit=self.unit, capped=hi is None, worst_day=worst,
                     binding=binding, at_value=at_value, evaluations=evaluations,
                     wall_s=time.perf_counter() - t0)

    def _at_value(self, loc: Location, value: int, control: Control) -> dict[str, Any]:
        """The AC check at the value found, on every day (the reported figures: worst of them)."""
        days = {}
        for date in self.day_dates:
            r = self.day(date).check(loc, value, control)
            days[date.isoformat()] = {"passed": r["passed"], **r["figures"]}
        rows = list(days.values())
        return {
            "passed_every_day": all(r["passed"] for r in rows),
            "v_min_pu": min(r["v_min_pu"] for r in rows),
            "v_max_pu": max(r["v_max_pu"] for r in rows),
            "max_line_loading_pct": max(r["max_line_loading_pct"] for r in rows),
            "max_trafo_loading_pct": max(r["max_trafo_loading_pct"] for r in rows),
            "days": days,
        }


def _binding(r: dict, net, config: DispatchConfig) -> dict[str, Any]:
    """The first limit broken just above the value: the largest breach of that AC check, or
    what orderly dispatch could not do (EV energy short, PV curtailed beyond the allowance)."""
    ac: AcCheck = r["ac"]
    out: dict[str, Any] = {"why": "; ".join(r["why"])}
    if ac.violations:
        def breach(v) -> float:
            if v.kind == "not_converged":
                return math.inf
            scale = 0.01 if v.kind.startswith("voltage") else 1.0  # pu against percent points
            return abs(v.value - v.limit) / scale
        worst = max(ac.violations, key=breach)
        out.update({"kind": worst.kind, "element": worst.element, "value": worst.value,
                    "limit": worst.limit,
                    "time": r["index"][worst.step].isoformat(), "step": worst.step})
    else:
        out.update(_tightest(ac, r["index"], net, config))
    return out


def _tightest(ac: AcCheck, index: pd.DatetimeIndex, net, config: DispatchConfig) -> dict[str, Any]:
    """The element nearest its limit in an AC check that passed (pu or percent points left)."""
    res = ac.result
    lim = config.ac_limits
    cands = []
    vm = res.vm_pu
    if np.isfinite(vm).any():
        low = np.nanargmin(vm)
        step, col = np.unravel_index(low, vm.shape)
        cands.append(((vm[step, col] - lim.v_min_pu) * 100, "voltage_low",
                      str(net.bus.name.iloc[col]), float(vm[step, col]), lim.v_min_pu, step))
        high = np.nanargmax(vm)
        step, col = np.unravel_index(high, vm.shape)
        cands.append(((lim.v_max_pu - vm[step, col]) * 100, "voltage_high",
                      str(net.bus.name.iloc[col]), float(vm[step, col]), lim.v_max_pu, step))
    for arr, kind, names, limit in (
        (res.line_loading_pct, "line_loading", net.line.name, lim.max_line_loading_pct),
        (res.trafo_loading_pct, "trafo_loading", net.trafo.name, lim.max_trafo_loading_pct),
    ):
        if arr.size and np.isfinite(arr).any():
            i = np.nanargmax(arr)
            step, col = np.unravel_index(i, arr.shape)
            cands.append((limit - arr[step, col], kind, str(names.iloc[col]),
                          float(arr[step, col]), limit, step))
    if not cands:
        return {}
    margin, kind, element, value, limit, step = min(cands, key=lambda c: c[0])
    return {"kind": kind, "element": element, "value": value, "limit": limit, "step": int(step),
            "time": index[int(step)].isoformat(), "margin": round(float(margin), 4),
            "note": "no AC limit broken: the element nearest its limit"}


def _one_line(r: HostingResult) -> str:
    parts = [f"{r.location.kind} {r.location.name}:"]
    for c, f in r.found.items():
        b = f.binding or {}
        parts.append(f"{c.value} +{f.value} {f.unit}"
                     + (f" ({b.get('kind', '')} {b.get('element', '')})" if b else " (cap)"))
    return " ".join(parts)


def run_hosting(
    model: GridModel,
    what: What | str,
    *,
    scopes: Iterable[Scope | str] = tuple(Scope),
    days: Sequence[dt.date] = DEFAULT_DAYS,
    settings: HostingSettings | None = None,
    config: DispatchConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[HostingResult], HostingStudy]:
    """The hosting study of ``model``: one result per location of ``scopes``."""
    study = HostingStudy(model, What(what), scopes=[Scope(s) for s in scopes], days=days,
                         settings=settings, config=config)
    return study.run(progress), study


def results_frame(results: Sequence[HostingResult]) -> pd.DataFrame:
    """One row per location: the value found and the binding element per control."""
    rows = []
    for r in results:
        row = {"kind": r.location.kind, "name": r.location.name, "feeder": r.location.feeder}
        for c, f in r.found.items():
            b = f.binding or {}
            row[f"{c.value}_added"] = f.value
            row[f"{c.value}_binding"] = (f"{b.get('kind', '')} {b.get('element', '')}".strip()
                                         if b else "cap reached")
            row[f"{c.value}_worst_day"] = f.worst_day
        rows.append(row)
    return pd.DataFrame(rows)

