"""The second and third fault on one feeder: fresh indications, each trip answered once, never a
close onto a fault; and when indicators fail and a close does meet the fault, it is seen and the
fault isolated again.

Feeder L2 of Jiuke Oasis: station breaker FB_FD_L2_0, cables FD_L2_0 .. FD_L2_6 through ring
main units RMU_L2_1 .. RMU_L2_6, the other station's breaker FB_FD_L2_6, the normally-open point
NO_FD_L2_3_b between RMU_L2_3 and RMU_L2_4. The simulator plays protection and indicators in
process; the responder's commands are applied as the runtime writes them, in order.
"""

from __future__ import annotations

import asyncio

import pytest

from controllers.flisr import close_refusal, report_from_points
from gridctl.commands.drill_runner import run_drill
from gridctl.commands.drill_scenario import load_drill_scenario
from gridctl.self_healing import FaultResponder, SwitchCommand
from hil_sim.config import SimConfig
from hil_sim.simulator import Simulator

START = "2026-07-15 19:00"


def _values(sim: Simulator, responder: FaultResponder) -> dict:
    return {k: sim.readings[k] for k in responder.points}


def _answer(sim: Simulator, responder: FaultResponder):
    """The responder's answer to the field now, written in order as the runtime does, with its
    check before every close; the field then takes one tick and the responder looks at it.
    Returns the answer."""
    response = responder.respond(sim.time, _values(sim, responder))
    for k, command in enumerate(response.commands):
        if command.action == "close":
            why = responder.close_refusal(sim.time, command, _values(sim, responder),
                                          response.commands[:k])
            assert why is None, why
        assert sim.write(command.key, command.value).name == "OK"
        responder.confirm(sim.time, command)
    sim.step()
    # the runtime answers every publication: this one shows the switching done
    settled = responder.respond(sim.time, _values(sim, responder))
    assert settled.plan is None
    return response


def _unsupplied(sim: Simulator) -> set[str]:
    return {d for d in sim.status.unsupplied_loads if d.startswith("LD_L2")}


@pytest.fixture
def sim(jiuke) -> Simulator:
    return Simulator(jiuke, start=START, config=SimConfig(tick_s=5.0))


# --- the field: indicators and trip counters ---------------------------------------------------


def test_an_indicator_resets_once_its_cable_has_been_live_again_for_the_reset_time(jiuke):
    sim = Simulator(jiuke, start=START, config=SimConfig(tick_s=20.0, indicator_reset_s=60.0))
    sim.fault_line("FD_L2_2")
    assert sim.indications["FI_FD_L2_1_a"] and sim.indications["FI_FD_L2_2_a"]
    for switch in ("RS_FD_L2_2_a", "RS_FD_L2_2_b"):
        sim.write((switch, "close_cmd"), False)
    sim.step()  # isolated: the indications stay while everything is dead
    assert sim.indications["FI_FD_L2_1_a"]
    sim.write(("FB_FD_L2_0", "close_cmd"), True)
    sim.step()  # live again from here
    sim.step(2)  # 40 s live: not yet
    assert sim.indications["FI_FD_L2_1_a"]
    sim.step()  # 60 s live
    assert not sim.indications["FI_FD_L2_1_a"] and not sim.indications["FI_FD_L2_0_b"]
    assert sim.indications["FI_FD_L2_2_a"]  # on the isolated cable: kept for the crew


def test_an_indicator_resets_at_once_on_command(jiuke):
    sim = Simulator(jiuke, start=START, config=SimConfig(indicator_reset_s=0.0))
    sim.fault_line("FD_L2_2")
    assert sim.write(("FI_FD_L2_1_a", "reset_cmd"), True).name == "OK"
    sim.step()
    assert not sim.indications["FI_FD_L2_1_a"] and sim.indications["FI_FD_L2_1_b"]


def test_a_breaker_closed_onto_a_fault_counts_a_second_trip_within_one_tick(sim):
    sim.fault_line("FD_L2_1")
    assert sim.reading("FB_FD_L2_0", "trip_count") == 1
    sim.write(("FB_FD_L2_0", "close_cmd"), True)
    sim.step()
    # closed and tripped again in the same tick: the flag alone never changed
    assert sim.reading("FB_FD_L2_0", "tripped") is True
    assert sim.reading("FB_FD_L2_0", "trip_count") == 2


# --- the responder: the second and third fault ---------------------------------------------


