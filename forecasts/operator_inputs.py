"""The operator's own data in place of gridctl's models: a forecast bundle and measured files.

:class:`OperatorInputs` names what the operator gave (a bundle written by ``gridctl forecast``,
and CSV files of load, PV, weather, EV sessions, prices and carbon intensity); ``bundle()`` makes
the horizon's :class:`~forecasts.bundle.ForecastBundle` from them. Each file replaces only its
part: a bundle with a measured load file is the bundle's PV, sessions and prices with the file's
load. What is not given comes from gridctl's models as before. The bundle's provenance says
where each part came from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from forecasts.bundle import ForecastBundle, build
from forecasts.bundle_io import HEADER_FILE, read_bundle
from forecasts.carbon import DEFAULT_CARBON_KG_PER_KWH, read_carbon_csv
from forecasts.errors import ForecastCoverageError, ForecastInputError
from forecasts.ev_csv import read_ev_sessions_csv
from forecasts.load import read_load_csv
from forecasts.pv import read_pv_power_csv
from forecasts.tariffs import EXPORT_PRICE_COLUMN, PRICE_COLUMN, Tariff, read_prices_csv
from forecasts.timegrid import local_days, make_index
from forecasts.weather import parse_scenario, read_weather_csv
from network_models.model import GridModel

__all__ = ["OperatorInputs"]


@dataclass(frozen=True, kw_only=True)
class OperatorInputs:
    """What the operator gave; None: gridctl's own model of that part.

    ``weather`` is a scenario name (clear, partly_cloudy, overcast, mixed) or a CSV of measured
    irradiance; the other fields are paths. ``forecast_dir`` is a bundle folder written by
    ``gridctl forecast --out``.
    """

    forecast_dir: Path | None = None
    load_csv: Path | None = None
    pv_csv: Path | None = None
    weather: str | None = None
    sessions_csv: Path | None = None
    prices_csv: Path | None = None
    carbon_csv: Path | None = None

    def given(self) -> dict[str, str]:
        """What was given, by the name of its command-line option (for records and reports)."""
        names = {"forecast_dir": "forecast", "load_csv": "load", "pv_csv": "pv",
                 "weather": "weather", "sessions_csv": "sessions", "prices_csv": "prices",
                 "carbon_csv": "carbon"}
        return {option: str(getattr(self, field)) for field, option in names.items()
                if getattr(self, field) is not None}

    def check(self, model: GridModel) -> None:
        """Read every file once, so that bad input is refused before any work (or any write),
        whatever day is planned later."""
        tz = model.site.timezone
        if self.forecast_dir is not None:
            _bundle_header(self.forecast_dir)
            read_bundle(self.forecast_dir, model)
        if self.load_csv is not None:
            read_load_csv(self.load_csv, model.registry.loads, tz=tz)
        if self.pv_csv is not None:
            read_pv_power_csv(self.pv_csv, model.registry.pv, tz=tz)
        if self.weather is not None:
            if _is_path(self.weather):
                read_weather_csv(self.weather, tz=tz)
            else:
                parse_scenario(self.weather)
        if self.sessions_csv is not None:
            read_ev_sessions_csv(self.sessions_csv, model.registry.ev_sites, tz=tz)
        if self.prices_csv is not None:
            read_prices_csv(self.prices_csv, tz=tz)
        if self.carbon_csv is not None:
            read_carbon_csv(self.carbon_csv, tz=tz)

    def bundle(
        self,
        model: GridModel,
        start: object,
        horizon: object = "24h",
        step: object = "15min",
        *,
        seed: int = 0,
        tariff: Tariff | None = None,
        carbon_kg_per_kwh: float | None = None,
    ) -> ForecastBundle:
        """The horizon from ``start`` as the operator's data and gridctl's models make it.

        ``tariff`` and ``carbon_kg_per_kwh`` (a study's) replace the prices and the intensity of
        a given bundle; without a bundle they default to gridctl's. A prices or carbon file
        replaces both. Files must cover the horizon; the error says which and what it covers.
        """
        tz = model.site.timezone
        index = make_index(start, horizon, step, tz=tz)
        step_td = pd.Timedelta(index[1] - index[0]) if len(index) > 1 else pd.Timedelta(step)
        end = index[-1] + step_td
        own = dict(
            seed=seed,
            load_csv=self.load_csv,
            pv_csv=self.pv_csv,
            ev_sessions=self.sessions_csv,
            tariff=tariff or Tariff(),
            carbon_kg_per_kwh=DEFAULT_CARBON_KG_PER_KWH if carbon_kg_per_kwh is None
            else carbon_kg_per_kwh,
        )
        if self.weather is not None:
            own["weather"] = self.weather
        if self.forecast_dir is None:
            out = build(model, index[0], horizon, step, **own)
        else:
            out = self._from_bundle(model, index, end, own, tariff, carbon_kg_per_kwh)
        return self._with_series(out, tz)

    def days(
        self,
        model: GridModel,
        first_day: dt.date,
        n_days: int,
        step: object = "15min",
        *,
        seed: int = 0,
        tariff: Tariff | None = None,
        carbon_kg_per_kwh: float | None = None,
    ) -> tuple[ForecastBundle, tuple[dt.date, ...]]:
        """``n_days`` local days from ``first_day`` for a process that runs on (the simulator,
        the runtime): a day the operator's files do not cover comes from gridctl's own models
        instead (same seed), and is returned among the days modelled, for the caller to say so.
        A file that is wrong (not merely another day's) is still refused."""
        parts, modelled = [], []
        for k in range(n_days):
            day = first_day + dt.timedelta(days=k)
            start, horizon = local_days(day, 1, model.site.timezone)
            try:
                part = self.bundle(model, start, horizon, step, seed=seed, tariff=tariff,
                                   carbon_kg_per_kwh=carbon_kg_per_kwh)
            except ForecastCoverageError:
                part = OperatorInputs().bundle(model, start, horizon, step, seed=seed,
                                               tariff=tariff or Tariff(),
                                               carbon_kg_per_kwh=carbon_kg_per_kwh)
                modelled.append(day)
            parts.append(part)
        return _joined(parts), tuple(modelled)

    def _from_bundle(self, model: GridModel, index: pd.DatetimeIndex, end: pd.Timestamp,
                     own: dict, tariff: Tariff | None, carbon: float | None) -> ForecastBundle:
        assert self.forecast_dir is not None
        _bundle_header(self.forecast_dir)
        given = read_bundle(self.forecast_dir, model)
        source = str(Path(self.forecast_dir) / HEADER_FILE)
        step = end - index[-1]
        if given.step != step:
            raise ForecastInputError(
                f"steps of {given.step_h * 60:g} min: expected steps of "
                f"{step / pd.Timedelta(minutes=1):g} min", source=source, field="step_h")
        if given.start > index[0] or given.end < end:
            raise ForecastCoverageError(
                f"covers {given.start.isoformat()} to {given.end.isoformat()}: expected the "
                f"horizon {index[0].isoformat()} to {end.isoformat()}", source=source,
                field="start")
        out = given.window(index[0], end)
        notes = dict(out.provenance)
        parts = [self.load_csv, self.pv_csv, self.weather, self.sessions_csv]
        if any(p is not None for p in parts) or tariff is not None or carbon is not None:
            mine = build(model, index[0], end - index[0], step, **own)
            if self.load_csv is not None:
                out = replace(out, load_p_mw=mine.load_p_mw, load_q_mvar=mine.load_q_mvar)
                notes["load"] = mine.provenance["load"]
            if self.pv_csv is not None or self.weather is not None:
                out = replace(out, pv_p_mw=mine.pv_p_mw)
                notes["pv"] = mine.provenance["pv"]
            if self.weather is not None:
                out = replace(out, temperature_c=mine.temperature_c)
                notes["weather"] = mine.provenance["weather"]
            if self.sessions_csv is not None:
                out = replace(out, ev_sessions=mine.ev_sessions)
                notes["ev"] = mine.provenance["ev"]
            if tariff is not None:
                out = replace(
                    out, price_cny_per_kwh=mine.price_cny_per_kwh,
                    export_price_cny_per_kwh=mine.export_price_cny_per_kwh,
                    demand_charge_cny_per_kw_month=mine.demand_charge_cny_per_kw_month)
                notes["tariff"] = mine.provenance["tariff"]
            if carbon is not None:
                out = replace(out, carbon_kg_per_kwh=mine.carbon_kg_per_kwh)
                notes["carbon"] = f"{carbon:g} kg/kWh"
        notes["forecast"] = f"bundle {self.forecast_dir}"
        return replace(out, provenance=MappingProxyType(notes))

    def _with_series(self, bundle: ForecastBundle, tz: str) -> ForecastBundle:
        """The bundle with the prices and carbon intensity of the operator's files."""
        notes = dict(bundle.provenance)
        if self.prices_csv is not None:
            source = str(self.prices_csv)
            prices = read_prices_csv(self.prices_csv, tz=tz)
            held = _held(prices, bundle, source)
            export = held.get(EXPORT_PRICE_COLUMN)
            bundle = replace(
                bundle, price_cny_per_kwh=pd.Series(held[PRICE_COLUMN], index=bundle.index,
                                                    name=PRICE_COLUMN),
                export_price_cny_per_kwh=None if export is None else pd.Series(
                    export, index=bundle.index, name=EXPORT_PRICE_COLUMN))
            notes["tariff"] = f"prices from {source}" + (
                f"; demand charge {bundle.demand_charge_cny_per_kw_month:g} CNY/kW-month"
                if bundle.demand_charge_cny_per_kw_month is not None else "")
        if self.carbon_csv is not None:
            source = str(self.carbon_csv)
            carbon = read_carbon_csv(self.carbon_csv, tz=tz).to_frame()
            held = _held(carbon, bundle, source)
            bundle = replace(bundle, carbon_kg_per_kwh=pd.Series(
                held[carbon.columns[0]], index=bundle.index, name=carbon.columns[0]))
            notes["carbon"] = f"from {source}"
        return replace(bundle, provenance=MappingProxyType(notes))


def _held(frame: pd.DataFrame, bundle: ForecastBundle, source: str) -> dict[str, np.ndarray]:
    """Each column at the bundle's steps, each value held from its time until the next row's.
    The file must start by the horizon's start and reach its end (its last value held for no
    longer than the file's own spacing)."""
    times = frame.index.asi8
    spacing = int(np.median(np.diff(times))) if len(times) > 1 else 0
    start, end = bundle.start, bundle.end
    if times[0] > start.value or times[-1] + spacing < end.value:
        raise ForecastCoverageError(
            f"does not cover the horizon: expected values from {start.isoformat()} to "
            f"{end.isoformat()}, file has {frame.index[0].isoformat()} to "
            f"{frame.index[-1].isoformat()}", source=source, field="time")
    pos = np.searchsorted(times, bundle.index.asi8, side="right") - 1
    return {c: frame[c].to_numpy(dtype=float)[pos] for c in frame.columns}


def _joined(parts: list[ForecastBundle]) -> ForecastBundle:
    """Consecutive bundles as one (sessions that span two days counted once; the provenance
    of the first, with that of later days where it differs)."""
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    index = pd.DatetimeIndex(np.concatenate([p.index.asi8 for p in parts]), tz=first.index.tz,
                             freq=first.index.freq, name=first.index.name)

    def joined(name: str):
        values = [getattr(p, name) for p in parts]
        if any(v is None for v in values):
            return None
        return pd.concat(values).set_axis(index)

    sessions: dict[str, object] = {}
    for p in parts:
        for s in p.ev_sessions:
            sessions.setdefault(s.id, s)
    notes = dict(first.provenance)
    for p in parts[1:]:
        day = f"{p.start:%Y-%m-%d}"
        notes.update({f"{k} {day}": v for k, v in p.provenance.items() if notes.get(k) != v})
    return replace(
        first, index=index, pv_p_mw=joined("pv_p_mw"), load_p_mw=joined("load_p_mw"),
        load_q_mvar=joined("load_q_mvar"), price_cny_per_kwh=joined("price_cny_per_kwh"),
        export_price_cny_per_kwh=joined("export_price_cny_per_kwh"),
        carbon_kg_per_kwh=joined("carbon_kg_per_kwh"), temperature_c=joined("temperature_c"),
        ev_sessions=tuple(sorted(sessions.values(), key=lambda s: (s.arrival.value, s.id))),
        provenance=MappingProxyType(notes))


def _bundle_header(folder: Path) -> None:
    path = Path(folder)
    if not path.is_dir():
        raise ForecastInputError("no such folder: expected a forecast bundle written by "
                                 "gridctl forecast --out", source=str(path))


def _is_path(weather: str) -> bool:
    return weather.lower().endswith(".csv") or "/" in weather
