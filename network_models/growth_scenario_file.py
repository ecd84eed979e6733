"""A growth scenario: what a grid carries in a future year, as data beside the model.

A scenario file (YAML, ``NAME.scenario.yaml``) grows a model's devices and adds new ones:

    schema_version: 1
    name: jiuke_2030
    model: jiuke_oasis            # the grid it is written for (checked against the model's name)
    description: ...
    assumptions: {KEY: {value: ..., unit: ..., note: <why this figure>}}
    ev_sites:   # existing sites grown: every site of a site_type, or one by name
      - {site_type: residential_ac, n_connectors: 110, p_site_max_kw: 770, note: <why>}
    pv:         # existing PV raised to a roof-coverage target: every system on a roof of a
                # customer class (the class of the loads at its bus), or one by name
      - {roof: light_industry, p_mwp: 1.0, note: <why>}
    loads:      # load growth by customer class (peak and reactive power scaled alike)
      - {customer_class: residential, factor: 1.1, note: <why>}
    add:        # new devices at named buses, in the devices file's vocabulary
      bess: [...]
      pv: [...]
      ev_sites: [...]

Every figure carries its reason (``note`` is required). A scenario only grows: a site given
fewer connectors than it has, or a factor below one, is refused; a PV system already above its
roof's target keeps its size. ``apply_growth_scenario`` returns a new model; the one given is
unchanged.
Errors name the file, the entry (``ev_sites[1] residential_ac``) and the field.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from network_models._grid_schema import _Spec
from network_models.builder import DATA_DIR
from network_models.devices_file import (
    DeviceBessSpec,
    DeviceEvSiteSpec,
    DevicePvSpec,
    DevicesSpec,
    apply_devices_spec,
)
from network_models.errors import ModelError
from network_models.grid_file import (
    AssumptionSpec,
    Name,
    Positive,
    _model_error_from_validation,
    read_spec,
)
from network_models.model import Assumption, GridModel
from network_models.registry import (
    CustomerClass,
    Device,
    DeviceRegistry,
    EvChargingSite,
    EvSiteType,
    Load,
    PvSystem,
)
from network_models.yaml_file import read_yaml

__all__ = [
    "GrowthScenarioSpec",
    "apply_growth_scenario",
    "device_totals",
    "growth_scenario_path",
    "load_growth_scenario",
    "shipped_growth_scenarios",
]

SUFFIX = ".scenario.yaml"
Reason = Annotated[str, Field(min_length=3)]


class ReasonedAssumption(AssumptionSpec):
    note: Reason  # a scenario's figures are all assumptions: each says why


class EvSiteGrowthSpec(_Spec):
    """Existing EV sites grown: every site of ``site_type``, or the one ``name``."""

    site_type: EvSiteType | None = None
    name: Name | None = None
    n_connectors: Annotated[int, Field(ge=1)]
    p_site_max_kw: Positive
    note: Reason

    @model_validator(mode="after")
    def _one_selector(self) -> EvSiteGrowthSpec:
        if (self.site_type is None) == (self.name is None):
            raise ValueError("expected either site_type (every site of that type) or name "
                             "(one site)")
        return self


class PvGrowthSpec(_Spec):
    """Existing PV raised to ``p_mwp`` each: systems on a roof of ``roof``, or the one ``name``."""

    roof: CustomerClass | None = None
    name: Name | None = None
    p_mwp: Positive
    note: Reason

    @model_validator(mode="after")
    def _one_selector(self) -> PvGrowthSpec:
        if (self.roof is None) == (self.name is None):
            raise ValueError("expected either roof (the customer class of the loads at the "
                             "PV's bus) or name (one PV system)")
        return self


class LoadGrowthSpec(_Spec):
    customer_class: CustomerClass
    factor: Annotated[float, Field(ge=1.0, le=10.0)]
    note: Reason


class ScenarioAdditionsSpec(_Spec):
    bess: list[DeviceBessSpec] = Field(default_factory=list)
    pv: list[DevicePvSpec] = Field(default_factory=list)
    ev_sites: list[DeviceEvSiteSpec] = Field(default_factory=list)


class GrowthScenarioSpec(_Spec):
    """A whole scenario file."""

    schema_version: Literal[1]
    name: Name
    model: str | None = None
    description: str = ""
    assumptions: dict[str, ReasonedAssumption] = Field(default_factory=dict)
    ev_sites: list[EvSiteGrowthSpec] = Field(default_factory=list)
    pv: list[PvGrowthSpec] = Field(default_factory=list)
    loads: list[LoadGrowthSpec] = Field(default_factory=list)
    add: ScenarioAdditionsSpec = Field(default_factory=ScenarioAdditionsSpec)


def shipped_growth_scenarios(model_name: str) -> dict[str, Path]:
    """The scenarios shipped beside the built-in models for the model ``model_name``."""
    out = {}
    for path in sorted(DATA_DIR.glob(f"*{SUFFIX}")):
        raw = read_yaml(path, expected="a gridctl scenario file (YAML)", error=ModelError)
        if isinstance(raw, dict) and raw.get("model") == model_name:
            out[path.name.removesuffix(SUFFIX)] = path
    return out


def growth_scenario_path(name_or_path: str | Path, model_name: str) -> Path:
    """The file of ``--scenario``: a shipped scenario of the model by name, else a path."""
    text = str(name_or_path)
    shipped = shipped_growth_scenarios(model_name)
    if text in shipped:
        return shipped[text]
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        return path
    known = ", ".join(shipped) or "none"
    raise ModelError(f"no scenario {text!r} for model {model_name!r}: expected one of its "
                     f"shipped scenarios ({known}) or a path to a scenario file (.yaml)",
                     source="--scenario")


def load_growth_scenario(path: str | Path) -> GrowthScenarioSpec:
    """Read and validate a scenario file (not yet against a grid); ModelError naming where."""
    return read_spec(path, GrowthScenarioSpec, expected="a gridctl scenario file (YAML)",
                     sections="schema_version, name, model, assumptions, ev_sites, pv, loads, add",
                     error_of=_scenario_error)


def _scenario_error(exc: ValidationError, raw: dict, source: str) -> ModelError:
    err = _model_error_from_validation(exc, raw, source)
    loc = exc.errors()[0]["loc"]
    if len(loc) >= 3 and loc[0] == "add" and isinstance(loc[2], int):
        # a new device: ("add", "pv", 0, "p_mwp") is the entry add.pv[0] of the file
        add = raw.get("add")
        items = add.get(loc[1]) if isinstance(add, dict) else None
        item = items[loc[2]] if isinstance(items, list) and loc[2] < len(items) else None
        name = item.get("name") if isinstance(item, dict) else None
        element = f"add.{loc[1]}[{loc[2]}]" + (f" {name}" if name else "")
        field = ".".join(str(p) for p in loc[3:]) or None
        return ModelError(err.detail, source=source, element=element, field=field)
    return err


def apply_growth_scenario(model: GridModel, path: str | Path) -> GridModel:
    """``model`` with the scenario of the file ``path`` applied (a new model and net)."""
    source = str(path)
    spec = load_growth_scenario(path)
    if spec.model is not None and spec.model != model.name:
        raise ModelError(f"written for model {spec.model!r}, given model {model.name!r}: "
                         "expected a scenario of this model", source=source, field="model")
    net = model.copy_net()
    devices = {d.id: d for d in model.registry}
    _grow_ev_sites(net, devices, spec.ev_sites, source)
    _grow_pv(net, devices, model.registry.loads, spec.pv, source)
    _grow_loads(net, devices, spec.loads, source)
    notes = dict(model.assumptions)
    for key, a in spec.assumptions.items():
        notes[f"scenario.{key}"] = Assumption(value=a.value, unit=a.unit, note=a.note)
    grown = dataclasses.replace(
        model, net=net, registry=DeviceRegistry(tuple(devices.values())),
        assumptions=MappingProxyType(notes),
        description=(model.description + f"; scenario {spec.name}").lstrip("; "),
    )
    add = spec.add
    if add.bess or add.pv or add.ev_sites:
        grown = apply_devices_spec(
            grown, DevicesSpec(schema_version=1, bess=add.bess, pv=add.pv, ev_sites=add.ev_sites),
            source=source, section="add.", note_key=f"scenario.{spec.name}.added")
    totals = device_totals(grown)
    notes = dict(grown.assumptions)
    notes["scenario"] = Assumption(
        value=spec.name, note=f"from {source}: " + ", ".join(
            f"{k} {v:g}" for k, v in totals.items()))
    return dataclasses.replace(grown, assumptions=MappingProxyType(notes))


def device_totals(model: GridModel) -> dict[str, float]:
    """What a model carries: connectors by site type, EV site limits (kW), PV (kWp), BESS
    (MW, MWh) and loads at peak (MW)."""
    reg = model.registry
    out: dict[str, float] = {}
    connectors = Counter({t.value: 0 for t in EvSiteType})
    for s in reg.ev_sites:
        connectors[s.site_type.value] += s.n_connectors
    out.update({f"connectors_{k}": float(v) for k, v in connectors.items()})
    out["ev_site_limit_kw"] = round(sum(s.p_site_max_kw for s in reg.ev_sites), 3)
    out["pv_kwp"] = round(1000.0 * sum(p.p_mwp for p in reg.pv), 3)
    out["bess_mw"] = round(sum(b.p_mw for b in reg.bess), 3)
    out["bess_mwh"] = round(sum(b.e_mwh for b in reg.bess), 3)
    out["load_peak_mw"] = round(sum(ld.p_peak_mw for ld in reg.loads), 3)
    return out


def _fail(source: str, table: str, i: int, label: str, field: str, message: str) -> None:
    raise ModelError(message, source=source, element=f"{table}[{i}] {label}", field=field)


def _grow_ev_sites(net, devices: dict[str, Device], rules: Sequence[EvSiteGrowthSpec],
                   source: str) -> None:
    sites = [d for d in devices.values() if isinstance(d, EvChargingSite)]
    for i, rule in enumerate(rules):
        label = rule.name or str(rule.site_type)
        hits = [s for s in sites if (s.id == rule.name if rule.name else
                                     s.site_type == rule.site_type)]
        if not hits:
            field = "name" if rule.name else "site_type"
            have = ", ".join(sorted({s.id if rule.name else s.site_type.value for s in sites}))
            _fail(source, "ev_sites", i, label, field,
                  f"no EV site {'named' if rule.name else 'of type'} {label!r} in the grid: "
                  f"expected one of {have or 'none'}")
        for site in hits:
            if rule.n_connectors < site.n_connectors:
                _fail(source, "ev_sites", i, label, "n_connectors",
                      f"{rule.n_connectors} connectors, fewer than the {site.n_connectors} of "
                      f"{site.id}: expected a scenario to grow a site, not shrink it")
            if rule.p_site_max_kw > rule.n_connectors * site.p_connector_kw + 1e-9:
                _fail(source, "ev_sites", i, label, "p_site_max_kw",
                      f"{rule.p_site_max_kw:g} kW is more than {rule.n_connectors} connectors "
                      f"of {site.p_connector_kw:g} kW can draw: expected at most "
                      f"{rule.n_connectors * site.p_connector_kw:g}")
            devices[site.id] = dataclasses.replace(
                site, n_connectors=rule.n_connectors, p_site_max_kw=rule.p_site_max_kw)
            net.load.at[site.element.index, "p_mw"] = rule.p_site_max_kw / 1000.0


def _grow_pv(net, devices: dict[str, Device], loads: Sequence[Load],
             rules: Sequence[PvGrowthSpec], source: str) -> None:
    classes: dict[str, set[CustomerClass]] = {}
    for ld in loads:
        classes.setdefault(ld.bus, set()).add(ld.customer_class)
    systems = [d for d in devices.values() if isinstance(d, PvSystem)]
    for i, rule in enumerate(rules):
        label = rule.name or str(rule.roof)
        hits = [p for p in systems if (p.id == rule.name if rule.name else
                                       rule.roof in classes.get(p.bus, set()))]
        if not hits:
            field = "name" if rule.name else "roof"
            _fail(source, "pv", i, label, field,
                  f"no PV system {'named ' + repr(rule.name) if rule.name else 'on a roof of '}"
                  f"{'' if rule.name else repr(label)} in the grid: expected "
                  + ("a PV system of the grid" if rule.name else
                     "a customer class with PV at its buses"))
        for pv in hits:
            pv = devices[pv.id]  # a later rule sees an earlier one's growth
            assert isinstance(pv, PvSystem)
            if pv.p_mwp >= rule.p_mwp:
                continue  # already at or above the roof's target
            ratio = pv.s_mva / pv.p_mwp
            devices[pv.id] = dataclasses.replace(pv, p_mwp=rule.p_mwp, s_mva=rule.p_mwp * ratio)
            net.sgen.at[pv.element.index, "p_mw"] = rule.p_mwp
            net.sgen.at[pv.element.index, "sn_mva"] = rule.p_mwp * ratio


def _grow_loads(net, devices: dict[str, Device], rules: Sequence[LoadGrowthSpec],
                source: str) -> None:
    for i, rule in enumerate(rules):
        hits = [d for d in devices.values()
                if isinstance(d, Load) and d.customer_class == rule.customer_class]
        if not hits:
            _fail(source, "loads", i, str(rule.customer_class), "customer_class",
                  f"no load of class {rule.customer_class.value!r} in the grid")
        for ld in hits:
            devices[ld.id] = dataclasses.replace(ld, p_peak_mw=ld.p_peak_mw * rule.factor)
            net.load.at[ld.element.index, "p_mw"] *= rule.factor
            net.load.at[ld.element.index, "q_mvar"] *= rule.factor
