"""Self-healing in the loop: a FLISR plan that sheds load becomes field writes the simulator obeys.

The case is the shedding case of ``tests/test_flisr.py``: FD_L1_6 (the K2_II end of ring L1)
rated 200 A, a fault on FD_L1_0 at the K1_I head. The plan, checked at peak, sheds EV_L1_1,
LD_L1_1 and LD_L1_2 before it closes the normally-open point. The simulator runs a hot August
afternoon, when the ring's loads come close to their peak. Once the cable is repaired and the
operator has switched the ring back to normal, the responder reconnects what it shed, as far as
an AC check of the present switch state allows.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from gridctl.self_healing import FaultResponder, FlisrResponse, SwitchCommand
from hil_sim.setpoints import WriteCheck
from hil_sim.simulator import Simulator
from network_models import GridModel
from network_models.ac_checks import AcLimits

SHORT_CABLE = "FD_L1_6"
FAULTED_CABLE = "FD_L1_0"
SUMMER_PEAK = "2026-08-03 15:30"  # the busiest half hour of ring L1 in the simulator's August
LIMITS = AcLimits()  # 0.93-1.07 pu, 100 % thermal
SHED = {"EV_L1_1": ("p_site_limit_kw", 0.0), "LD_L1_1": ("connect_cmd", False),
        "LD_L1_2": ("connect_cmd", False)}
# the operator after the repair: feeder breaker and isolating switch closed, normally-open point
# open again (the ring as it runs normally)
NORMAL_SWITCHING = {"FB_FD_L1_0": True, "RS_FD_L1_0_b": True, "NO_FD_L1_3_b": False}


@pytest.fixture(scope="module")
def short_ring(jiuke: GridModel) -> GridModel:
    # as in test_flisr.py: 200 A carries the cable's own half ring, not the whole ring
    net = jiuke.copy_net()
    net.line.loc[net.line.name == SHORT_CABLE, "max_i_ka"] = 0.2
    return dataclasses.replace(jiuke, net=net)


def _faulted(model: GridModel) -> Simulator:
    sim = Simulator(model, start=SUMMER_PEAK)
    sim.fault_line(FAULTED_CABLE)
    return sim


@pytest.fixture(scope="module")
def response(short_ring: GridModel) -> FlisrResponse:
    sim = _faulted(short_ring)
    responder = FaultResponder(short_ring)
    return responder.respond(sim.time, {k: sim.readings[k] for k in responder.points})


def _apply(sim: Simulator, commands: list[SwitchCommand]) -> None:
    for command in commands:  # in order, as the runtime writes them
        assert sim.write(command.key, command.value) == WriteCheck.OK, command
    sim.step()


def _violations(sim: Simulator, limits: AcLimits = LIMITS) -> list[tuple[str, float]]:
    """Energised buses outside the voltage band, branches above their thermal limit."""
    view = sim.network_view()
    found = [(bus, v) for bus, v in zip(view["bus_names"], view["bus_vm_pu"], strict=True)
             if v > 0 and not limits.v_min_pu <= v <= limits.v_max_pu]
    for kind, limit in (("line", limits.max_line_loading_pct),
                        ("trafo", limits.max_trafo_loading_pct)):
        found += [(name, x) for name, x in zip(view[f"{kind}_names"],
                                               view[f"{kind}_loading_pct"], strict=True)
                  if not math.isnan(x) and x > limit]
    return found


def _loading_pct(sim: Simulator, line: str) -> float:
    view = sim.network_view()
    return view["line_loading_pct"][view["line_names"].index(line)]


def test_shedding_becomes_load_disconnection_and_ev_curtailment_before_the_tie_closes(
        response):
    commands = list(response.commands)
    shed = [k for k, c in enumerate(commands) if c.action == "shed"]
    closes = [k for k, c in enumerate(commands) if c.action == "close"]
    assert {commands[k].device: (commands[k].point, commands[k].value) for k in shed} == SHED
    assert closes and max(shed) < min(closes)
    assert [commands[k].key for k in closes] == [("NO_FD_L1_3_b", "close_cmd")]


def test_a_shed_load_is_on_the_timeline_as_a_disconnection(response):
    shed = {e.device: e.text for e in response.timeline if e.kind == "shed"}
    assert set(shed) == set(SHED)
    assert shed["LD_L1_1"].startswith("disconnect LD_L1_1: ")
    assert shed["EV_L1_1"].startswith("curtail EV_L1_1 to 0 kW: ")
    assert "not_controllable" not in {e.kind for e in response.timeline}


def test_the_commands_applied_in_order_restore_the_ring_within_limits(short_ring, response):
    sim = _faulted(short_ring)
    _apply(sim, list(response.commands))
    assert sim.status.converged
    assert _violations(sim) == []
    assert set(sim.status.unsupplied_loads) == {"LD_L1_1", "LD_L1_2"}  # shed, the rest back


def test_closing_the_tie_without_the_shedding_overloads_the_short_cable(short_ring, response):
    # why the shedding must reach the field: the whole ring is more than 200 A can carry
    sim = _faulted(short_ring)
    _apply(sim, [c for c in response.commands if c.action != "shed"])
    assert sim.status.unsupplied_loads == ()
    assert _loading_pct(sim, SHORT_CABLE) > 100.0


def test_a_restarted_responder_does_not_plan_again_for_a_trip_already_answered(jiuke):
    sim = Simulator(jiuke, start="2026-07-15 19:00")
    sim.fault_line("FD_L4_2")
    first = FaultResponder(jiuke)
    values = {k: sim.readings[k] for k in first.points}
    assert first.respond(sim.time, values).plan is not None
    assert first.handled == {"FB_FD_L4_0#1"}  # the breaker and its trip counter
    restarted = FaultResponder(jiuke)
    restarted.resume(first.handled)  # what the historian kept of the first run
    again = restarted.respond(sim.time, values)
    assert again.plan is None and again.commands == ()


# --- reconnection of what was shed ------------------------------------------------------------


def _points(sim: Simulator, responder: FaultResponder) -> dict:
    return {k: sim.readings[k] for k in responder.points}


def _carried_out(model: GridModel) -> tuple[Simulator, FaultResponder]:
    """The faulted ring after the responder's plan (shedding, the tie closed) reached the field."""
    sim = _faulted(model)
    responder = FaultResponder(model)
    _apply(sim, list(responder.respond(sim.time, _points(sim, responder)).commands))
    return sim, responder


