"""One forecast bundle for any model: PV, load, prices, carbon, temperature and EV sessions.

Every series is indexed by step starts (in the model's time zone, ``model.site.timezone``, default
Asia/Shanghai; fixed step, default 15 min) and holds the
mean over the step. Powers in MW: PV available power (generation positive, before curtailment),
load consumption positive. Prices in CNY/kWh, carbon in kgCO2/kWh, temperature in °C.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

import numpy as np
import pandas as pd

from forecasts.carbon import DEFAULT_CARBON_KG_PER_KWH, carbon_intensity
from forecasts.errors import ForecastInputError
from forecasts.ev import EvSession, sessions_overlapping, uncontrolled_charging_kw
from forecasts.ev_csv import read_ev_sessions_csv, sessions_of_window
from forecasts.ev_generator import generate_sessions
from forecasts.load import (
    measured_load_at,
    reactive_mvar,
    read_load_csv,
    synthetic_load_mw,
)
from forecasts.pv import PvLosses, measured_pv_at, pv_available_mw, read_pv_power_csv, sky_at_site
from forecasts.simbench_profiles import grid_profiles_at, simbench_load_mw
from forecasts.tariffs import Tariff
from forecasts.timegrid import make_index, step_of, whole_days
from forecasts.weather import (
    MeasuredWeather,
    WeatherScenario,
    WeatherSeries,
    measured_weather_at,
    parse_scenario,
    read_weather_csv,
    simulate_weather,
)
from network_models.model import GridModel, GridProfiles
from network_models.registry import Device, Load, PvSystem

DEFAULT_TARIFF = Tariff()
DEFAULT_PV_LOSSES = PvLosses()


class LoadSource(StrEnum):
    SYNTHETIC = "synthetic"
    SIMBENCH = "simbench"


@dataclass(frozen=True)
class ForecastBundle:
    """What the next hours look like, per device and per step (see the module docstring)."""

    index: pd.DatetimeIndex
    step_h: float
    pv_p_mw: pd.DataFrame
    load_p_mw: pd.DataFrame
    load_q_mvar: pd.DataFrame
    price_cny_per_kwh: pd.Series
    export_price_cny_per_kwh: pd.Series | None
    demand_charge_cny_per_kw_month: float | None
    carbon_kg_per_kwh: pd.Series
    temperature_c: pd.Series
    ev_sessions: tuple[EvSession, ...]
    issued_at: pd.Timestamp | None  # None for "truth"
    provenance: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.index.tz is None:
            raise ValueError("ForecastBundle.index must be timezone-aware")
        for name in ("pv_p_mw", "load_p_mw", "load_q_mvar", "price_cny_per_kwh",
                     "carbon_kg_per_kwh", "temperature_c", "export_price_cny_per_kwh"):
            value = getattr(self, name)
            if value is not None and not value.index.equals(self.index):
                raise ValueError(f"ForecastBundle.{name} is not indexed by the bundle's index")

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(hours=self.step_h)

    @property
    def start(self) -> pd.Timestamp:
        return self.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """End of the last step (exclusive)."""
        return self.index[-1] + self.step

    def ev_sites(self) -> tuple[str, ...]:
        """Ids of the EV charging sites that have sessions in the bundle, sorted."""
        return tuple(sorted({s.site for s in self.ev_sessions}))

    def uncontrolled_ev_kw(self, sites: Sequence[str] | None = None) -> pd.DataFrame:
        """EV demand per site if every vehicle charged at full power on arrival, kW."""
        return uncontrolled_charging_kw(
            self.ev_sessions, self.index, self.ev_sites() if sites is None else sites
        )

    def without(
        self, *, loads: Iterable[str] = (), sites: Iterable[str] = ()
    ) -> ForecastBundle:
        """The bundle with ``loads`` disconnected (0 MW and 0 Mvar in every step, e.g. shed)
        and no sessions at the EV charging ``sites`` (e.g. a site held at 0 kW)."""
        loads = [c for c in loads if c in self.load_p_mw.columns]
        gone = set(sites)
        if not loads and not gone:
            return self
        p, q = self.load_p_mw.copy(), self.load_q_mvar.copy()
        p[loads] = 0.0
        q[[c for c in loads if c in q.columns]] = 0.0
        sessions = tuple(s for s in self.ev_sessions if s.site not in gone)
        return replace(self, load_p_mw=p, load_q_mvar=q, ev_sessions=sessions)

    def window(self, start: pd.Timestamp, end: pd.Timestamp) -> ForecastBundle:
        """The steps starting in [start, end) and the sessions overlapping them."""
        keep = (self.index >= start) & (self.index < end)
        if not keep.any():
            raise ValueError(f"no step of the bundle starts in [{start}, {end})")
        idx = self.index[keep]
        idx = pd.DatetimeIndex(idx, freq=self.index.freq, name=self.index.name)

        def cut(x: pd.DataFrame | pd.Series | None) -> pd.DataFrame | pd.Series | None:
            return None if x is None else x.loc[keep].set_axis(idx)

        return replace(
            self,
            index=idx,
            pv_p_mw=cut(self.pv_p_mw),
            load_p_mw=cut(self.load_p_mw),
            load_q_mvar=cut(self.load_q_mvar),
            price_cny_per_kwh=cut(self.price_cny_per_kwh),
            export_price_cny_per_kwh=cut(self.export_price_cny_per_kwh),
            carbon_kg_per_kwh=cut(self.carbon_kg_per_kwh),
            temperature_c=cut(self.temperature_c),
            ev_sessions=sessions_overlapping(self.ev_sessions, idx[0], idx[-1] + self.step),
        )


def build(
    model: GridModel,
    start: object,
    horizon: object = "24h",
    step: object = "15min",
    *,
    seed: int = 0,
    weather: str | WeatherScenario | Path | MeasuredWeather | None = None,
    load_source: str | LoadSource | None = None,
    load_csv: str | Path | None = None,
    pv_csv: str | Path | None = None,
    ev_sessions: str | Path | Sequence[EvSession] | None = None,
    tariff: Tariff = DEFAULT_TARIFF,
    carbon_kg_per_kwh: float | pd.Series = DEFAULT_CARBON_KG_PER_KWH,
    pv_losses: PvLosses = DEFAULT_PV_LOSSES,
) -> ForecastBundle:
    """The realised ("truth") bundle of ``model`` from ``start`` over ``horizon``.

    ``start`` is a date or time (naive = local time of the model's site) on a step boundary;
    ``horizon`` and ``step`` are durations such as ``"24h"`` and ``"15min"`` (the step must
    divide a day).
    ``weather`` is a scenario name (clear, partly_cloudy, overcast, mixed) or a CSV of measured
    irradiance; ``pv_csv``, ``load_csv`` and ``ev_sessions`` replace the models with measured
    data. A grid with its own profiles (``model.profiles``, SimBench's) takes its loads from them
    unless ``load_csv`` or ``load_source`` is given, and its PV from them unless ``pv_csv`` or
    ``weather`` is given; otherwise loads are synthetic and the weather is the clear scenario.
    The same arguments and ``seed`` give the same bundle, and a day's values do not depend
    on the horizon it is built in.
    """
    _check_seed(seed)
    index = make_index(start, horizon, step, tz=model.site.timezone)
    td_step = step_of(index)
    end = index[-1] + td_step
    registry = model.registry
    loads, pvs, sites = registry.loads, registry.pv, registry.ev_sites

    # Read every file first, so bad input fails before any work.
    tz = model.site.timezone
    measured_weather = _measured_weather(weather, tz)
    scenario = (None if measured_weather is not None
                else parse_scenario(WeatherScenario.CLEAR if weather is None else weather))  # type: ignore[arg-type]
    pv_frame = read_pv_power_csv(pv_csv, pvs, tz=tz) if pv_csv is not None else None
    load_frame = read_load_csv(load_csv, loads, tz=tz) if load_csv is not None else None
    source_kind = None if load_source is None else _parse_load_source(load_source)
    sessions = _sessions(ev_sessions, sites, index[0], end, seed, model.site.timezone)

    weather_now, weather_note = _weather_over(index, td_step, measured_weather, scenario, seed)
    temperature = weather_now.temperature_c

    pv, pv_note = _pv_over(model, index, td_step, weather_now, weather_note, pv_losses,
                           pv_frame=pv_frame, pv_csv=pv_csv, use_grid=weather is None)

    load_p, load_q, load_note = _loads_over(
        model, index, td_step, temperature, seed, load_frame=load_frame, load_csv=load_csv,
        source_kind=source_kind)

    return ForecastBundle(
        index=index,
        step_h=td_step / pd.Timedelta(hours=1),
        pv_p_mw=pv,
        load_p_mw=load_p,
        load_q_mvar=reactive_mvar(loads, load_p) if load_q is None else load_q,
        price_cny_per_kwh=tariff.import_price(index),
        export_price_cny_per_kwh=tariff.export_price(index),
        demand_charge_cny_per_kw_month=tariff.demand_charge_cny_per_kw_month,
        carbon_kg_per_kwh=carbon_intensity(index, carbon_kg_per_kwh),
        temperature_c=pd.Series(temperature, index=index, name="temperature_c"),
        ev_sessions=sessions,
        issued_at=None,
        provenance=MappingProxyType({
            "model": model.name,
            "weather": weather_note,
            "pv": pv_note,
            "load": load_note,
            "ev": _ev_note(ev_sessions, seed),
            "tariff": tariff.describe(),
            "seed": str(seed),
        }),
    )


def _weather_over(
    index: pd.DatetimeIndex,
    td_step: pd.Timedelta,
    measured: MeasuredWeather | None,
    scenario: WeatherScenario | None,
    seed: int,
) -> tuple[WeatherSeries, str]:
    """The weather at the middle of each step (measured, or simulated for ``scenario``) and
    the provenance note that says which."""
    mid = index + td_step / 2
    if measured is not None:
        now = measured_weather_at(measured, index, seed)
        return (WeatherSeries(times=mid, temperature_c=now.temperature_c,
                              ghi_w_per_m2=now.ghi_w_per_m2), f"measured {measured.source}")
    assert scenario is not None
    return _simulated_weather(index, td_step, scenario, seed), f"{scenario.value} (seed {seed})"


def _pv_over(
    model: GridModel,
    index: pd.DatetimeIndex,
    td_step: pd.Timedelta,
    weather_now: WeatherSeries,
    weather_note: str,
    pv_losses: PvLosses,
    *,
    pv_frame: pd.DataFrame | None,
    pv_csv: str | Path | None,
    use_grid: bool,
) -> tuple[pd.DataFrame, str]:
    """Available PV per step (measured, the grid's own profiles where no weather is given, or
    pvlib under the weather) and the provenance note."""
    def pvlib_mw(systems: Sequence[PvSystem]) -> pd.DataFrame:
        sky = sky_at_site(model.site, index + td_step / 2)
        ghi = (weather_now.ghi_w_per_m2 if weather_now.ghi_w_per_m2 is not None
               else weather_now.clear_sky_index * sky.ghi_clear_w_per_m2)
        return pv_available_mw(systems, sky, ghi, weather_now.temperature_c,
                               pv_losses).set_axis(index)

    grid, pvs = model.profiles, model.registry.pv
    if pv_frame is not None:
        return measured_pv_at(pv_frame, index, source=str(pv_csv)), f"measured {pv_csv}"
    if use_grid and grid is not None and not grid.pv_p_mw.empty:
        pv, rest = _grid_and_rest(grid.pv_p_mw, grid, index, pvs, pvlib_mw)
        return pv, grid.source + (f"; pvlib, weather {weather_note}, for {', '.join(rest)}"
                                  if rest else "")
    return pvlib_mw(pvs), f"pvlib, weather {weather_note}"


def _loads_over(
    model: GridModel,
    index: pd.DatetimeIndex,
    td_step: pd.Timedelta,
    temperature: np.ndarray | pd.Series,
    seed: int,
    *,
    load_frame: pd.DataFrame | None,
    load_csv: str | Path | None,
    source_kind: LoadSource | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, str]:
    """Active load per step (measured, the grid's own profiles, SimBench's or synthetic class
    shapes), the grid profiles' reactive load where they give it (else None: derived from the
    power factors), and the provenance note."""
    loads, grid = model.registry.loads, model.profiles
    if load_frame is not None:
        return measured_load_at(load_frame, index, source=str(load_csv)), None, \
            f"measured {load_csv}"
    if source_kind is None and grid is not None and not grid.load_p_mw.empty:
        def synthetic(rest: Sequence[Load]) -> pd.DataFrame:
            return _synthetic_load(rest, index, td_step, temperature, seed)

        load_p, rest = _grid_and_rest(grid.load_p_mw, grid, index, loads, synthetic)
        load_q, _ = _grid_and_rest(grid.load_q_mvar, grid, index, loads,
                                   lambda rest: reactive_mvar(rest, load_p[[d.id for d in rest]]))
        note = grid.source + (f"; synthetic class shapes (seed {seed}) for "
                              f"{', '.join(rest)}" if rest else "")
        return load_p, load_q, note
    if source_kind == LoadSource.SIMBENCH:
        return simbench_load_mw(loads, index), None, "SimBench profiles"
    return (_synthetic_load(loads, index, td_step, temperature, seed), None,
            f"synthetic class shapes (seed {seed})")


def _grid_and_rest(
    year_frame: pd.DataFrame,
    grid: GridProfiles,
    index: pd.DatetimeIndex,
    devices: Sequence[Device],
    rest_of: Callable[[Sequence], pd.DataFrame],
) -> tuple[pd.DataFrame, list[str]]:
    """Per device in ``devices`` order: the grid's own series where it has one, else
    ``rest_of(the others)``; and the ids of the others."""
    ids = [d.id for d in devices]
    own = grid_profiles_at(year_frame, index, year=grid.year, step_minutes=grid.step_minutes,
                           columns=[i for i in ids if i in year_frame.columns])
    rest = [d for d in devices if d.id not in own.columns]
    if not rest:
        return own[ids], []
    return pd.concat([own, rest_of(rest)], axis=1)[ids], [d.id for d in rest]


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ForecastInputError(f"expected a whole number ≥ 0, got {seed!r}", field="seed")


def _measured_weather(weather: object, tz: str) -> MeasuredWeather | None:
    if isinstance(weather, MeasuredWeather):
        return weather
    if isinstance(weather, Path) or (
        isinstance(weather, str) and (weather.lower().endswith(".csv") or "/" in weather)
    ):
        return read_weather_csv(weather, tz=tz)
    return None


def _parse_load_source(value: str | LoadSource) -> LoadSource:
    try:
        return LoadSource(str(value).lower())
    except ValueError:
        raise ForecastInputError(
            f"unknown load source {value!r}: expected one of "
            f"{', '.join(s.value for s in LoadSource)}", field="load_source"
        ) from None


def _sessions(
    ev_sessions: str | Path | Sequence[EvSession] | None,
    sites: Sequence,
    start: pd.Timestamp,
    end: pd.Timestamp,
    seed: int,
    tz: str,
) -> tuple[EvSession, ...]:
    if ev_sessions is None:
        return generate_sessions(sites, start, end, seed)
    if isinstance(ev_sessions, str | Path):
        return sessions_of_window(read_ev_sessions_csv(ev_sessions, sites, tz=tz), start, end,
                                  source=str(ev_sessions))
    return sessions_overlapping(ev_sessions, start, end)


def _ev_note(ev_sessions: object, seed: int) -> str:
    if ev_sessions is None:
        return f"generated by site type (seed {seed})"
    if isinstance(ev_sessions, str | Path):
        return f"from {ev_sessions}"
    return "given sessions"


def _full_day_slice(index: pd.DatetimeIndex, step: pd.Timedelta) -> tuple[pd.DatetimeIndex, slice]:
    full = whole_days(index, step)
    first = int((index[0] - full[0]) / step)
    return full, slice(first, first + len(index))


def _simulated_weather(
    index: pd.DatetimeIndex, step: pd.Timedelta, scenario: WeatherScenario, seed: int
) -> WeatherSeries:
    # The weather model works day by day, so simulate whole days and keep the horizon's steps.
    full, part = _full_day_slice(index, step)
    series = simulate_weather(full + step / 2, step, scenario, seed)
    assert series.clear_sky_index is not None
    return WeatherSeries(
        times=index + step / 2,
        temperature_c=series.temperature_c[part],
        clear_sky_index=series.clear_sky_index[part],
    )


def _synthetic_load(
    loads: Sequence,
    index: pd.DatetimeIndex,
    step: pd.Timedelta,
    temperature_c: np.ndarray,
    seed: int,
) -> pd.DataFrame:
    # Load noise is drawn per whole day; temperature is known only on the horizon, so extend it
    # over the whole days with the horizon's first/last values (those steps are discarded).
    full, part = _full_day_slice(index, step)
    t_full = np.empty(len(full))
    t_full[: part.start] = temperature_c[0]
    t_full[part] = temperature_c
    t_full[part.stop:] = temperature_c[-1]
    frame = synthetic_load_mw(loads, full + step / 2, step, t_full, seed)
    return frame.iloc[part].set_axis(index)
