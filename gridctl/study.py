"""The study file: an operator's tariff, carbon price, objective weights, limits, MPC window and
solver, as one YAML file (``--config FILE.yaml``), checked key by key.

Every key is optional; what the file leaves out keeps gridctl's default, and ``--set KEY=VALUE``
on the command line overrides both. :func:`load_study` returns the :class:`Study` the commands
plan with and, for ``gridctl config show``, each value with where it came from::

    schema_version: 1
    tariff:
      flat_price_cny_per_kwh: 0.65        # anchors the Shanghai TOU multipliers, or:
      tou:                                # an own table: each price until the next start
        - {start: "00:00", price_cny_per_kwh: 0.30}
        - {start: "08:00", price_cny_per_kwh: 1.10}
        - {start: "22:00", price_cny_per_kwh: 0.30}
      export_price_cny_per_kwh: 0.35
      demand_charge_cny_per_kw_month: 39  # sets weights.peak_cny_per_mw (a day's share)
    carbon: {price_cny_per_t: 80, intensity_kg_per_kwh: 0.42}
    weights: {curtailment_cny_per_mwh: 50, ev_shortfall_cny_per_mwh: 20000, ...}
    limits: {v_min_pu: 0.93, v_max_pu: 1.07, max_loading_frac: 1.0,
             voltage_margin_pu: 0.008, loading_margin_frac: 0.03}
    mpc: {horizon_steps: 16, step_minutes: 15}
    solver: {name: CLARABEL, time_limit_s: 60}
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gridctl.errors import UserInputError

__all__ = ["Study", "StudyFile", "load_study", "parse_settings"]

NonNegative = Annotated[float, Field(ge=0)]
# a day's share of a monthly demand charge: the peak weight is per MW of a day's peak
DAYS_PER_MONTH = 30.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class TouBandSpec(_Section):
    start: str
    price_cny_per_kwh: Annotated[float, Field(ge=0, le=20)]

    @field_validator("start")
    @classmethod
    def _time_of_day(cls, text: str) -> str:
        try:
            t = dt.time.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r}: expected a time of day as HH:MM") from None
        if t.second or t.microsecond:
            raise ValueError(f"{text!r}: expected whole minutes, HH:MM")
        return text


class TariffSpec(_Section):
    flat_price_cny_per_kwh: Annotated[float, Field(ge=0, le=20)] | None = None
    tou: Annotated[list[TouBandSpec], Field(min_length=1)] | None = None
    export_price_cny_per_kwh: Annotated[float, Field(ge=0, le=20)] | None = None
    demand_charge_cny_per_kw_month: Annotated[float, Field(ge=0, le=1000)] | None = None

    @field_validator("tou")
    @classmethod
    def _bands_in_order(cls, bands: list[TouBandSpec] | None) -> list[TouBandSpec] | None:
        if bands is None:
            return None
        starts = [dt.time.fromisoformat(b.start) for b in bands]
        if starts[0] != dt.time(0, 0):
            raise ValueError("expected the first band to start at 00:00")
        if any(a >= b for a, b in itertools.pairwise(starts)):
            raise ValueError("expected band starts in increasing order")
        return bands


class CarbonSpec(_Section):
    price_cny_per_t: Annotated[float, Field(ge=0, le=10_000)] | None = None
    intensity_kg_per_kwh: Annotated[float, Field(ge=0, le=2)] | None = None


class WeightsSpec(_Section):
    energy: NonNegative | None = None
    peak_cny_per_mw: NonNegative | None = None
    losses_cny_per_mwh: NonNegative | None = None
    curtailment_cny_per_mwh: NonNegative | None = None
    degradation: NonNegative | None = None
    reactive_cny_per_mvarh: NonNegative | None = None
    ev_shortfall_cny_per_mwh: NonNegative | None = None
    ev_deferral_cny_per_mwh: NonNegative | None = None
    bess_terminal_cny_per_mwh: NonNegative | None = None
    bess_out_of_band_cny_per_mwh: NonNegative | None = None
    voltage_violation_cny_per_pu: NonNegative | None = None
    loading_violation_cny_per_mva: NonNegative | None = None


class LimitsSpec(_Section):
    v_min_pu: Annotated[float, Field(gt=0.5, lt=1.5)] | None = None
    v_max_pu: Annotated[float, Field(gt=0.5, lt=1.5)] | None = None
    max_loading_frac: Annotated[float, Field(gt=0, le=2)] | None = None
    voltage_margin_pu: Annotated[float, Field(ge=0, le=0.1)] | None = None
    loading_margin_frac: Annotated[float, Field(ge=0, le=0.5)] | None = None


class MpcSpec(_Section):
    horizon_steps: Annotated[int, Field(ge=2, le=672)] | None = None
    step_minutes: Literal[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60] | None = None


class SolverSpec(_Section):
    name: Literal["CLARABEL", "HIGHS"] | None = None
    time_limit_s: Annotated[float, Field(gt=0, le=86_400)] | None = None


class StudyFile(_Section):
    """The study file's schema (see the module docstring)."""

    schema_version: Literal[1] = 1
    tariff: TariffSpec = TariffSpec()
    carbon: CarbonSpec = CarbonSpec()
    weights: WeightsSpec = WeightsSpec()
    limits: LimitsSpec = LimitsSpec()
    mpc: MpcSpec = MpcSpec()
    solver: SolverSpec = SolverSpec()


