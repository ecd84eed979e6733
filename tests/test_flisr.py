"""FLISR on Jiuke Oasis: location on every feeder section, isolation, restoration within limits.

Protection and indicator reports are derived from a fault location by topology
(``expected_protection_response``); every plan is checked again with pandapower's own runpp
(an engine independent of the power-grid-model one the plan used).
"""

from __future__ import annotations

import dataclasses

import pandapower as pp
import pytest

from controllers.flisr import (
    FaultKind,
    FlisrContext,
    OperatingValues,
    ProtectionReport,
    RestorationPlan,
    StepAction,
    expected_protection_response,
    plan_restoration,
    report_from_points,
)
from network_models import GridModel
from network_models.ac_checks import PEAK, AcLimits, apply_operating_point
from network_models.errors import InputError
from network_models.registry import Load
from network_models.topology import energised_buses

RING_L1 = [f"FD_L1_{i}" for i in range(7)]
RING_L5 = [f"FD_L5_{i}" for i in range(7)]
RMUS_L1 = [f"RMU_L1_{i}" for i in range(1, 7)]
LIMITS = AcLimits()


@pytest.fixture(scope="module")
def ctx(jiuke: GridModel) -> FlisrContext:
    return FlisrContext.of(jiuke)


def plan_for(model: GridModel, ctx: FlisrContext, **fault: str) -> RestorationPlan:
    report = expected_protection_response(model, context=ctx, **fault)
    return plan_restoration(model, report, context=ctx)


def solved_final_state(model: GridModel, plan: RestorationPlan) -> pp.pandapowerNet:
    """The plan's final state at peak, solved by pandapower's runpp."""
    net = model.copy_net()
    apply_operating_point(model, net, PEAK)
    for device in model.registry.switches:
        net.switch.at[device.element.index, "closed"] = plan.final_switch_closed[device.id]
    for shed in plan.shed:
        row = model.registry[shed.device].element.index
        net.load.loc[row, ["p_mw", "q_mvar"]] = 0.0
    for trafo in plan.location.trafos:
        if trafo in {t.id for t in model.registry.substation_transformers}:
            net.trafo.loc[net.trafo.name == trafo, "in_service"] = False
    pp.runpp(net, numba=False)
    return net


def assert_within_limits(net: pp.pandapowerNet) -> None:
    vm = net.res_bus.vm_pu.dropna()
    assert LIMITS.v_min_pu <= vm.min() and vm.max() <= LIMITS.v_max_pu
    assert net.res_line.loading_percent.fillna(0).max() <= LIMITS.max_line_loading_pct
    assert net.res_trafo.loading_percent.fillna(0).max() <= LIMITS.max_trafo_loading_pct


# --- the forward rule ------------------------------------------------------------------------


def test_fault_on_a_feeder_cable_trips_its_feeder_breaker_and_the_indicators_before_it(jiuke, ctx):
    report = expected_protection_response(jiuke, line="FD_L1_2", context=ctx)
    assert report.tripped_breakers == {"FB_FD_L1_0"}
    # fault current passes FD_L1_0 and FD_L1_1 whole and enters FD_L1_2 at RMU_L1_2
    assert report.fault_indicators == {
        "FI_FD_L1_0_b", "FI_FD_L1_1_a", "FI_FD_L1_1_b", "FI_FD_L1_2_a",
    }
    assert report.switch_closed["FB_FD_L1_0"] is False


def test_backbone_cable_fault_opens_both_ends_by_differential_protection(jiuke, ctx):
    report = expected_protection_response(jiuke, line="BB_B_II_K4_II", context=ctx)
    assert report.tripped_breakers == {"CB_BB_B_II_K4_II_a", "CB_BB_B_II_K4_II_b"}
    assert report.fault_indicators == frozenset()


# --- location --------------------------------------------------------------------------------


@pytest.mark.parametrize("line", RING_L1 + RING_L5)
def test_fault_on_every_cable_of_a_ring_is_located_in_its_own_section(jiuke, ctx, line):
    plan = plan_for(jiuke, ctx, line=line)
    assert plan.location.kind is FaultKind.FEEDER_SECTION
    assert plan.location.lines == (line,)
    assert plan.location.indicator_mismatches == ()


@pytest.mark.parametrize("bus", RMUS_L1)
def test_fault_at_every_ring_main_unit_of_a_ring_is_located_in_its_section(jiuke, ctx, bus):
    plan = plan_for(jiuke, ctx, bus=bus)
    assert plan.location.buses[0] == bus
    assert plan.location.lines == ()