def test_the_second_fault_upstream_is_located_from_fresh_indications_and_never_closed_onto(
        jiuke, sim):
    responder = FaultResponder(jiuke)
    responder.respond(sim.time, _values(sim, responder))
    sim.fault_line("FD_L2_2")
    first = _answer(sim, responder)
    assert first.plan.location.lines == ("FD_L2_2",)
    # the indications the plan read were reset before the feeder breaker closed again
    assert [c.device for c in first.commands if c.action == "reset"] == [
        "FI_FD_L2_0_b", "FI_FD_L2_1_a", "FI_FD_L2_1_b"]
    assert not sim.indications["FI_FD_L2_1_b"] and sim.indications["FI_FD_L2_2_a"]
    assert _unsupplied(sim) == set()
    # repaired; the crew switches back to normal, make before break
    sim.clear_fault("FD_L2_2")
    for switch, closed in (("RS_FD_L2_2_a", True), ("RS_FD_L2_2_b", True),
                           ("NO_FD_L2_3_b", False)):
        sim.write((switch, "close_cmd"), closed)
    sim.step()
    lifted = responder.respond(sim.time, _values(sim, responder))
    assert [e.kind for e in lifted.timeline] == ["isolation_lifted"]
    assert responder.isolated == ()
    sim.step(12)  # the indicator on the repaired cable resets once it is live a minute
    assert not any(sim.indications.values())

    trips_before = sim.reading("FB_FD_L2_0", "trip_count")
    sim.fault_line("FD_L2_1")
    second = _answer(sim, responder)
    assert second.plan.location.lines == ("FD_L2_1",)
    assert sim.reading("FB_FD_L2_0", "trip_count") == trips_before + 1  # the fault's own only
    assert sim.reading("FB_FD_L2_0", "closed") is True
    assert _unsupplied(sim) == set()  # RMU_L2_2 and _3 from the other station

    sim.fault_line("FD_L2_4")
    third = _answer(sim, responder)
    assert third.plan.location.lines == ("FD_L2_4",)
    # between the two isolated faults nothing has a supply path left: off, and said so
    assert _unsupplied(sim) == {"LD_L2_2", "LD_L2_3", "LD_L2_4"}
    assert third.plan.status == "partially_restored"
    # FD_L2_1 is still isolated: no plan closed onto it
    assert sim.reading("RS_FD_L2_1_a", "closed") is False
    assert sim.reading("RS_FD_L2_1_b", "closed") is False
    assert responder.reclosures == []
    assert sorted(f.sections for f in responder.isolated) == [("FD_L2_1",), ("FD_L2_4",)]
    # FD_L2_4 repaired and switched back in: its isolation alone is lifted
    sim.clear_fault("FD_L2_4")
    sim.write(("RS_FD_L2_4_b", "close_cmd"), True)
    sim.step()
    lifted = responder.respond(sim.time, _values(sim, responder))
    assert [e.kind for e in lifted.timeline] == ["isolation_lifted"]
    assert [f.sections for f in responder.isolated] == [("FD_L2_1",)]


def test_a_microgrid_islanded_on_loss_of_mains_is_not_taken_for_an_isolated_fault(jiuke, sim):
    responder = FaultResponder(jiuke)
    responder.respond(sim.time, _values(sim, responder))
    sim.fault_line("FD_L5_5")  # the campus hangs below RMU_L5_6: it islands
    _answer(sim, responder)
    sections = {s for f in responder.isolated for s in f.sections}
    assert "FD_L5_5" in sections and not any("CAMPUS" in s for s in sections)


def test_a_trip_again_after_a_close_is_answered_again_and_recorded_as_a_reclose(jiuke, sim):
    responder = FaultResponder(jiuke)
    sim.fault_line("FD_L2_2")
    # two indicators fail: the fault looks one section upstream
    for fi in ("FI_FD_L2_2_a", "FI_FD_L2_1_b"):
        sim.lose_comm(fi)
    values = {k: v for k, v in _values(sim, responder).items()
              if k[0] not in ("FI_FD_L2_2_a", "FI_FD_L2_1_b")}
    first = responder.respond(sim.time, values)
    assert first.plan.location.lines == ("FD_L2_1",)
    for command in first.commands:
        if sim.write(command.key, command.value).name == "OK":
            responder.confirm(sim.time, command)
    sim.step()
    # the normally-open point closed onto the real fault: the other station's breaker tripped
    assert sim.reading("FB_FD_L2_6", "tripped") is True
    second = responder.respond(sim.time, {k: v for k, v in _values(sim, responder).items()
                                          if k[0] not in ("FI_FD_L2_2_a", "FI_FD_L2_1_b")})
    assert second.plan is not None and second.trips == {"FB_FD_L2_6#1"}
    assert second.plan.location.lines == ("FD_L2_2",)
    assert second.timeline[0].kind == "reclosed_onto_fault"
    assert responder.reclosures[0]["breaker"] == "FB_FD_L2_6"
    assert responder.reclosures[0]["closed"] == ["NO_FD_L2_3_b"]


