"""Self-healing in the loop: a FLISR plan that sheds load becomes field writes the simulator obeys.

The case is the shedding case of ``tests/test_flisr.py``: FD_L1_6 (the K2_II end of ring L1)
rated 200 A, a fault on FD_L1_0 at the K1_I head. The plan, checked at peak, sheds EV_L1_1,
LD_L1_1 and LD_L1_2 before it closes the normally-open point. The simulator runs a hot August
afternoon, when the ring's loads come close to their peak.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from gridctl.self_healing import FaultResponder, FlisrResponse, SwitchCommand
from hil_sim.engine import Simulator
from hil_sim.setpoints import WriteCheck
from network_models import GridModel
from network_models.ac_checks import AcLimits

SHORT_CABLE = "FD_L1_6"
FAULTED_CABLE = "FD_L1_0"
SUMMER_PEAK = "2026-08-03 15:30"  # the busiest half hour of ring L1 in the simulator's August
LIMITS = AcLimits()  # 0.93-1.07 pu, 100 % thermal
SHED = {"EV_L1_1": ("p_site_limit_kw", 0.0), "LD_L1_1": ("connect_cmd", False),
        "LD_L1_2": ("connect_cmd", False)}


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
    assert first.handled == {"FB_FD_L4_0"}
    restarted = FaultResponder(jiuke)
    restarted.resume(first.handled)  # what the historian kept of the first run
    again = restarted.respond(sim.time, values)
    assert again.plan is None and again.commands == ()
