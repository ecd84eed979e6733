"""What can fail, what each failure does, and the grid designs compared.

- :func:`failable_elements`: cables (per km), their joints, ring-main units, distribution and
  substation transformers of a model, each with its rate and mean repair time from the
  assumption table. Bus sections of switching stations and substations are in the table but not
  drawn (see :data:`NOT_DRAWN`).
- :func:`load_levels`: the hours of a week (weekday or weekend, hour) grouped into ``k`` load
  levels by the district's load; a plan is made at the heaviest hour of its level.
- :func:`outage_effect`: gridctl's own FLISR for one failure at one load level (protection
  response by topology, location, isolation, restoration with the AC check and shedding): which
  loads come back by switching and which stay off until the repair. A distribution transformer
  is cleared at its ring-main unit: the loads of its LV bus stay off until it is replaced.
- :func:`single_ring_model`: the conventional switching-station single ring derived from a
  diamond: at every switching-station section only the shortest backbone cable stays closed;
  the others are opened at the station end and kept as stand-by, so a backbone fault interrupts
  the section until FLISR re-supplies it.

Signs as in the registry: loads and EV sites consume (MW > 0).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from controllers.flisr import (
    FlisrContext,
    OperatingValues,
    ProtectionReport,
    expected_protection_response,
    plan_restoration,
)
from forecasts.load import class_fraction
from gridctl.studies.reliability_assumptions import ReliabilityAssumptions
from network_models.ac_checks import OperatingPoint
from network_models.model import GridModel
from network_models.registry import (
    DeviceRegistry,
    EvChargingSite,
    Load,
    SwitchDevice,
    SwitchRole,
)

__all__ = [
    "NOT_DRAWN",
    "Consumer",
    "FailableElement",
    "LoadLevels",
    "OutageEffect",
    "consumers_of",
    "failable_elements",
    "load_levels",
    "outage_effect",
    "single_ring_model",
]

NOT_DRAWN = ("bus sections of switching stations and substations: gridctl's FLISR locates a "
             "station bus fault as a fault on one of its backbone cables (the forward rule trips "
             "the first breaker towards a source), so their effect would be wrong; their rate "
             "is in the table, their failures are not drawn")
_RING_ROLES = (SwitchRole.RING_SWITCH, SwitchRole.NORMALLY_OPEN_POINT)
_WEEKDAY = dt.date(2026, 7, 15)  # a Wednesday
_WEEKEND = dt.date(2026, 7, 18)  # a Saturday


@dataclass(frozen=True)
class FailableElement:
    """One element that fails: ``fault`` is what FLISR is told, ``("line"|"bus"|"trafo"|"lv",
    name)``; a cable and its joints share a fault (and so a plan)."""

    name: str
    kind: str  # cable | joint | rmu | distribution_transformer | substation_transformer
    fault: tuple[str, str]
    rate_per_year: float
    repair_h: float


@dataclass(frozen=True)
class Consumer:
    """A customer load or an EV site (no customers) in the study's order."""

    id: str
    customer_class: str  # a CustomerClass value, or "ev_charging"
    customers: int
    bus: str


@dataclass(frozen=True)
class OutageEffect:
    """Consumers (positions in :func:`consumers_of` order) back by switching / off until repair."""

    restored: tuple[int, ...]
    until_repair: tuple[int, ...]

    def to_list(self) -> list[list[int]]:
        return [list(self.restored), list(self.until_repair)]

    @classmethod
    def from_list(cls, data: list[list[int]]) -> OutageEffect:
        return cls(restored=tuple(data[0]), until_repair=tuple(data[1]))


@dataclass(frozen=True)
class LoadLevels:
    """``level[weekend, hour]``; ``p_mw[weekend, hour, consumer]``; ``peak_hour[level]`` the
    (weekend, hour) whose district load is the highest of the level."""

    level: np.ndarray
    p_mw: np.ndarray
    peak_hour: tuple[tuple[int, int], ...]


def consumers_of(model: GridModel) -> tuple[Consumer, ...]:
    loads = [Consumer(d.id, d.customer_class.value, d.customers, d.bus)
             for d in model.registry.of_type(Load)]
    evs = [Consumer(d.id, "ev_charging", 0, d.bus) for d in model.registry.of_type(EvChargingSite)]
    return (*loads, *evs)


def failable_elements(model: GridModel, table: ReliabilityAssumptions) -> tuple[FailableElement,
                                                                                 ...]:
    """Every element drawn, in a stable order (cables, joints, RMUs, transformers)."""
    net = model.net
    out: list[FailableElement] = []
    joints: list[FailableElement] = []
    for name, length in zip(net.line["name"].astype(str), net.line["length_km"], strict=True):
        out.append(FailableElement(f"cable:{name}", "cable", ("line", name),
                                   table["cable_per_km_year"] * float(length),
                                   table["cable_repair_h"]))
        n = _joints(float(length), table["joint_spacing_km"])
        if n:
            joints.append(FailableElement(f"joint:{name}", "joint", ("line", name),
                                          table["joint_per_unit_year"] * n,
                                          table["joint_repair_h"]))
    out.extend(joints)
    out.extend(FailableElement(f"rmu:{bus}", "rmu", ("bus", bus), table["rmu_per_unit_year"],
                               table["rmu_repair_h"]) for bus in _rmu_buses(model))
    substation = {t.id for t in model.registry.substation_transformers}
    for name in net.trafo["name"].astype(str):
        if name in substation:
            out.append(FailableElement(f"transformer:{name}", "substation_transformer",
                                       ("trafo", name),
                                       table["substation_transformer_per_unit_year"],
                                       table["substation_transformer_repair_h"]))
        else:
            out.append(FailableElement(f"transformer:{name}", "distribution_transformer",
                                       ("lv", name),
                                       table["distribution_transformer_per_unit_year"],
                                       table["distribution_transformer_replacement_h"]))
    return tuple(e for e in out if e.rate_per_year > 0)