@dataclass(frozen=True, kw_only=True)
class Study:
    """What the commands plan with, and where each value came from."""

    dispatch: Any  # controllers.config.DispatchConfig
    tariff: Any  # forecasts.tariffs.Tariff
    tariff_given: bool  # the file or a flag set a tariff: it replaces a bundle's prices
    carbon_kg_per_kwh: float | None  # None: gridctl's default or a bundle's
    horizon_steps: int
    step_minutes: int
    settings: tuple[tuple[str, Any, str], ...]  # (key, effective value, origin)

    def origin(self, key: str) -> str:
        return next(o for k, _, o in self.settings if k == key)


def parse_settings(pairs: Iterable[str], *, option: str = "--set") -> dict[str, Any]:
    """``KEY=VALUE`` pairs (``tariff.flat_price_cny_per_kwh=0.7``), values read as YAML
    scalars; a pair without ``=`` or a key without a section is refused naming it."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or "." not in key or not text.strip():
            raise UserInputError(f"{pair!r}: expected SECTION.KEY=VALUE, e.g. "
                                 "tariff.flat_price_cny_per_kwh=0.7", source=option)
        try:
            out[key] = yaml.safe_load(text)
        except yaml.YAMLError:
            raise UserInputError(f"{pair!r}: the value is not a number, word or list",
                                 source=option) from None
    return out


def load_study(
    path: str | Path | None = None,
    flags: Mapping[str, tuple[Any, str]] | None = None,
) -> Study:
    """The study of a file (or none) with ``flags`` (dotted key → (value, the flag that set
    it)) on top; a problem raises UserInputError naming the file or the flag and the key."""
    from network_models.yaml_file import read_yaml

    raw: dict[str, Any] = {}
    source = "" if path is None else str(path)
    if path is not None:
        loaded = read_yaml(path, expected="a gridctl study file (YAML)", error=UserInputError)
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise UserInputError("expected a mapping of sections (tariff, carbon, weights, "
                                 "limits, mpc, solver) at the top level", source=source)
        raw = loaded
    from_file = _dotted(raw)
    flags = dict(flags or {})
    merged = {k: v for k, v in raw.items() if not isinstance(v, dict)}
    for k, v in raw.items():
        if isinstance(v, dict):
            merged[k] = dict(v)
    for key, (value, flag) in flags.items():
        section, _, name = key.partition(".")
        if not isinstance(merged.get(section, {}), dict):
            raise UserInputError(f"{section!r} is not a section", source=flag, field=key)
        merged.setdefault(section, {})[name] = value
    try:
        spec = StudyFile.model_validate(merged)
    except ValidationError as exc:
        raise _error(exc, source, flags) from None
    origins = {k: f"file {source}" for k in from_file}
    origins.update({k: f"flag {flag}" for k, (_, flag) in flags.items()})
    return _study(spec, origins, source, flags)


def _study(spec: StudyFile, origins: dict[str, str], source: str,
           flags: Mapping[str, tuple[Any, str]]) -> Study:
    from controllers.config import (
        DEFAULT_HORIZON_STEPS,
        DEFAULT_STEP_MINUTES,
        DispatchConfig,
        ObjectiveWeights,
    )
    from forecasts.carbon import DEFAULT_CARBON_KG_PER_KWH
    from forecasts.tariffs import Tariff, TouBand

    def given(section: BaseModel) -> dict[str, Any]:
        return {k: getattr(section, k) for k in section.model_fields_set
                if getattr(section, k) is not None}

    weights = dict(given(spec.weights))
    derived: dict[str, str] = {}
    if spec.carbon.price_cny_per_t is not None:
        weights["carbon_cny_per_t"] = spec.carbon.price_cny_per_t
    charge = spec.tariff.demand_charge_cny_per_kw_month
    if charge is not None and "peak_cny_per_mw" not in weights:
        weights["peak_cny_per_mw"] = charge * 1000.0 / DAYS_PER_MONTH
        derived["weights.peak_cny_per_mw"] = ("derived from tariff."
                                              "demand_charge_cny_per_kw_month / 30 days")
    tariff_kw = {k: v for k, v in given(spec.tariff).items() if k != "tou"}
    if spec.tariff.tou is not None:
        tariff_kw["tou_bands"] = tuple(
            TouBand(start=dt.time.fromisoformat(b.start), price_cny_per_kwh=b.price_cny_per_kwh)
            for b in spec.tariff.tou)
    dispatch_kw = dict(given(spec.limits))
    if spec.solver.name is not None:
        dispatch_kw["solver"] = spec.solver.name
    if spec.solver.time_limit_s is not None:
        dispatch_kw["solver_time_limit_s"] = spec.solver.time_limit_s
    try:
        dispatch = DispatchConfig(weights=ObjectiveWeights(**weights), **dispatch_kw)
        tariff = Tariff(**tariff_kw)
    except ValueError as exc:  # limits that contradict each other (v_min above v_max, ...)
        where = next((flag for k, (_, flag) in flags.items() if k.startswith("limits.")), None)
        raise UserInputError(f"{exc}", source=where or source or None, field="limits") \
            from None
    horizon = spec.mpc.horizon_steps or DEFAULT_HORIZON_STEPS
    step = spec.mpc.step_minutes or DEFAULT_STEP_MINUTES

    effective: list[tuple[str, Any]] = [
        ("tariff.flat_price_cny_per_kwh", tariff.flat_price_cny_per_kwh),
        ("tariff.tou", None if tariff.tou_bands is None else ", ".join(
            f"{b.start:%H:%M} {b.price_cny_per_kwh:g}" for b in tariff.tou_bands)),
        ("tariff.export_price_cny_per_kwh", tariff.export_price_cny_per_kwh),
        ("tariff.demand_charge_cny_per_kw_month", tariff.demand_charge_cny_per_kw_month),
        ("carbon.price_cny_per_t", dispatch.weights.carbon_cny_per_t),
        ("carbon.intensity_kg_per_kwh", spec.carbon.intensity_kg_per_kwh
         if spec.carbon.intensity_kg_per_kwh is not None else DEFAULT_CARBON_KG_PER_KWH),
        *((f"weights.{name}", getattr(dispatch.weights, name))
          for name in WeightsSpec.model_fields),
        *((f"limits.{name}", getattr(dispatch, name)) for name in LimitsSpec.model_fields),
        ("mpc.horizon_steps", horizon),
        ("mpc.step_minutes", step),
        ("solver.name", dispatch.solver),
        ("solver.time_limit_s", dispatch.solver_time_limit_s),
    ]
    settings = tuple((k, v, origins.get(k) or derived.get(k) or "default")
                     for k, v in effective)
    tariff_keys = [k for k in origins if k.startswith("tariff.")]
    return Study(
        dispatch=dispatch,
        tariff=tariff,
        tariff_given=bool(tariff_keys),
        carbon_kg_per_kwh=spec.carbon.intensity_kg_per_kwh,
        horizon_steps=horizon,
        step_minutes=step,
        settings=settings,
    )


def _dotted(raw: Mapping[str, Any]) -> list[str]:
    return [f"{section}.{key}" for section, body in raw.items() if isinstance(body, dict)
            for key in body]


def _error(exc: ValidationError, source: str,
           flags: Mapping[str, tuple[Any, str]]) -> UserInputError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc[:2])
    flag = next((f for k, (_, f) in flags.items() if k == key or
                 (len(loc) == 1 and k.partition(".")[0] == loc[0])), None)
    where = flag or source or None
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        known = _known_keys(loc[0]) if len(loc) >= 2 else list(StudyFile.model_fields)
        msg = f"unknown key (check the spelling): expected one of {', '.join(known)}"
    elif err["type"] == "missing":
        msg = "missing: this key is required"
    elif "input" in err and err["type"] != "value_error":
        msg = f"{msg} (got {err['input']!r})"
    return UserInputError(msg, source=where, field=".".join(loc))


def _known_keys(section: str) -> list[str]:
    field = StudyFile.model_fields.get(section)
    if field is None or not isinstance(field.default, BaseModel):
        return list(StudyFile.model_fields)
    return list(type(field.default).model_fields)