def test_location_lies_between_the_last_indicator_with_fault_current_and_the_first_without(
    jiuke, ctx
):
    location = plan_for(jiuke, ctx, line="FD_L1_4").location  # fed from K2_II, the far side
    assert location.last_indicator_with_fault == "FI_FD_L1_4_b"
    assert location.first_indicators_without_fault == ("FI_FD_L1_4_a",)


def test_a_failed_indicator_is_named_and_the_section_still_found(jiuke, ctx):
    report = expected_protection_response(jiuke, line="FD_L1_2", context=ctx)
    failed = dataclasses.replace(
        report, fault_indicators=report.fault_indicators - {"FI_FD_L1_0_b"}
    )
    location = plan_restoration(jiuke, failed, context=ctx).location
    assert location.lines == ("FD_L1_2",)
    assert location.indicator_mismatches == ("FI_FD_L1_0_b",)


# --- isolation and restoration ---------------------------------------------------------------


@pytest.mark.parametrize("line", RING_L1 + RING_L5)
def test_no_plan_closes_a_switch_onto_the_faulted_section(jiuke, ctx, line):
    plan = plan_for(jiuke, ctx, line=line)
    bounding = set(plan.location.bounding_switches)
    assert bounding  # the section is bounded by switches
    assert not bounding & set(plan.closed_switches)
    assert not any(plan.final_switch_closed[s] for s in bounding)


@pytest.mark.parametrize("line", RING_L1 + RING_L5)
def test_every_healthy_section_is_restored_within_limits_at_peak(jiuke, ctx, line):
    plan = plan_for(jiuke, ctx, line=line)
    assert plan.status == "restored"
    assert plan.unserved == () and plan.shed == ()
    assert {r.device for r in plan.restored} == {r.device for r in plan.interrupted}
    assert plan.check.ok
    assert_within_limits(solved_final_state(jiuke, plan))


def test_restoration_closes_one_switch_per_dead_part(jiuke, ctx):
    # a fault mid-ring leaves one dead part beyond it: isolate (2), re-close the breaker, tie
    plan = plan_for(jiuke, ctx, line="FD_L1_1")
    assert [(s.action, s.device) for s in plan.steps] == [
        (StepAction.OPEN, "RS_FD_L1_1_a"),
        (StepAction.OPEN, "RS_FD_L1_1_b"),
        (StepAction.CLOSE, "FB_FD_L1_0"),
        (StepAction.CLOSE, "NO_FD_L1_3_b"),
    ]


def test_the_faulted_section_is_dead_after_the_plan(jiuke, ctx):
    plan = plan_for(jiuke, ctx, bus="RMU_L1_3")
    net = solved_final_state(jiuke, plan)
    live = {str(net.bus.at[b, "name"]) for b in energised_buses(net)}
    assert "RMU_L1_3" not in live and "LV_L1_3" not in live
    assert {r.device for r in plan.unserved} == {"LD_L1_3"}


def short_alternative(model: GridModel, cable: str, max_i_ka: float) -> GridModel:
    net = model.copy_net()
    net.line.loc[net.line.name == cable, "max_i_ka"] = max_i_ka
    return dataclasses.replace(model, net=net)


def test_load_is_shed_by_priority_when_the_alternative_supply_is_short(jiuke):
    # FD_L1_6 rated 200 A carries its own half ring (about 140 A) but not the whole ring
    model = short_alternative(jiuke, "FD_L1_6", 0.2)
    plan = plan_for(model, FlisrContext.of(model), line="FD_L1_0")
    assert plan.status == "partially_restored" and plan.check.ok
    assert {r.device for r in plan.shed} == {"EV_L1_1", "LD_L1_1", "LD_L1_2"}
    assert {r.device for r in plan.restored} == {"LD_L1_3"}  # commerce, priority 2 beats 3
    shed_steps = [s.order for s in plan.steps if s.action is StepAction.SHED]
    assert max(shed_steps) < plan.steps[-1].order  # shed before the tie closes
    assert_within_limits(solved_final_state(model, plan))


