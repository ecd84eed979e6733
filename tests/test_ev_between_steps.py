"""A vehicle that plugs in or leaves between two control steps: its site's power is split again
at once, least laxity first, within the plan's site power (and the room the grid has beyond it)."""

from __future__ import annotations

import pandas as pd
import pytest

from controllers.ev_charging import SessionState, split_rest_of_step
from forecasts.ev import EvSession

STEP = pd.Timestamp("2026-07-15 10:00", tz="Asia/Shanghai")
STEP_END = STEP + pd.Timedelta(minutes=15)
NOW = STEP + pd.Timedelta(minutes=7)  # the vehicle plugged in at 10:07


@pytest.fixture(scope="module")
def hub(jiuke):
    site = jiuke.registry["EV_L7_3"]  # public DC: 12 connectors of 60 kW, 480 kW for the site
    assert (site.n_connectors, site.p_connector_kw, site.p_site_max_kw) == (12, 60.0, 480.0)
    return site


def _state(site, k: int, *, minutes: float, kwh: float, delivered: float = 0.0,
           arrival: pd.Timestamp = NOW, max_kw: float = 60.0) -> SessionState:
    session = EvSession(id=f"s{k}", site=site.id, connector=f"c{k}", arrival=arrival,
                        departure=arrival + pd.Timedelta(minutes=minutes), energy_kwh=kwh,
                        max_kw=max_kw)
    return SessionState(session=session, energy_delivered_kwh=delivered)


def test_a_vehicle_without_slack_charges_at_full_power_even_if_the_plan_left_nothing(hub):
    # 30 kWh in 30 minutes at 60 kW: every minute counts
    tight = _state(hub, 1, minutes=30, kwh=30.0)
    split = split_rest_of_step(hub, [tight], NOW, STEP_END, planned_site_kw=0.0)
    assert split["s1"] == pytest.approx(60.0)


def test_within_the_plans_site_power_the_vehicle_with_the_least_slack_comes_first(hub):
    early = STEP - pd.Timedelta(minutes=30)
    planned = [_state(hub, k, minutes=240, kwh=40.0, arrival=early) for k in (1, 2)]
    newcomer = _state(hub, 3, minutes=30, kwh=20.0)  # 20 min at full power in a 30 min stay
    split = split_rest_of_step(hub, [*planned, newcomer], NOW, STEP_END, planned_site_kw=100.0)
    assert split["s3"] == pytest.approx(60.0)
    # the two with hours of slack share what is left, equally
    assert split["s1"] == pytest.approx(20.0) and split["s2"] == pytest.approx(20.0)
    assert sum(split.values()) == pytest.approx(100.0)  # the network saw this much in the plan


def test_room_the_grid_has_beyond_the_plan_is_used(hub):
    early = STEP - pd.Timedelta(minutes=30)
    planned = [_state(hub, k, minutes=240, kwh=40.0, arrival=early) for k in (1, 2)]
    split = split_rest_of_step(hub, planned, NOW, STEP_END, planned_site_kw=50.0, room_kw=40.0)
    assert split["s1"] == pytest.approx(45.0) and split["s2"] == pytest.approx(45.0)


def test_a_session_that_must_have_more_than_the_plan_gets_it_within_the_site_rating(hub):
    early = STEP - pd.Timedelta(minutes=30)
    planned = [_state(hub, k, minutes=300, kwh=60.0, arrival=early) for k in range(1, 9)]
    tight = _state(hub, 9, minutes=20, kwh=20.0)  # 20 kWh in 20 minutes: 60 kW from now on
    split = split_rest_of_step(hub, [*planned, tight], NOW, STEP_END, planned_site_kw=440.0)
    assert split["s9"] == pytest.approx(60.0)
    assert sum(split.values()) == pytest.approx(440.0)
    # the planned sessions have hours of slack: they give way, equally
    assert all(split[f"s{k}"] == pytest.approx(380.0 / 8) for k in range(1, 9))
    # a plan that left less than the vehicle must have: it gets it, the others wait
    split = split_rest_of_step(hub, [*planned, tight], NOW, STEP_END, planned_site_kw=30.0)
    assert split["s9"] == pytest.approx(60.0)
    assert sum(split.values()) == pytest.approx(60.0)


def test_when_even_the_needs_exceed_the_rating_they_share_it_in_proportion(hub):
    tight = [_state(hub, k, minutes=10, kwh=10.0) for k in range(1, 10)]  # 9 × 60 kW needed
    split = split_rest_of_step(hub, tight, NOW, STEP_END, planned_site_kw=0.0)
    assert sum(split.values()) == pytest.approx(hub.p_site_max_kw)
    assert all(kw == pytest.approx(480.0 / 9) for kw in split.values())


def test_nothing_beyond_what_a_vehicle_still_owes_or_after_it_left(hub):
    nearly_done = _state(hub, 1, minutes=60, kwh=20.0, delivered=19.0)  # 1 kWh left
    gone = _state(hub, 2, minutes=5, kwh=20.0, arrival=NOW - pd.Timedelta(minutes=10))
    split = split_rest_of_step(hub, [nearly_done, gone], NOW, STEP_END,
                               planned_site_kw=480.0)
    assert split["s1"] == pytest.approx(1.0 / (8 / 60))  # 1 kWh over the 8 minutes left
    assert "s2" not in split


def test_a_vehicle_of_lower_power_than_the_connector_is_held_to_its_own_limit(hub):
    slow = _state(hub, 1, minutes=20, kwh=20.0, max_kw=40.0)  # cannot finish anyway
    split = split_rest_of_step(hub, [slow], NOW, STEP_END, planned_site_kw=480.0)
    assert split["s1"] == pytest.approx(40.0)