def _repaired(model: GridModel, *, also_off: tuple[str, ...] = ()
              ) -> tuple[Simulator, FlisrResponse]:
    """The responder's answer once the cable is repaired and the ring switched back to normal;
    ``also_off``: loads the operator disconnected by hand meanwhile."""
    sim, responder = _carried_out(model)
    for load in also_off:
        assert sim.write((load, "connect_cmd"), False) == WriteCheck.OK
    sim.clear_fault(FAULTED_CABLE)
    for switch, closed in NORMAL_SWITCHING.items():
        assert sim.write((switch, "close_cmd"), closed) == WriteCheck.OK
    sim.step()
    return sim, responder.respond(sim.time, _points(sim, responder))


@pytest.fixture(scope="module")
def repaired(short_ring: GridModel) -> tuple[Simulator, FlisrResponse]:
    return _repaired(short_ring)


@pytest.fixture(scope="module")
def fault_still_there(short_ring: GridModel) -> tuple[Simulator, FlisrResponse]:
    """The answer to a protection change while the tie still carries the ring: the operator
    resets the ring's fault indicators, the cable is still faulted."""
    sim, responder = _carried_out(short_ring)
    for indicator in ("FI_FD_L1_0_b", "FI_FD_L1_1_a"):
        assert sim.write((indicator, "reset_cmd"), True) == WriteCheck.OK
    sim.step()
    return sim, responder.respond(sim.time, _points(sim, responder))


