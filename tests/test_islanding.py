"""Islanding of the Jiuke campus microgrid: a tick-by-tick state machine.

Campus: BESS_CAMPUS 2 MW / 4 MWh (SoC 0.1-0.95, 95 % one-way), PV_CAMPUS 1.2 MWp,
LD_CAMPUS_CRITICAL 0.35 MW (priority 1, critical) and LD_CAMPUS_GENERAL 0.85 MW (priority 3).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controllers.islanding import (
    IslandActionKind,
    IslandingPolicy,
    IslandProfile,
    MicrogridMode,
    MicrogridReading,
    MicrogridSpec,
    MicrogridState,
    hold_time_h,
    islanding_step,
)
from network_models.errors import InputError

T0 = datetime(2025, 7, 15, 19, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PEAK_LOADS = {"LD_CAMPUS_CRITICAL": 0.35, "LD_CAMPUS_GENERAL": 0.85}
ISLANDED = MicrogridState(mode=MicrogridMode.ISLANDED)


@pytest.fixture(scope="module")
def campus(jiuke) -> MicrogridSpec:
    return MicrogridSpec.of(jiuke, "CAMPUS")


def reading(*, upstream=False, closed=True, soc=0.6, loads=None, pv=0.0, minutes=0.0):
    return MicrogridReading(
        upstream_energised=upstream,
        breaker_closed=closed,
        soc_frac=soc,
        load_p_mw=PEAK_LOADS if loads is None else loads,
        pv_p_mw={"PV_CAMPUS": pv},
        time=T0 + timedelta(minutes=minutes),
    )


def kinds(decision) -> list[tuple[IslandActionKind, str]]:
    return [(a.action, a.device) for a in decision.actions]


def test_spec_of_the_campus_lists_its_breaker_bess_loads_and_pv(campus):
    assert campus.breaker == "CB_CAMPUS_PCC" and campus.bess.id == "BESS_CAMPUS"
    assert [ld.device for ld in campus.loads] == ["LD_CAMPUS_GENERAL", "LD_CAMPUS_CRITICAL"]
    assert campus.pv == ("PV_CAMPUS",)


def test_grid_connected_with_supply_does_nothing(campus):
    decision = islanding_step(campus, MicrogridState(), reading(upstream=True))
    assert decision.actions == () and decision.state.mode is MicrogridMode.GRID_CONNECTED


def test_loss_of_supply_at_the_evening_peak_islands_on_the_critical_load(campus):
    decision = islanding_step(campus, MicrogridState(), reading())
    assert kinds(decision) == [
        (IslandActionKind.OPEN_BREAKER, "CB_CAMPUS_PCC"),
        (IslandActionKind.SHED_LOAD, "LD_CAMPUS_GENERAL"),
        (IslandActionKind.FORM_GRID, "BESS_CAMPUS"),
    ]
    assert decision.state.mode is MicrogridMode.ISLANDED
    # all load would last (0.6-0.1)·4·0.95/1.2 = 1.58 h < 2 h; the critical load alone 5.43 h
    assert decision.hold_time_h == pytest.approx(0.5 * 4 * 0.95 / 0.35)
    assert decision.served_p_mw == pytest.approx(0.35) and decision.bess_p_mw == pytest.approx(0.35)


def test_with_pv_covering_the_load_nothing_is_shed_and_the_island_holds_indefinitely(campus):
    decision = islanding_step(campus, MicrogridState(), reading(pv=1.2))
    assert IslandActionKind.SHED_LOAD not in {a.action for a in decision.actions}
    assert math.isinf(decision.hold_time_h)


def test_load_beyond_the_bess_power_is_shed_even_with_energy_to_spare(campus):
    heavy = {"LD_CAMPUS_CRITICAL": 0.35, "LD_CAMPUS_GENERAL": 1.9}  # 2.25 MW > 2 MW
    decision = islanding_step(
        campus, MicrogridState(), reading(soc=0.95, loads=heavy),
        policy=IslandingPolicy(target_hold_h=0.5),
    )
    assert decision.state.shed == {"LD_CAMPUS_GENERAL"} and decision.within_bess_power


def test_a_critical_load_is_shed_only_when_it_alone_exceeds_the_bess_power(campus):
    short_energy = islanding_step(campus, MicrogridState(), reading(soc=0.15))
    assert short_energy.state.shed == {"LD_CAMPUS_GENERAL"}  # critical kept despite 0.5 h left
    too_big = {"LD_CAMPUS_CRITICAL": 2.5, "LD_CAMPUS_GENERAL": 0.0}
    decision = islanding_step(campus, MicrogridState(), reading(loads=too_big))
    assert "LD_CAMPUS_CRITICAL" in decision.state.shed


def test_an_island_sheds_more_as_the_battery_drains(campus):
    generous = islanding_step(campus, ISLANDED, reading(closed=False, soc=0.9))
    assert generous.state.shed == frozenset()  # 3.17 h of full load
    drained = islanding_step(campus, generous.state, reading(closed=False, soc=0.5))
    assert kinds(drained) == [(IslandActionKind.SHED_LOAD, "LD_CAMPUS_GENERAL")]


def test_a_shed_load_comes_back_only_with_margin(campus):
    shed = MicrogridState(mode=MicrogridMode.ISLANDED, shed=frozenset({"LD_CAMPUS_GENERAL"}))
    # full load lasts 2.05 h: above the 2 h target, below it plus 10 % margin
    just = 2.05 * 1.2 / (4 * 0.95) + 0.1
    assert islanding_step(campus, shed, reading(closed=False, soc=just)).state.shed == shed.shed
    ample = 2.5 * 1.2 / (4 * 0.95) + 0.1
    back = islanding_step(campus, shed, reading(closed=False, soc=ample))
    assert kinds(back) == [(IslandActionKind.RESTORE_LOAD, "LD_CAMPUS_GENERAL")]


def test_reconnects_when_supply_is_back_after_the_delay(campus):
    shed = MicrogridState(mode=MicrogridMode.ISLANDED, shed=frozenset({"LD_CAMPUS_GENERAL"}))
    policy = IslandingPolicy(reconnect_delay_s=300)
    first = islanding_step(campus, shed, reading(upstream=True, closed=False), policy=policy)
    assert first.state.mode is MicrogridMode.ISLANDED and first.actions == ()
    later = islanding_step(
        campus, first.state, reading(upstream=True, closed=False, minutes=5), policy=policy
    )
    assert kinds(later) == [
        (IslandActionKind.CLOSE_BREAKER, "CB_CAMPUS_PCC"),
        (IslandActionKind.FOLLOW_GRID, "BESS_CAMPUS"),
        (IslandActionKind.RESTORE_LOAD, "LD_CAMPUS_GENERAL"),
    ]
    assert later.state == MicrogridState()


def test_supply_flickering_back_restarts_the_reconnection_wait(campus):
    policy = IslandingPolicy(reconnect_delay_s=300)
    back = islanding_step(campus, ISLANDED, reading(upstream=True, closed=False), policy=policy)
    lost = islanding_step(campus, back.state, reading(closed=False, minutes=2), policy=policy)
    again = islanding_step(
        campus, lost.state, reading(upstream=True, closed=False, minutes=6), policy=policy
    )
    assert again.state.mode is MicrogridMode.ISLANDED


def test_hold_time_with_a_profile_counts_pv_charging_the_battery(campus):
    bess = campus.bess
    # two hours of 0.5 MW PV surplus, then 1 MW deficit
    hours = hold_time_h(bess, 0.5, [0.5] * 8 + [1.0] * 40, [1.0] * 8 + [0.0] * 40)
    stored = 2 * 0.5 * 0.95  # MWh put in, below the 0.95 SoC ceiling
    assert hours == pytest.approx(2 + ((0.5 - 0.1) * 4 + stored) * 0.95 / 1.0)


def test_hold_time_follows_the_profile_given_to_the_step(campus):
    profile = IslandProfile(
        step_h=1.0,
        load_p_mw={"LD_CAMPUS_CRITICAL": [0.35] * 24, "LD_CAMPUS_GENERAL": [0.85] * 24},
        pv_p_mw=[1.2] * 3 + [0.0] * 21,  # three sunny hours ahead
    )
    decision = islanding_step(campus, MicrogridState(), reading(pv=1.2), profile=profile)
    assert decision.state.shed == frozenset()
    assert decision.hold_time_h == pytest.approx(3 + 0.5 * 4 * 0.95 / 1.2)


def test_a_reading_with_a_state_of_charge_out_of_range_is_refused(campus):
    with pytest.raises(InputError, match="soc_frac"):
        islanding_step(campus, MicrogridState(), reading(soc=1.4))


def test_a_reading_naming_a_load_outside_the_microgrid_is_refused(campus):
    with pytest.raises(InputError, match="LD_L1_1"):
        islanding_step(campus, MicrogridState(), reading(loads={"LD_L1_1": 0.5}))