def test_critical_load_is_restored_while_others_are_shed(jiuke):
    # fault at the K2_I head of ring L3: the data centre (2 MW, critical) is in the dead part
    model = short_alternative(jiuke, "FD_L3_0", 0.3)
    plan = plan_for(model, FlisrContext.of(model), line="FD_L3_6")
    assert "LD_DC_1" in {r.device for r in plan.restored}
    assert plan.shed and not any(r.critical for r in plan.shed)
    worst_restored = max(r.priority for r in plan.restored if r.kind == "load")
    assert all(r.priority is None or r.priority >= worst_restored for r in plan.shed)
    assert_within_limits(solved_final_state(model, plan))


def test_present_load_values_are_what_restoration_is_checked_against(jiuke, ctx):
    # at 30 % load the short cable of the priority test carries everything
    model = short_alternative(jiuke, "FD_L1_6", 0.2)
    light = OperatingValues(
        p_mw={d.id: 0.3 * d.p_peak_mw for d in jiuke.registry.of_type(Load)}
    )
    report = expected_protection_response(model, line="FD_L1_0")
    plan = plan_restoration(model, report, operating=light)
    assert plan.status == "restored" and plan.shed == ()


# --- backbone and substations ----------------------------------------------------------------


def test_backbone_cable_fault_interrupts_nobody_and_needs_no_switching(jiuke, ctx):
    plan = plan_for(jiuke, ctx, line="BB_A_I_K1_I")
    assert plan.location.kind is FaultKind.BACKBONE_CABLE
    assert plan.status == "nothing_to_restore" and plan.interrupted == ()
    assert plan.steps == () and plan.check.ok


def test_substation_transformer_loss_is_carried_within_limits(jiuke, ctx):
    report = ProtectionReport(
        tripped_breakers={"CB_A_T1"}, switch_closed={"CB_A_T1": False},
        transformers_out={"A_T1"},
    )
    plan = plan_restoration(jiuke, report, context=ctx)
    assert plan.location.kind is FaultKind.SUBSTATION_TRANSFORMER
    assert plan.interrupted == () and plan.check.ok
    assert not plan.closed_switches  # the tripped breaker of a lost transformer stays open
    assert_within_limits(solved_final_state(jiuke, plan))


def test_loss_of_a_whole_substation_is_carried_by_the_other(jiuke, ctx):
    plan = plan_restoration(
        jiuke, ProtectionReport(transformers_out={"B_T1", "B_T2"}), context=ctx
    )
    assert plan.location.kind is FaultKind.SUBSTATION
    assert set(plan.opened_switches) == {"CB_B_T1", "CB_B_T2"}  # no backfeed into dead HV
    assert plan.interrupted == () and plan.check.ok
    assert_within_limits(solved_final_state(jiuke, plan))


# --- the campus microgrid and field input ----------------------------------------------------


def test_an_islanded_microgrid_is_left_to_the_islanding_controller(jiuke, ctx):
    before = {"CB_CAMPUS_PCC": False}  # islanded before the fault on its feeder
    report = expected_protection_response(
        jiuke, line="FD_L5_6", switch_closed=before, context=ctx
    )
    plan = plan_restoration(jiuke, report, context=ctx)
    assert "CB_CAMPUS_PCC" not in plan.closed_switches
    assert not {"LD_CAMPUS_CRITICAL", "LD_CAMPUS_GENERAL"} & {r.device for r in plan.interrupted}
    assert plan.status == "restored"


def test_report_from_points_reads_what_the_field_publishes(jiuke, ctx):
    expected = expected_protection_response(jiuke, line="FD_L2_4", context=ctx)
    points = {(sw, "closed"): closed for sw, closed in expected.switch_closed.items()}
    points |= {(sw, "tripped"): sw in expected.tripped_breakers
               for sw in expected.switch_closed if sw.startswith(("FB_", "CB_"))}
    points |= {(fi.id, "fault_detected"): fi.id in expected.fault_indicators
               for fi in jiuke.registry.fault_indicators}
    points |= {(t.id, "in_service"): True for t in jiuke.registry.substation_transformers}
    assert report_from_points(jiuke, points) == expected


def test_a_report_naming_an_unknown_switch_is_refused_naming_it(jiuke, ctx):
    report = ProtectionReport(tripped_breakers={"FB_NOWHERE"})
    with pytest.raises(InputError, match="FB_NOWHERE") as err:
        plan_restoration(jiuke, report, context=ctx)
    assert err.value.field == "tripped_breakers"


def test_no_trip_means_no_fault_and_no_switching(jiuke, ctx):
    plan = plan_restoration(jiuke, ProtectionReport(), context=ctx)
    assert plan.status == "no_fault" and plan.steps == ()
