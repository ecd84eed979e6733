"""Drills on Jiuke Oasis: the simulator over OPC UA, the controller runtime with FLISR in the loop.

Each shipped drill is run once (about ten seconds of wall time each, mostly start-up) and its
report checked against what the issue expects of it; bad scenario files are refused naming the
file, the event and the field.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pandas as pd
import pytest

from gridctl.cli import main
from gridctl.commands.drill_runner import DrillReport, run_drill
from gridctl.commands.drill_scenario import (
    DrillInputError,
    drill_scenario_path,
    load_drill_scenario,
    shipped_drill_scenarios,
)
from gridctl.historian import Historian
from gridctl.self_healing import FaultResponder
from hil_sim.simulator import Simulator
from network_models import load_model

CAMPUS_LOADS = {"LD_CAMPUS_CRITICAL", "LD_CAMPUS_GENERAL"}
DB_DIR: dict[str, Path] = {}


@functools.cache
def drill(name: str) -> DrillReport:
    model = load_model("jiuke_oasis")
    scenario = load_drill_scenario(drill_scenario_path(name), model)
    return asyncio.run(run_drill(scenario, model, db_path=DB_DIR["dir"] / f"{name}.sqlite"))


@pytest.fixture(scope="module", autouse=True)
def _db_dir(tmp_path_factory):
    DB_DIR["dir"] = tmp_path_factory.mktemp("drills")


def kinds(report: DrillReport) -> list[str]:
    return [e["kind"] for e in report.events]


def at(report: DrillReport, kind: str) -> pd.Timestamp:
    return pd.Timestamp(next(e["time"] for e in report.events if e["kind"] == kind))


def lost_loads(report: DrillReport) -> set[str]:
    return {d for e in report.events if e["kind"] == "supply_lost"
            for d in e["text"].split(": ", 1)[1].split(", ")}


# --- the shipped library ---------------------------------------------------------------------


def test_the_library_ships_the_drills_of_the_issues():
    assert set(shipped_drill_scenarios()) == {
        "backbone_cable_fault", "feeder_section_fault", "transformer_loss", "substation_loss",
        "campus_upstream_outage", "feeder_repeated_faults", "feeder_fault_failed_indicators"}


def test_backbone_cable_fault_interrupts_no_customer_and_needs_no_switching():
    report = drill("backbone_cable_fault")
    assert "protection" in kinds(report) and "detection" in kinds(report)
    assert report.customers_interrupted == 0 and report.customer_minutes_interrupted == 0
    assert report.energy_not_supplied_kwh == 0 and report.switch_operations == 0
    assert report.baseline["customers_interrupted"] == 0
    assert report.violations_after_restoration == ()


def test_feeder_section_fault_brings_healthy_sections_back_within_seconds():
    report = drill("feeder_section_fault")
    fault = at(report, "fault")
    # the faulted cable carries no load: every interrupted customer is restored
    assert lost_loads(report) == {"LD_L2_1", "LD_L2_2", "LD_L2_3"}
    assert report.unsupplied_at_end == ()
    assert report.restoration_s is not None and report.restoration_s <= 10.0
    assert at(report, "supply_back") - fault <= pd.Timedelta(seconds=10)
    assert report.violations_after_restoration == () and report.write_errors == 0


def test_feeder_section_fault_timeline_runs_fault_protection_detection_isolation_restoration():
    report = drill("feeder_section_fault")
    wanted = ["fault", "protection", "detection", "isolation", "restoration_step", "supply_back"]
    firsts = [kinds(report).index(k) for k in wanted]
    assert firsts == sorted(firsts)
    times = [at(report, k) for k in wanted]
    assert times == sorted(times)
    isolated = {e["device"] for e in report.events if e["kind"] == "isolation"}
    closed = {e["device"] for e in report.events if e["kind"] == "restoration_step"}
    assert isolated == {"RS_FD_L2_1_a", "RS_FD_L2_1_b"} and not isolated & closed
    assert report.switch_operations == len(isolated) + len(closed)


def test_customer_minutes_are_the_customers_off_times_the_minutes_off():
    report = drill("feeder_section_fault")
    customers = report.customers_interrupted
    assert customers == 3 * 320  # LD_L2_1..3 in the registry
    assert report.customer_minutes_interrupted == pytest.approx(
        customers * report.restoration_s / 60.0)


def test_automation_beats_the_manual_baseline_on_every_figure():
    report = drill("feeder_section_fault")
    base = report.baseline
    assert base["customers_interrupted"] == report.customers_interrupted
    assert base["customer_minutes_interrupted"] == pytest.approx(
        report.customers_interrupted * 60.0)
    assert report.customer_minutes_interrupted < base["customer_minutes_interrupted"] / 100
    assert 0 < report.energy_not_supplied_kwh < base["energy_not_supplied_kwh"] / 100
    assert report.restoration_s < base["restoration_s"]


def test_the_runtime_records_the_plan_and_each_step_in_the_historian():
    report = drill("feeder_section_fault")
    with Historian(DB_DIR["dir"] / "feeder_section_fault.sqlite") as h:
        plans = h.decisions("flisr")
        steps = h.events("flisr_step")
        commands = h.commands()
    assert len(plans) == 1 and plans[0]["status"] == "restored"
    assert [s["step"] for s in steps] == [e["kind"] for e in report.events if e["kind"] in (
        "detection", "isolation", "indicator_reset", "restoration_step")]
    written = commands[commands.point == "close_cmd"]
    assert list(written.device) == ["RS_FD_L2_1_a", "RS_FD_L2_1_b", "FB_FD_L2_0", "NO_FD_L2_3_b"]
    assert set(written.result) == {"Good"}


def test_substation_transformer_loss_interrupts_no_customer():
    report = drill("transformer_loss")
    assert "fault" in kinds(report) and "detection" in kinds(report)
    assert report.customers_interrupted == 0 and report.energy_not_supplied_kwh == 0
    assert report.violations_after_restoration == ()


def test_loss_of_a_whole_substation_is_carried_by_the_other_within_limits():
    report = drill("substation_loss")
    tripped = next(e["text"] for e in report.events if e["kind"] == "protection")
    assert "CB_B_T1" in tripped and "CB_B_T2" in tripped
    assert report.customers_interrupted == 0 and report.energy_not_supplied_kwh == 0
    assert report.violations_after_restoration == ()


def test_campus_rides_through_the_upstream_outage_islanded_on_pv_and_bess():
    report = drill("campus_upstream_outage")
    (campus,) = report.microgrids
    assert pd.Timestamp(campus["islanded_at"]) == at(report, "fault")
    assert not lost_loads(report) & CAMPUS_LOADS  # never a tick without supply
    # the rest of the feeder is back from its neighbour within seconds
    assert report.unsupplied_at_end == () and report.restoration_s <= 10.0


def test_campus_reconnects_once_its_grid_side_has_been_healthy_for_a_minute():
    report = drill("campus_upstream_outage")
    (campus,) = report.microgrids
    supply_back = at(report, "supply_back")  # FLISR re-energised the campus's grid side
    closed = at(report, "reconnection")
    assert closed - supply_back >= pd.Timedelta(seconds=60)
    assert closed - supply_back <= pd.Timedelta(seconds=60 + 10)  # within a fine tick after
    assert campus["reconnected"] and not campus["islanded_at_end"]
    assert set(campus["loads_supplied_at_end"]) == CAMPUS_LOADS
    assert report.violations_after_restoration == ()
    with Historian(DB_DIR["dir"] / "campus_upstream_outage.sqlite") as h:
        written = h.commands()
    close = written[(written.device == "CB_CAMPUS_PCC") & (written.point == "close_cmd")]
    assert list(close.value) == [1.0] and set(close.result) == {"Good"}


@pytest.mark.parametrize("name", sorted(shipped_drill_scenarios()))
def test_every_shipped_drill_meets_the_expectations_its_file_states(name):
    report = drill(name)
    assert report.expectations, f"{name} states no expectations"
    unmet = [e for e in report.expectations if not e["met"]]
    assert not unmet and report.expectations_met


# --- the responder on its own ----------------------------------------------------------------


def _protection_values(sim: Simulator, responder: FaultResponder) -> dict:
    return {k: sim.readings[k] for k in responder.points}


def test_a_trip_is_planned_for_once_and_a_new_trip_of_the_same_breaker_again(jiuke):
    sim = Simulator(jiuke, start="2026-07-15 19:00")
    responder = FaultResponder(jiuke)
    assert responder.respond(sim.time, _protection_values(sim, responder)).plan is None
    sim.fault_line("FD_L4_2")
    first = responder.respond(sim.time, _protection_values(sim, responder))
    assert first.plan is not None and first.commands
    assert [c.action for c in first.commands][:2] == ["open", "open"]
    again = responder.respond(sim.time, _protection_values(sim, responder))
    assert again.plan is None and again.commands == ()
    for c in first.commands:
        sim.write(c.key, c.value)
    sim.step()
    assert responder.respond(sim.time, _protection_values(sim, responder)).plan is None
    sim.trip_device("FB_FD_L4_0")
    assert responder.respond(sim.time, _protection_values(sim, responder)).plan is not None


# --- bad scenarios ---------------------------------------------------------------------------


def _write(tmp_path: Path, events: str, expect: str = "") -> Path:
    path = tmp_path / "bad.yaml"
    text = "name: bad\nduration_min: 20\nevents:\n" + events
    path.write_text(text + ("expect:\n" + expect if expect else ""), encoding="utf-8")
    return path


def test_an_unknown_line_is_refused_naming_the_file_the_event_and_the_field(jiuke, tmp_path):
    path = _write(tmp_path, "  - {at_min: 1, kind: cable_fault, target: FD_L2_1}\n"
                            "  - {at_min: 2, kind: cable_fault, target: FD_L9_9}\n")
    with pytest.raises(DrillInputError) as err:
        load_drill_scenario(path, jiuke)
    assert err.value.source == str(path) and err.value.element == "event 1"
    assert err.value.field == "target" and "FD_L9_9" in str(err.value)


def test_an_unknown_device_is_refused(jiuke, tmp_path):
    path = _write(tmp_path, "  - {at_min: 1, kind: comm_loss, target: RMU_NOWHERE}\n")
    with pytest.raises(DrillInputError, match=r"event 0.*field 'target'.*RMU_NOWHERE"):
        load_drill_scenario(path, jiuke)


def test_events_out_of_order_are_refused_naming_the_event(jiuke, tmp_path):
    path = _write(tmp_path, "  - {at_min: 5, kind: cable_fault, target: FD_L2_1}\n"
                            "  - {at_min: 3, kind: clear, target: FD_L2_1}\n")
    with pytest.raises(DrillInputError) as err:
        load_drill_scenario(path, jiuke)
    assert (err.value.element, err.value.field) == ("event 1", "at_min")


def test_an_unknown_event_kind_is_refused_naming_the_event_and_field(tmp_path):
    path = _write(tmp_path, "  - {at_min: 1, kind: earthquake, target: FD_L2_1}\n")
    with pytest.raises(DrillInputError) as err:
        load_drill_scenario(path)
    assert (err.value.source, err.value.element, err.value.field) == (
        str(path), "event 0", "kind")


def test_clearing_what_was_never_injected_is_refused(jiuke, tmp_path):
    path = _write(tmp_path, "  - {at_min: 1, kind: supply_restored, target: B}\n")
    with pytest.raises(DrillInputError, match=r"event 0.*earlier event"):
        load_drill_scenario(path, jiuke)


def test_the_command_line_refuses_a_bad_scenario_with_one_line_and_exit_2(tmp_path, capsys):
    path = _write(tmp_path, "  - {at_min: 1, kind: cable_fault, target: FD_L9_9}\n")
    assert main(["drill", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and "event 0" in err and "field 'target'" in err


def _write_expecting(tmp_path: Path, expect: str) -> Path:
    return _write(tmp_path, "  - {at_min: 1, kind: cable_fault, target: FD_L2_1}\n", expect)


def test_an_expectation_of_an_unknown_figure_is_refused_naming_it(jiuke, tmp_path):
    path = _write_expecting(tmp_path, "  customers_happy: {max: 0}\n")
    with pytest.raises(DrillInputError) as err:
        load_drill_scenario(path, jiuke)
    assert (err.value.source, err.value.element, err.value.field) == (
        str(path), "expect customers_happy", "expect")
    assert "restoration_s" in str(err.value)  # says what is expected


def test_an_expectation_of_an_unknown_microgrid_is_refused(jiuke, tmp_path):
    path = _write_expecting(tmp_path, "  microgrids.HOSPITAL.reconnected: {equals: true}\n")
    with pytest.raises(DrillInputError, match=r"no microgrid 'HOSPITAL'.*CAMPUS"):
        load_drill_scenario(path, jiuke)


def test_an_expectation_without_a_bound_is_refused(jiuke, tmp_path):
    path = _write_expecting(tmp_path, "  restoration_s: {}\n")
    with pytest.raises(DrillInputError) as err:
        load_drill_scenario(path, jiuke)
    assert err.value.element == "expect restoration_s"
    assert "min, max, equals" in str(err.value)


def test_a_drill_that_misses_its_expectation_says_so_and_exits_1(tmp_path, capsys):
    # the shipped feeder fault, expected (wrongly) to interrupt nobody
    shipped = drill_scenario_path("feeder_section_fault").read_text(encoding="utf-8")
    path = tmp_path / "too_hopeful.yaml"
    path.write_text(shipped.replace("expect:\n", "expect:\n  customers_interrupted: {max: 0}\n"),
                    encoding="utf-8")
    assert main(["drill", str(path)]) == 1
    out = capsys.readouterr().out
    assert "expected customers_interrupted <= 0: 960 NOT MET" in out
    assert "expected restoration_s <= 10: 5.0 met" in out


def test_a_refused_isolation_stops_flisr_before_it_recloses_onto_the_fault(tmp_path):
    # the isolating switch on the fault's near side does not answer: its open command is
    # refused, so the feeder breaker must not be closed again (it would close onto the fault)
    path = tmp_path / "mute_switch.yaml"
    path.write_text(
        "name: mute_switch\nstart: '2026-07-15T19:00'\nduration_min: 6\n"
        "events:\n"
        "  - {at_min: 1, kind: comm_loss, target: RS_FD_L2_1_a}\n"
        "  - {at_min: 2, kind: cable_fault, target: FD_L2_1}\n", encoding="utf-8")
    model = load_model("jiuke_oasis")
    report = asyncio.run(run_drill(load_drill_scenario(path, model), model,
                                   db_path=tmp_path / "mute.sqlite"))
    with Historian(tmp_path / "mute.sqlite") as h:
        written = h.commands()
        aborted = h.events("flisr_aborted")
    refused = written[(written.device == "RS_FD_L2_1_a") & (written.point == "close_cmd")]
    assert list(refused.result) == ["BadNoCommunication"]
    assert written[written.device == "FB_FD_L2_0"].empty  # never re-closed
    assert len(aborted) == 1 and aborted[0]["refused"] == "RS_FD_L2_1_a.close_cmd"
    assert {"LD_L2_1", "LD_L2_2", "LD_L2_3"} <= set(report.unsupplied_at_end)


def test_a_drill_on_five_minute_control_steps_plans_every_step_on_that_grid(tmp_path):
    # the MPC plans on the runtime's own step: 5-minute steps over a 5-minute forecast (a
    # 15-minute plan under 5-minute steps lacked forecast and failed every step)
    path = tmp_path / "five_minutes.yaml"
    path.write_text(
        "name: five_minutes\nstart: '2026-07-15T19:00'\nduration_min: 12\nmpc_step_minutes: 5\n"
        "events:\n  - {at_min: 2, kind: cable_fault, target: FD_L2_1}\n", encoding="utf-8")
    model = load_model("jiuke_oasis")
    report = asyncio.run(run_drill(load_drill_scenario(path, model), model,
                                   db_path=tmp_path / "five.sqlite"))
    assert report.runtime_errors == () and report.mpc_decisions >= 1
    with Historian(tmp_path / "five.sqlite") as h:
        failed = h.events("control_step_failed")
        _, schedule = h.last_schedule("mpc")
    assert failed == []
    assert (pd.Series(schedule.index).diff().dropna() == pd.Timedelta(minutes=5)).all()
    assert len(schedule.index) == 24  # two hours ahead
    assert report.restoration_s == 5.0


def test_a_control_step_that_does_not_divide_a_day_is_refused_naming_the_field(tmp_path):
    path = _write(tmp_path, "  - {at_min: 1, kind: cable_fault, target: FD_L2_1}\n")
    path.write_text(path.read_text(encoding="utf-8") + "mpc_step_minutes: 7\n", encoding="utf-8")
    with pytest.raises(DrillInputError) as err:
        load_drill_scenario(path)
    assert err.value.source == str(path) and err.value.field == "mpc_step_minutes"
    assert "divides a day" in str(err.value)