def test_each_trip_of_a_breaker_is_its_own_event(jiuke, sim):
    responder = FaultResponder(jiuke)
    sim.fault_line("FD_L2_1")
    first = responder.respond(sim.time, _values(sim, responder))
    assert first.trips == {"FB_FD_L2_0#1"}
    # the breaker is closed by hand onto the fault, without isolation: it trips again at once
    sim.write(("FB_FD_L2_0", "close_cmd"), True)
    sim.step()
    again = responder.respond(sim.time, _values(sim, responder))
    assert again.trips == {"FB_FD_L2_0#2"} and again.plan is not None


# --- the check before every close ----------------------------------------------------------


def test_no_close_that_would_energise_a_section_still_isolated(jiuke, sim):
    responder = FaultResponder(jiuke)
    sim.fault_line("FD_L2_2")
    _answer(sim, responder)
    assert [f.sections for f in responder.isolated] == [("FD_L2_2",)]
    close = SwitchCommand(device="RS_FD_L2_2_b", point="close_cmd", value=True,
                          action="close", reason="test")
    why = responder.close_refusal(sim.time, close, _values(sim, responder))
    assert why is not None and "FD_L2_2" in why and "not repaired" in why


def test_no_close_after_an_indication_that_came_up_since_the_plan(jiuke, sim):
    responder = FaultResponder(jiuke)
    sim.fault_line("FD_L2_2")
    response = responder.respond(sim.time, _values(sim, responder))
    close = next(c for c in response.commands if c.action == "close")
    # a second fault on the other half while the sequence is being written
    sim.fault_line("FD_L2_5")
    why = responder.close_refusal(sim.time, close, _values(sim, responder),
                                  response.commands[:response.commands.index(close)])
    assert why is not None and "new trip" in why


def test_no_close_whose_far_side_showed_fault_current_after_it_opened(jiuke, sim):
    ctx = FaultResponder(jiuke).context
    sim.fault_line("FD_L2_2")
    report = report_from_points(jiuke, sim.readings)
    # the indications of the trip itself came with the breaker's opening: they do not stop it
    assert close_refusal(ctx, report, "FB_FD_L2_0") is None
    # one that came up after it opened is a fault in what it feeds (current from another side)
    why = close_refusal(ctx, report, "FB_FD_L2_0", indicated_since_open={"FI_FD_L2_1_a"})
    assert why is not None and "FI_FD_L2_1_a" in why
    # an indicator outside what the close energises says nothing about it
    assert close_refusal(ctx, report, "FB_FD_L2_0", indicated_since_open={"FI_FD_L2_5_a"}) is None
    why = close_refusal(ctx, report, "NO_FD_L2_3_b", isolated={"FD_L2_2"})
    assert why is not None and "FD_L2_2" in why


# --- drilled over OPC UA -----------------------------------------------------------------------


def test_the_drill_reports_what_is_supplied_at_the_end_not_what_the_plan_said(tmp_path):
    from network_models import load_model

    path = tmp_path / "failed.yaml"
    path.write_text(
        "name: failed\nstart: '2026-07-15T19:00'\nduration_min: 6\nevents:\n"
        "  - {at_min: 1, kind: comm_loss, target: FI_FD_L2_2_a}\n"
        "  - {at_min: 1, kind: comm_loss, target: FI_FD_L2_1_b}\n"
        "  - {at_min: 2, kind: cable_fault, target: FD_L2_2}\n", encoding="utf-8")
    model = load_model("jiuke_oasis")
    report = asyncio.run(run_drill(load_drill_scenario(path, model), model,
                                   db_path=tmp_path / "failed.sqlite"))
    assert report.plans[0]["status"] == "restored"  # what the first plan believed
    assert report.status == "partially_restored"  # what the field shows
    assert report.restoration_s is None and report.unsupplied_at_end == ("LD_L2_2",)
    assert report.faults_mislocated == 1
    assert [r["breaker"] for r in report.reclosed_onto_fault] == ["FB_FD_L2_6"]
    assert "reclosed_onto_fault" in {e["kind"] for e in report.events}
