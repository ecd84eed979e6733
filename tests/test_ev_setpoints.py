"""EV setpoints as decisions (controllers.ev_setpoints): connectors, site limit and reserve."""

import pandas as pd
import pytest

from controllers.ev_setpoints import (
    PluggedIn,
    held_site_setpoints,
    site_setpoints,
    sites_setpoints,
)
from network_models import load_model

NOW = pd.Timestamp("2026-07-15 18:00", tz="Asia/Shanghai")
STEP_END = NOW + pd.Timedelta(minutes=15)


@pytest.fixture(scope="module")
def site():
    model = load_model("jiuke_oasis")
    return max(model.registry.ev_sites, key=lambda s: len(s.connector_ids()))


def test_an_empty_connector_is_set_to_its_rating_and_a_plugged_one_to_its_session(site):
    first, *rest = site.connector_ids()
    plugged = {first: PluggedIn("a", None)}
    values = site_setpoints(site, {"a": 3.0}, plugged, STEP_END)
    assert values[(site.id, f"{first}.p_set_kw")] == 3.0
    assert all(values[(site.id, f"{c}.p_set_kw")] == site.p_connector_kw for c in rest)
    connectors = sum(v for (_, p), v in values.items() if p != "p_site_limit_kw")
    assert values[(site.id, "p_site_limit_kw")] == min(connectors, site.p_site_max_kw)


def test_a_vehicle_leaving_within_the_step_reserves_its_connector_for_a_successor(site):
    first = site.connector_ids()[0]
    leaving = {c: PluggedIn(f"s{c}", None) for c in site.connector_ids()}
    stays = site_setpoints(site, {}, leaving, STEP_END)
    leaving[first] = PluggedIn(f"s{first}", NOW + pd.Timedelta(minutes=5))
    leaves = site_setpoints(site, {}, leaving, STEP_END)
    assert stays[(site.id, "p_site_limit_kw")] == 0.0
    assert leaves[(site.id, "p_site_limit_kw")] == min(site.p_connector_kw, site.p_site_max_kw)
    # the same vehicle leaving after the step reserves nothing
    leaving[first] = PluggedIn(f"s{first}", STEP_END)
    assert site_setpoints(site, {}, leaving, STEP_END)[(site.id, "p_site_limit_kw")] == 0.0


def test_a_session_power_is_clamped_to_the_connector_rating(site):
    first = site.connector_ids()[0]
    plugged = {c: None for c in site.connector_ids()} | {first: PluggedIn("a", None)}
    for kw, expected in ((-5.0, 0.0), (1e9, site.p_connector_kw)):
        values = site_setpoints(site, {"a": kw}, plugged, STEP_END)
        assert values[(site.id, f"{first}.p_set_kw")] == expected


def test_a_held_site_is_zero_everywhere_and_a_decision_carries_points_by_device(site):
    assert set(held_site_setpoints(site).values()) == {0.0}
    assert len(held_site_setpoints(site)) == len(site.connector_ids()) + 1
    carried = sites_setpoints([site], {}, {}, STEP_END)[site.id]
    assert {(site.id, p): v for p, v in carried.items()} == site_setpoints(site, {}, {}, STEP_END)
