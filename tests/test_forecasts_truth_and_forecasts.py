"""Truth and forecast: step one within the configured error, error growing with lead time."""

from __future__ import annotations

import collections
import itertools

import numpy as np
import pandas as pd
import pytest
from test_forecasts_bundle import small_model

from forecasts import ErrorEnvelope, ForecastErrorModel, ForecastInputError, TruthAndForecasts

TZ = "Asia/Shanghai"
MODEL = small_model()
ERRORS = ForecastErrorModel(
    pv_rel=ErrorEnvelope(step_one=0.02, growth_per_sqrt_h=0.10, max=0.5),
    load_rel=ErrorEnvelope(step_one=0.01, growth_per_sqrt_h=0.02, max=0.2),
    temperature_c=ErrorEnvelope(step_one=0.3, growth_per_sqrt_h=0.5, max=4.0),
)


@pytest.fixture(scope="module")
def scenario() -> TruthAndForecasts:
    return TruthAndForecasts.build(MODEL, "2026-07-15", "48h", seed=2, weather="clear",
                                   errors=ERRORS)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


@pytest.mark.parametrize("issued", ["2026-07-15 00:00", "2026-07-15 09:07", "2026-07-15 12:30"])
def test_forecast_of_step_one_equals_the_truth_within_the_configured_error(
    scenario: TruthAndForecasts, issued: str
) -> None:
    f = scenario.forecast_at(ts(issued))
    truth = scenario.truth.window(f.start, f.end)
    assert f.start == ts(issued).floor("15min")
    pv_t, pv_f = truth.pv_p_mw.iloc[0], f.pv_p_mw.iloc[0]
    assert (abs(pv_f - pv_t) <= 0.02 * pv_t + 1e-12).all()
    load_t, load_f = truth.load_p_mw.iloc[0], f.load_p_mw.iloc[0]
    assert (abs(load_f - load_t) <= 0.01 * load_t + 1e-12).all()
    assert abs(f.temperature_c.iloc[0] - truth.temperature_c.iloc[0]) <= 0.3 + 1e-12


def test_forecast_error_grows_with_lead_time(scenario: TruthAndForecasts) -> None:
    # Relative PV error in daylight, averaged over systems and issue times, by lead hour.
    errors_by_lead: dict[int, list[float]] = collections.defaultdict(list)
    for hour in range(0, 12):
        f = scenario.forecast_at(ts("2026-07-15") + pd.Timedelta(hours=hour))
        truth = scenario.truth.window(f.start, f.end)
        daylight = truth.pv_p_mw > 0.05
        rel = ((f.pv_p_mw - truth.pv_p_mw).abs() / truth.pv_p_mw).where(daylight)
        lead_h = (f.index - f.start) / pd.Timedelta(hours=1)
        for lead, row in zip(lead_h, rel.to_numpy(), strict=True):
            errors_by_lead[int(lead)].extend(row[~np.isnan(row)])
    first = np.mean(errors_by_lead[0])
    later = np.mean([e for lead in range(12, 24) for e in errors_by_lead[lead]])
    assert later > 2.0 * first
    envelope = ERRORS.pv_rel.at(np.arange(48.0))
    for lead, errors in errors_by_lead.items():
        if errors:  # within the envelope at the end of its lead hour
            assert max(errors) <= envelope[lead + 1] + 1e-9


def test_load_and_temperature_errors_grow_with_lead_time(scenario: TruthAndForecasts) -> None:
    f = scenario.forecast_at(ts("2026-07-15 00:00"))
    truth = scenario.truth.window(f.start, f.end)
    load_err = ((f.load_p_mw - truth.load_p_mw).abs() / truth.load_p_mw).mean(axis=1)
    assert load_err.iloc[-48:].mean() > 2.0 * load_err.iloc[:4].mean()
    temp_err = (f.temperature_c - truth.temperature_c).abs()
    assert temp_err.iloc[-48:].max() > temp_err.iloc[:4].max()


def test_prices_and_carbon_are_known_ahead(scenario: TruthAndForecasts) -> None:
    f = scenario.forecast_at(ts("2026-07-15 10:00"))
    truth = scenario.truth.window(f.start, f.end)
    pd.testing.assert_series_equal(f.price_cny_per_kwh, truth.price_cny_per_kwh)
    pd.testing.assert_series_equal(f.carbon_kg_per_kwh, truth.carbon_kg_per_kwh)


def test_perfect_error_model_forecasts_the_truth() -> None:
    s = TruthAndForecasts.build(MODEL, "2026-07-15", "24h", seed=2,
                                errors=ForecastErrorModel.perfect())
    f = s.forecast_at(ts("2026-07-15 08:00"))
    truth = s.truth.window(f.start, f.end)
    pd.testing.assert_frame_equal(f.pv_p_mw, truth.pv_p_mw)
    pd.testing.assert_frame_equal(f.load_p_mw, truth.load_p_mw)
    assert f.ev_sessions == truth.ev_sessions


def test_forecast_is_issued_and_deterministic(scenario: TruthAndForecasts) -> None:
    a = scenario.forecast_at(ts("2026-07-15 08:00"))
    b = scenario.forecast_at(ts("2026-07-15 08:00"))
    assert a.issued_at == ts("2026-07-15 08:00")
    assert a.end == scenario.truth.end
    pd.testing.assert_frame_equal(a.pv_p_mw, b.pv_p_mw)
    assert a.ev_sessions == b.ev_sessions
    assert len(scenario.forecast_at(ts("2026-07-15 08:00"), horizon="6h").index) == 24


def test_arrived_sessions_are_known_exactly_and_future_ones_are_forecast(
    scenario: TruthAndForecasts,
) -> None:
    issued = ts("2026-07-15 12:00")
    f = scenario.forecast_at(issued)
    truth = {s.id: s for s in scenario.truth.ev_sessions}
    arrived = [s for s in f.ev_sessions if s.arrival <= issued]
    future = [s for s in f.ev_sessions if s.arrival > issued]
    assert arrived and future
    assert all(s == truth[s.id] for s in arrived)
    assert any(s != truth[s.id] for s in future)
    assert all(s.is_feasible() for s in f.ev_sessions)
    by_connector = collections.defaultdict(list)
    for s in f.ev_sessions:
        by_connector[(s.site, s.connector)].append(s)
    for group in by_connector.values():
        group.sort(key=lambda s: s.arrival)
        assert all(a.departure <= b.arrival for a, b in itertools.pairwise(group))


def test_an_issue_time_outside_the_scenario_is_refused(scenario: TruthAndForecasts) -> None:
    with pytest.raises(ForecastInputError, match="outside the scenario"):
        scenario.forecast_at(ts("2026-07-20 08:00"))