def test_after_the_repair_every_shed_load_and_ev_site_is_reconnected(short_ring, repaired):
    _, response = repaired
    site_max_kw = short_ring.registry["EV_L1_1"].p_site_max_kw
    assert {c.device: (c.point, c.value) for c in response.commands} == {
        "LD_L1_1": ("connect_cmd", True), "LD_L1_2": ("connect_cmd", True),
        "EV_L1_1": ("p_site_limit_kw", site_max_kw)}
    assert {c.action for c in response.commands} == {"restore"}
    study = response.reconnection
    assert study is not None and study.check is not None and study.check.ok


def test_ev_charging_is_reconnected_after_the_customer_loads(repaired):
    _, response = repaired
    assert [c.device for c in response.commands][-1] == "EV_L1_1"


def test_each_reconnection_is_on_the_timeline_with_its_ac_check(repaired):
    _, response = repaired
    on = [e for e in response.timeline if e.kind == "load_on"]
    assert [e.device for e in on] == [c.device for c in response.commands]
    assert on[0].text.startswith(f"reconnect {on[0].device}: supply restored and the AC check "
                                 "holds (min V ")


def test_the_reconnections_applied_in_the_simulator_keep_the_limits(repaired):
    sim, response = repaired  # the only test that changes this simulator
    _apply(sim, list(response.commands))
    assert sim.status.converged
    assert sim.status.unsupplied_loads == ()
    assert _violations(sim) == []


def test_while_the_tie_carries_the_ring_the_ac_study_refuses_what_overloads_the_short_cable(
        fault_still_there):
    _, response = fault_still_there
    study = response.reconnection
    assert study is not None  # the check ran: there is something shed and the points changed
    assert set(study.candidates) == set(SHED)  # supplied through the tie, so studied
    assert study.reconnected == () and response.commands == ()
    assert study.refused is not None
    assert ("line_loading", SHORT_CABLE) in {(v.kind, v.element) for v in study.refused.violations}


def test_what_the_responder_returns_while_the_fault_is_there_keeps_the_short_cable_in_rating(
        fault_still_there):
    sim, response = fault_still_there  # the only test that changes this simulator
    _apply(sim, list(response.commands))
    assert _loading_pct(sim, SHORT_CABLE) <= 100.0


def test_a_load_the_responder_did_not_shed_is_not_reconnected(short_ring):
    sim, response = _repaired(short_ring, also_off=("LD_L1_3",))  # off by the operator's hand
    assert "LD_L1_3" not in {c.device for c in response.commands}
    _apply(sim, list(response.commands))
    assert "LD_L1_3" in sim.status.unsupplied_loads


def test_the_same_switch_state_is_studied_once(short_ring):
    sim, responder = _carried_out(short_ring)
    values = _points(sim, responder)
    assert responder.respond(sim.time, values).reconnection is not None
    # an indicator flag changes no power flow: the answer would be the same
    values[("FI_FD_L1_6_a", "fault_detected")] = True
    assert responder.respond(sim.time, values).reconnection is None


def test_a_new_trip_is_planned_for_first_and_the_sheds_reconsidered_at_the_next_call(short_ring):
    sim, responder = _carried_out(short_ring)
    sim.clear_fault(FAULTED_CABLE)
    for switch, closed in NORMAL_SWITCHING.items():
        sim.write((switch, "close_cmd"), closed)
    sim.step()
    sim.fault_line("FD_L4_2")  # before the responder hears of the switching back
    first = responder.respond(sim.time, _points(sim, responder))
    assert first.plan is not None and first.reconnection is None
    assert "restore" not in {c.action for c in first.commands}
    later = responder.respond(sim.time, _points(sim, responder))
    assert {c.device for c in later.commands if c.action == "restore"} == set(SHED)


def test_a_restarted_responder_told_what_was_shed_reconnects_it_after_the_repair(short_ring):
    sim, first = _carried_out(short_ring)
    restarted = FaultResponder(short_ring)
    restarted.resume(first.handled, first.shed)  # what the historian kept of the first run
    sim.clear_fault(FAULTED_CABLE)
    for switch, closed in NORMAL_SWITCHING.items():
        sim.write((switch, "close_cmd"), closed)
    sim.step()
    response = restarted.respond(sim.time, _points(sim, restarted))
    assert {c.device for c in response.commands if c.action == "restore"} == set(SHED)