def _joints(length_km: float, spacing_km: float) -> int:
    return max(0, math.ceil(length_km / spacing_km - 1e-9) - 1) if spacing_km > 0 else 0


def _rmu_buses(model: GridModel) -> list[str]:
    """Buses carrying the ring's load-break switches: the ring-main units."""
    buses = {model.net.bus.at[int(model.net.switch.at[sw.element.index, "bus"]), "name"]
             for sw in model.registry.switches if sw.role in _RING_ROLES}
    return sorted(map(str, buses))


def load_levels(model: GridModel, table: ReliabilityAssumptions, k: int) -> LoadLevels:
    """The 48 (day type, hour) operating hours grouped into ``k`` levels of district load."""
    consumers = consumers_of(model)
    reg = model.registry
    temperature = table["temperature_c"]
    p = np.zeros((2, 24, len(consumers)))
    for w, day in enumerate((_WEEKDAY, _WEEKEND)):
        times = pd.date_range(pd.Timestamp(day, tz=model.site.timezone), periods=24, freq="h")
        fractions: dict[str, np.ndarray] = {}
        for j, c in enumerate(consumers):
            device = reg[c.id]
            if isinstance(device, Load):
                if c.customer_class not in fractions:
                    fractions[c.customer_class] = class_fraction(
                        device.customer_class, times, np.full(24, temperature))
                p[w, :, j] = device.p_peak_mw * np.clip(fractions[c.customer_class], 0, 1)
            else:
                p[w, :, j] = table["ev_site_frac"] * device.p_site_max_kw / 1000.0
    total = p.sum(axis=2).ravel()
    order = np.argsort(total, kind="stable")
    level = np.empty(48, dtype=int)
    for rank, hour in enumerate(order):
        level[hour] = min(k - 1, rank * k // 48)
    peak = []
    for lv in range(k):
        hours = np.flatnonzero(level == lv)
        best = int(hours[np.argmax(total[hours])])
        peak.append((best // 24, best % 24))
    return LoadLevels(level=level.reshape(2, 24), p_mw=p, peak_hour=tuple(peak))


def operating_at(model: GridModel, levels: LoadLevels, level: int,
                 table: ReliabilityAssumptions) -> OperatingValues:
    """Loads at the heaviest hour of ``level``; EV sites at the table's fraction; PV off
    (inverters trip on loss of mains, so a de-energised part has none)."""
    w, h = levels.peak_hour[level]
    consumers = consumers_of(model)
    base = OperatingPoint(name=f"reliability_level_{level}", load_frac=1.0,
                          ev_frac=table["ev_site_frac"], pv_frac=0.0,
                          note="reliability study load level")
    return OperatingValues(base=base, p_mw={c.id: float(levels.p_mw[w, h, j])
                                            for j, c in enumerate(consumers)
                                            if c.customer_class != "ev_charging"})


def outage_effect(model: GridModel, context: FlisrContext, fault: tuple[str, str],
                  operating: OperatingValues) -> OutageEffect:
    """What one failure does, by gridctl's FLISR (distribution transformers: their LV loads)."""
    consumers = consumers_of(model)
    position = {c.id: j for j, c in enumerate(consumers)}
    kind, name = fault
    if kind == "lv":
        lv_bus = str(model.net.bus.at[int(model.net.trafo.at[model.trafo_index(name), "lv_bus"]),
                                      "name"])
        return OutageEffect((), tuple(j for j, c in enumerate(consumers) if c.bus == lv_bus))
    if kind == "trafo":
        breakers = [sw.id for sw in model.registry.switches
                    if sw.switched_element == name and sw.normally_closed]
        report = ProtectionReport(tripped_breakers=frozenset(breakers),
                                  switch_closed={b: False for b in breakers},
                                  transformers_out=frozenset({name}))
    else:
        report = expected_protection_response(model, context=context, **{kind: name})
    plan = plan_restoration(model, report, operating=operating, context=context)
    interrupted = {r.device for r in plan.interrupted}
    restored = {r.device for r in plan.restored} & interrupted
    return OutageEffect(
        restored=tuple(sorted(position[d] for d in restored)),
        until_repair=tuple(sorted(position[d] for d in interrupted - restored)),
    )


def single_ring_model(model: GridModel) -> tuple[GridModel, tuple[str, ...]]:
    """The single-ring derivative and the breakers opened to make it (see the module)."""
    net = model.copy_net()
    lines = net.line.set_index(net.line["name"].astype(str))
    backbone = set(model.backbone_lines)
    opened: list[str] = []
    for station in model.switching_stations:
        for section in station.sections:
            here = model.bus_index(section)
            cables = sorted((float(lines.at[ln, "length_km"]), ln) for ln in backbone
                            if here in (int(lines.at[ln, "from_bus"]), int(lines.at[ln, "to_bus"])))
            for _, ln in cables[1:]:
                rows = net.switch[(net.switch.et == "l") & (net.switch.bus == here)
                                  & (net.switch.element == model.line_index(ln))]
                net.switch.loc[rows.index, "closed"] = False
                opened.extend(map(str, rows["name"]))
    names = set(opened)
    devices = tuple(dataclasses.replace(d, normally_closed=False)
                    if isinstance(d, SwitchDevice) and d.id in names else d
                    for d in model.registry.devices)
    derived = dataclasses.replace(model, name=f"{model.name}_single_ring", net=net,
                                  registry=DeviceRegistry(devices=devices),
                                  description=f"{model.name} as a single ring: "
                                  f"{', '.join(sorted(names))} opened")
    return derived, tuple(sorted(names))
