"""Faults in the simulated Jiuke grid: protection, indicators, supply, islanding (in process)."""

from __future__ import annotations

import pytest

from hil_sim.errors import SimulatorInputError
from hil_sim.simulator import Simulator

EVENING = "2026-07-15 19:00"


@pytest.fixture
def sim(jiuke) -> Simulator:
    return Simulator(jiuke, start=EVENING)


def _indicators(sim: Simulator) -> set[str]:
    return {fi for fi, on in sim.indications.items() if on}


def _close(sim: Simulator, switch: str, closed: bool = True) -> None:
    sim.write((switch, "close_cmd"), closed)
    sim.step()


def test_a_ring_cable_fault_trips_its_feeder_breaker_and_the_indicators_on_the_fault_path(sim):
    # feeder L2 runs from K1_I through RMU_L2_1..3 to its open point; the fault is on the
    # second cable, between RMU_L2_1 and RMU_L2_2
    sim.fault_line("FD_L2_1")
    assert sim.reading("FB_FD_L2_0", "tripped") and not sim.reading("FB_FD_L2_0", "closed")
    assert _indicators(sim) == {"FI_FD_L2_0_b", "FI_FD_L2_1_a"}
    assert set(sim.status.unsupplied_loads) == {"LD_L2_1", "LD_L2_2", "LD_L2_3"}
    assert sim.reading("BESS_1", "p_mw") == 0.0  # on RMU_L2_2: de-energised
    others = [s for s in sim.tripped_switches if s != "FB_FD_L2_0"]
    assert others == []


def test_a_fault_at_the_open_point_sets_only_the_indicators_on_the_fed_side(sim):
    sim.fault_line("FD_L6_3")  # normally open at its RMU_L6_4 end
    assert sim.tripped_switches == {"FB_FD_L6_0"}
    assert _indicators(sim) == {"FI_FD_L6_0_b", "FI_FD_L6_1_a", "FI_FD_L6_1_b",
                                "FI_FD_L6_2_a", "FI_FD_L6_2_b", "FI_FD_L6_3_a"}


def test_a_backbone_cable_fault_trips_both_ends_and_interrupts_no_customer(sim):
    sim.fault_line("BB_B_II_K2_II")
    assert sim.tripped_switches == {"CB_BB_B_II_K2_II_a", "CB_BB_B_II_K2_II_b"}
    assert sim.status.unsupplied_loads == ()
    assert _indicators(sim) == set()
    sim.step(3)
    assert sim.status.converged and sim.status.unsupplied_loads == ()


def test_closing_onto_an_unrepaired_fault_trips_again(sim):
    sim.fault_line("FD_L2_1")
    _close(sim, "FB_FD_L2_0")
    assert sim.reading("FB_FD_L2_0", "tripped") and not sim.reading("FB_FD_L2_0", "closed")
    # closing a load-break switch onto the fault trips the breaker upstream of it
    sim.fault_line("FD_L7_3")  # fed from K3_I through FB_FD_L7_0, open at RMU_L7_4
    _close(sim, "NO_FD_L7_3_b")
    assert "FB_FD_L7_6" in sim.tripped_switches


def test_isolating_the_faulted_section_lets_both_sides_be_restored_without_a_trip(sim):
    sim.fault_line("FD_L2_1")
    for switch in ("RS_FD_L2_1_a", "RS_FD_L2_1_b"):
        _close(sim, switch, closed=False)
    _close(sim, "FB_FD_L2_0")  # upstream section back from its own breaker
    _close(sim, "NO_FD_L2_3_b")  # downstream sections from the neighbouring feeder
    assert not sim.reading("FB_FD_L2_0", "tripped") and sim.reading("FB_FD_L2_0", "closed")
    assert sim.status.unsupplied_loads == ()
    assert sim.status.converged


def test_a_repaired_cable_carries_load_again_once_the_breaker_is_closed(sim):
    sim.fault_line("FD_L4_2")
    assert "LD_L4_3" in sim.status.unsupplied_loads
    sim.clear_fault("FD_L4_2")
    assert "LD_L4_3" in sim.status.unsupplied_loads  # protection's breaker stays open
    _close(sim, "FB_FD_L4_0")
    assert sim.status.unsupplied_loads == ()


def test_losing_a_substation_transformer_trips_its_breaker_and_interrupts_no_customer(sim):
    sim.lose_transformer("A_T1")
    assert sim.tripped_switches == {"CB_A_T1"}
    assert sim.reading("A_T1", "in_service") is False
    assert sim.reading("A_T1", "p_mw") == 0.0
    assert sim.status.unsupplied_loads == ()


def test_losing_a_whole_substation_is_carried_by_the_other_one(sim):
    import_before = sim.status.import_mw
    sim.lose_substation("A")
    assert sim.status.unsupplied_loads == ()
    assert sim.reading("A_T1", "in_service") is False and sim.reading("A_T2", "in_service") is False
    b_mw = sim.reading("B_T1", "p_mw") + sim.reading("B_T2", "p_mw")
    assert b_mw == pytest.approx(sim.status.import_mw, rel=0.02)
    assert sim.status.import_mw == pytest.approx(import_before, rel=0.05)
    sim.clear_fault("A")
    assert sim.reading("A_T1", "in_service") is True


def test_the_campus_islands_on_its_grid_forming_bess_when_its_feeder_is_lost(sim):
    # the campus hangs off RMU_L5_6, fed from K4_II through FB_FD_L5_6
    sim.fault_line("FD_L5_5")
    assert {"FB_FD_L5_6", "CB_CAMPUS_PCC"} <= sim.tripped_switches
    assert sim.reading("LD_CAMPUS_CRITICAL", "energised")
    assert sim.reading("LD_CAMPUS_GENERAL", "energised")
    campus_net_mw = (sim.reading("LD_CAMPUS_CRITICAL", "p_mw")
                     + sim.reading("LD_CAMPUS_GENERAL", "p_mw") - sim.reading("PV_CAMPUS", "p_mw"))
    assert sim.reading("BESS_CAMPUS", "p_mw") == pytest.approx(campus_net_mw, rel=0.05)
    soc = sim.reading("BESS_CAMPUS", "soc_frac")
    sim.step(10)
    assert sim.reading("BESS_CAMPUS", "soc_frac") < soc  # the island lives on its battery
    sim.clear_fault("FD_L5_5")
    _close(sim, "FB_FD_L5_6")
    _close(sim, "CB_CAMPUS_PCC")
    assert not sim.grid.island_live(sim.grid.islands[0])
    assert sim.status.unsupplied_loads == ()


def test_unknown_fault_targets_are_refused_with_what_was_expected(sim):
    with pytest.raises(SimulatorInputError, match="no line 'FD_L9_9'"):
        sim.fault_line("FD_L9_9")
    with pytest.raises(SimulatorInputError, match="expected one of A, B"):
        sim.lose_substation("C")
    with pytest.raises(SimulatorInputError, match="expected a PV system, BESS"):
        sim.trip_device("LD_L1_1")
    with pytest.raises(SimulatorInputError, match="nothing to clear on 'BESS_1'"):
        sim.clear_fault("BESS_1")
