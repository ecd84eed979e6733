"""The simulated field's physics, in process (no OPC UA): balance, storage, EV, safety, writes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hil_sim.config import SimConfig
from hil_sim.devices import (
    bess_power_limits_mw,
    integrate_soc,
    ramp,
    reactive_within,
    share_site_limit,
)
from hil_sim.setpoints import WriteCheck
from hil_sim.simulator import Simulator
from network_models.registry import Bess

NOON = "2026-07-15 12:00"
EVENING = "2026-07-15 19:00"  # loads high, PV down


def _sim(jiuke, start: str = NOON, **config: object) -> Simulator:
    return Simulator(jiuke, start=start, config=SimConfig(**config))  # type: ignore[arg-type]


def _balance_mw(sim: Simulator) -> float:
    """Import + injections - consumption - losses, from the published readings."""
    reg, r = sim.model.registry, sim.readings
    injected = sum(r[(d.id, "p_mw")] for d in (*reg.pv, *reg.bess))
    consumed = sum(r[(d.id, "p_mw")] for d in reg.loads)
    consumed += sum(r[(d.id, "p_charge_kw")] for d in reg.ev_sites) / 1000.0
    return sim.status.import_mw + injected - consumed - sim.status.losses_mw


def test_import_plus_injections_equal_consumption_plus_losses_every_tick(jiuke):
    sim = _sim(jiuke, start="2026-07-15 17:30")
    sim.write(("BESS_1", "p_set_mw"), -1.5)
    sim.write(("BESS_2", "p_set_mw"), 1.2)
    sim.write(("BESS_3", "q_set_mvar"), 0.6)
    for _ in range(5):
        sim.step()
        assert sim.status.converged
        assert sim.status.losses_mw > 0.05  # a loaded 10 kV grid has real losses
        assert abs(_balance_mw(sim)) < 1e-6


def test_charging_stores_eta_charge_of_the_energy_drawn(jiuke):
    sim = _sim(jiuke, heartbeat_timeout_s=7200.0)
    bess: Bess = jiuke.registry["BESS_1"]
    sim.write(("BESS_1", "p_set_mw"), -1.0)
    sim.step()  # the setpoint takes effect from this tick on
    soc_before = sim.reading("BESS_1", "soc_frac")
    sim.step(60)
    stored_mwh = (sim.reading("BESS_1", "soc_frac") - soc_before) * bess.e_mwh
    assert stored_mwh == pytest.approx(1.0 * bess.eta_charge, rel=1e-9)


def test_discharging_draws_one_over_eta_discharge_of_the_energy_delivered(jiuke):
    sim = _sim(jiuke, heartbeat_timeout_s=7200.0)
    bess: Bess = jiuke.registry["BESS_2"]
    sim.write(("BESS_2", "p_set_mw"), 1.0)
    sim.step()
    soc_before = sim.reading("BESS_2", "soc_frac")
    sim.step(30)
    drawn_mwh = (soc_before - sim.reading("BESS_2", "soc_frac")) * bess.e_mwh
    assert drawn_mwh == pytest.approx(0.5 / bess.eta_discharge, rel=1e-9)


def test_a_full_battery_stops_charging_at_its_upper_state_of_charge(jiuke):
    sim = _sim(jiuke, heartbeat_timeout_s=7200.0)
    bess: Bess = jiuke.registry["BESS_3"]
    sim.write(("BESS_3", "p_set_mw"), -2.0)
    socs = []
    for _ in range(150):
        sim.step()
        socs.append(sim.reading("BESS_3", "soc_frac"))
    assert max(socs) <= bess.soc_max_frac + 1e-9
    assert socs[-1] == pytest.approx(bess.soc_max_frac)
    assert sim.reading("BESS_3", "p_mw") == pytest.approx(0.0, abs=1e-9)


def test_ev_energy_follows_power_never_exceeds_the_request_and_stops_at_departure(jiuke):
    sim = _sim(jiuke, start="2026-07-15 08:00")
    site = jiuke.registry["EV_L7_3"]  # a public DC hub: vehicles come and go all day
    connectors = [f"c{k}" for k in range(1, site.n_connectors + 1)]
    step_h = sim.config.tick_s / 3600.0
    previous = {c: None for c in connectors}
    departures_seen = 0
    for _ in range(240):
        now_s = sim.time.timestamp()
        state = {c: {name: sim.reading("EV_L7_3", f"{c}.{name}") for name in (
            "session_id", "energy_delivered_kwh", "energy_requested_kwh", "p_charge_kw",
            "departure_s", "connected")} for c in connectors}
        for c, s in state.items():
            if s["connected"]:
                assert s["departure_s"] > now_s  # nobody is plugged in past departure
                assert s["energy_delivered_kwh"] <= s["energy_requested_kwh"] + 1e-9
            else:
                assert s["p_charge_kw"] == 0.0 and s["energy_delivered_kwh"] == 0.0
            before = previous[c]
            if before is not None and before["connected"]:
                if s["session_id"] == before["session_id"]:
                    gained = s["energy_delivered_kwh"] - before["energy_delivered_kwh"]
                    assert gained == pytest.approx(before["p_charge_kw"] * step_h, abs=1e-9)
                else:
                    departures_seen += 1
                    assert before["departure_s"] <= now_s
        previous = state
        sim.step()
    assert departures_seen > 0 and sum(s["connected"] for s in previous.values()) > 0


def test_a_device_falls_back_to_its_safe_default_when_setpoint_writes_stop(jiuke):
    sim = _sim(jiuke, start="2026-07-15 20:00", heartbeat_timeout_s=300.0)
    site = jiuke.registry["EV_L2_1"]
    sim.write(("BESS_1", "p_set_mw"), 1.0)
    for k in range(1, site.n_connectors + 1):
        sim.write(("EV_L2_1", f"c{k}.p_set_kw"), 0.0)
    written_for = list(sim.ev["EV_L2_1"].sessions)
    sim.step(5)  # 300 s since the last write: still obeyed
    assert sim.reading("BESS_1", "p_mw") == pytest.approx(1.0)
    same = [k for k, s in enumerate(sim.ev["EV_L2_1"].sessions)
            if s is not None and s is written_for[k]]
    assert same and all(sim.reading("EV_L2_1", f"c{k + 1}.p_charge_kw") == 0.0 for k in same)
    assert "BESS_1" not in sim.status.fallback_devices
    sim.step()  # 360 s: the watchdog has expired
    assert sim.reading("BESS_1", "p_mw") == 0.0
    assert {"BESS_1", "EV_L2_1"} <= set(sim.status.fallback_devices)
    sessions = sim.ev["EV_L2_1"].sessions
    drawing = [(sim.reading("EV_L2_1", f"c{k + 1}.p_charge_kw"), s.max_kw)
               for k, s in enumerate(sessions)
               if s is not None and s.energy_kwh
               - sim.reading("EV_L2_1", f"c{k + 1}.energy_delivered_kwh") > 1.0]
    assert drawing
    assert all(p == pytest.approx(min(site.fallback_kw_per_connector, vehicle_kw))
               for p, vehicle_kw in drawing)


def test_a_vehicle_plugging_in_starts_at_the_connector_rating_not_its_predecessors_setpoint(jiuke):
    sim = _sim(jiuke, start="2026-07-15 11:00")
    site = jiuke.registry["EV_L7_3"]
    for k in range(1, site.n_connectors + 1):  # hold every connector at 0 kW
        sim.write(("EV_L7_3", f"c{k}.p_set_kw"), 0.0)
    sim.write(("EV_L7_3", "p_site_limit_kw"), site.p_site_max_kw)
    before = list(sim.ev["EV_L7_3"].sessions)
    for _ in range(60):
        sim.step()
        sim.write(("EV_L7_3", "p_site_limit_kw"), site.p_site_max_kw)  # the site's heartbeat
        now = sim.ev["EV_L7_3"].sessions
        new = [k for k, s in enumerate(now) if s is not None and s is not before[k]
               and s.arrival > sim.time - pd.Timedelta(minutes=1)]
        if new:
            break
    assert new, "a public DC hub at midday sees a vehicle plug in within the hour"
    for k in new:
        session = now[k]
        expected = min(session.max_kw, site.p_connector_kw)
        assert sim.reading("EV_L7_3", f"c{k + 1}.p_charge_kw") == pytest.approx(expected)


def test_a_connector_reports_the_session_that_ended_with_the_energy_it_got_in_all(jiuke):
    sim = _sim(jiuke, start="2026-07-15 11:00")
    for _ in range(90):
        sim.step()
        sim.write(("EV_L7_3", "p_site_limit_kw"), 480.0)  # the site's heartbeat
        if sim.departures and any(s.site == "EV_L7_3" for s, _ in sim.departures):
            break
    session, got = next((s, g) for s, g in sim.departures if s.site == "EV_L7_3")
    c = session.connector
    assert sim.reading("EV_L7_3", f"{c}.last_session_id") == session.id
    # the whole stay, its last minute included (the live counter is already reset)
    assert sim.reading("EV_L7_3", f"{c}.last_session_energy_kwh") == pytest.approx(got)
    assert got > 0


def test_a_write_resumes_control_after_a_fallback(jiuke):
    sim = _sim(jiuke, heartbeat_timeout_s=120.0)
    sim.step(3)
    assert "BESS_2" in sim.status.fallback_devices  # nobody has written yet
    sim.write(("BESS_2", "p_set_mw"), -0.8)
    sim.step()
    assert sim.reading("BESS_2", "p_mw") == pytest.approx(-0.8)


def test_curtailment_caps_pv_below_what_the_sun_gives(jiuke):
    sim = _sim(jiuke)
    available = sim.reading("PV_L1_3", "p_avail_mw")
    assert available > 0.1  # a clear July noon
    sim.write(("PV_L1_3", "p_limit_mw"), 0.05)
    sim.step()
    assert sim.reading("PV_L1_3", "p_mw") == pytest.approx(0.05)
    assert sim.reading("PV_L1_3", "p_avail_mw") > 0.05


@pytest.mark.parametrize(
    ("key", "value", "verdict"),
    [
        (("BESS_1", "p_set_mw"), 2.5, WriteCheck.OUT_OF_RANGE),
        (("BESS_1", "p_set_mw"), math.nan, WriteCheck.OUT_OF_RANGE),
        (("EV_L1_1", "c1.p_set_kw"), -1.0, WriteCheck.OUT_OF_RANGE),
        (("BESS_1", "p_set_mw"), True, WriteCheck.TYPE_MISMATCH),
        (("FB_FD_L1_0", "close_cmd"), 1.0, WriteCheck.TYPE_MISMATCH),
        (("BESS_1", "soc_frac"), 0.5, WriteCheck.NOT_WRITABLE),
        (("BESS_1", "p_set_kw"), 0.5, WriteCheck.UNKNOWN_POINT),
        (("LD_L1_1", "connect_cmd"), 0, WriteCheck.TYPE_MISMATCH),
        (("LD_L1_1", "connected"), False, WriteCheck.NOT_WRITABLE),
    ],
)
def test_a_refused_write_changes_nothing(jiuke, key, value, verdict):
    sim = _sim(jiuke)
    sim.write(("BESS_1", "p_set_mw"), 0.7)
    assert sim.write(key, value) == verdict
    assert sim.setpoint("BESS_1", "p_set_mw") == 0.7
    sim.step()
    assert sim.reading("BESS_1", "p_mw") == pytest.approx(0.7)


def test_a_stuck_meter_keeps_its_values_while_the_flow_changes(jiuke):
    sim = _sim(jiuke, start="2026-07-15 07:00")
    before = {p: sim.reading("M_FD_L4_0", p) for p in ("p_mw", "q_mvar", "i_ka", "v_pu")}
    sim.stick_meter("M_FD_L4_0")
    sim.step(60)
    assert {p: sim.reading("M_FD_L4_0", p) for p in before} == before
    assert sim.reading("M_FD_L4_6", "p_mw") != pytest.approx(before["p_mw"])
    sim.clear_fault("M_FD_L4_0")
    assert sim.reading("M_FD_L4_0", "p_mw") != before["p_mw"]


def test_a_device_without_communication_refuses_writes(jiuke):
    sim = _sim(jiuke)
    sim.lose_comm("BESS_3")
    assert sim.write(("BESS_3", "p_set_mw"), 1.0) == WriteCheck.NO_COMMUNICATION
    sim.clear_fault("BESS_3")
    assert sim.write(("BESS_3", "p_set_mw"), 1.0) == WriteCheck.OK


def test_a_tripped_inverter_delivers_nothing_until_reset(jiuke):
    sim = _sim(jiuke)
    assert sim.reading("PV_L2_2", "p_mw") > 0
    sim.trip_device("PV_L2_2")
    assert sim.reading("PV_L2_2", "p_mw") == 0.0
    sim.clear_fault("PV_L2_2")
    assert sim.reading("PV_L2_2", "p_mw") > 0


# --- load shedding: a customer's intake opened by connect_cmd ----------------------------------

SHED_LOAD = "LD_L1_1"  # at RMU_L1_1, first load of ring L1, fed through FD_L1_0
SHED_FEEDER_HEAD = "M_FD_L1_0"  # meter at the K1_I end of FD_L1_0


def _shed_and_twin(jiuke) -> tuple[Simulator, Simulator]:
    """Two identical simulators one tick on: in the first, SHED_LOAD was disconnected."""
    sim, twin = _sim(jiuke, start=EVENING), _sim(jiuke, start=EVENING)
    assert sim.write((SHED_LOAD, "connect_cmd"), False) == WriteCheck.OK
    sim.step()
    twin.step()
    return sim, twin


def test_a_load_disconnected_by_command_draws_nothing_in_the_ac_power_flow(jiuke):
    sim, twin = _shed_and_twin(jiuke)
    load_mw = twin.reading(SHED_LOAD, "p_mw")
    assert load_mw > 0.1  # a loaded evening
    head_drop_mw = twin.reading(SHED_FEEDER_HEAD, "p_mw") - sim.reading(SHED_FEEDER_HEAD, "p_mw")
    # the feeder and import carry the load's power plus its small share of the losses
    assert head_drop_mw == pytest.approx(load_mw, rel=0.02)
    assert twin.status.import_mw - sim.status.import_mw == pytest.approx(load_mw, rel=0.02)
    assert abs(_balance_mw(sim)) < 1e-6


def test_a_disconnected_load_reads_off_and_its_customers_count_as_unsupplied(jiuke):
    sim, _ = _shed_and_twin(jiuke)
    assert sim.reading(SHED_LOAD, "connected") is False
    assert sim.reading(SHED_LOAD, "energised") is False
    assert (sim.reading(SHED_LOAD, "p_mw"), sim.reading(SHED_LOAD, "q_mvar")) == (0.0, 0.0)
    assert sim.status.unsupplied_loads == (SHED_LOAD,)


def test_a_connect_command_takes_effect_at_the_next_tick_like_a_switch_command(jiuke):
    sim = _sim(jiuke, start=EVENING)
    sim.write((SHED_LOAD, "connect_cmd"), False)
    assert sim.setpoint(SHED_LOAD, "connect_cmd") is False
    assert sim.reading(SHED_LOAD, "connected") is True
    assert SHED_LOAD not in sim.status.unsupplied_loads
    sim.step()
    assert sim.reading(SHED_LOAD, "connected") is False


def test_reconnecting_a_shed_load_restores_its_supply_and_its_draw(jiuke):
    sim, twin = _shed_and_twin(jiuke)
    assert sim.status.unsupplied_loads == (SHED_LOAD,)
    sim.write((SHED_LOAD, "connect_cmd"), True)
    sim.step()
    twin.step()
    assert sim.reading(SHED_LOAD, "connected") is True
    assert sim.reading(SHED_LOAD, "energised") is True
    assert sim.reading(SHED_LOAD, "p_mw") == pytest.approx(twin.reading(SHED_LOAD, "p_mw"))
    assert sim.status.import_mw == pytest.approx(twin.status.import_mw, abs=1e-9)
    assert sim.status.unsupplied_loads == ()


def test_disconnecting_and_reconnecting_are_recorded_once_each(jiuke):
    sim = _sim(jiuke, start=EVENING)
    for connect in (False, False, True, True):
        sim.write((SHED_LOAD, "connect_cmd"), connect)
        sim.step()
    texts = [text.split(" ", 1)[1] for text in sim.recent_events(50)]
    assert [t for t in texts if t.startswith(SHED_LOAD)] == [
        f"{SHED_LOAD} disconnected by command", f"{SHED_LOAD} reconnected by command"]


# --- pure device physics ---------------------------------------------------------------------


def test_ramp_moves_towards_the_target_by_at_most_the_step():
    assert ramp(0.0, 2.0, 0.5) == 0.5
    assert ramp(1.0, -1.0, 0.5) == 0.5
    assert ramp(1.0, 1.2, 0.5) == 1.2


def test_power_limits_keep_the_state_of_charge_inside_its_band(jiuke):
    bess: Bess = jiuke.registry["BESS_1"]
    step_h = 1.0 / 60.0
    lo, hi = bess_power_limits_mw(bess, bess.soc_max_frac - 0.001, step_h)
    assert integrate_soc(bess, bess.soc_max_frac - 0.001, lo, step_h) == pytest.approx(
        bess.soc_max_frac)
    assert hi == bess.p_mw
    lo, hi = bess_power_limits_mw(bess, bess.soc_min_frac, step_h)
    assert hi == 0.0 and lo == -bess.p_mw


def test_reactive_power_yields_to_active_power_within_the_rating():
    assert reactive_within(1.0, 0.6, 1.0) == pytest.approx(0.8)
    assert reactive_within(-1.0, 0.6, 1.0) == pytest.approx(-0.8)
    assert reactive_within(0.3, 0.6, 1.0) == 0.3


def test_a_site_limit_scales_every_connector_down_together():
    shared = share_site_limit(np.array([7.0, 7.0, 3.5, 0.0]), 8.75)
    assert shared.sum() == pytest.approx(8.75)
    assert shared[0] == pytest.approx(2 * shared[2])
    assert share_site_limit(np.array([1.0, 2.0]), 10.0).tolist() == [1.0, 2.0]
