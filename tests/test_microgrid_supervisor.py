"""The campus microgrid supervised from field points: islanding, shedding, reconnection.

Campus: BESS_CAMPUS 2 MW / 4 MWh (SoC 0.1-0.95), PV_CAMPUS, LD_CAMPUS_CRITICAL 0.35 MW
(priority 1, critical), LD_CAMPUS_GENERAL 0.85 MW (priority 3); the meter M_CAMPUS_PCC sits on
RMU_L5_6, the grid side of the breaker CB_CAMPUS_PCC.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from controllers.islanding import MicrogridMode
from gridctl.microgrids import MicrogridSupervisor

NIGHT = pd.Timestamp("2026-07-15 21:00", tz="Asia/Shanghai")


def field(*, v_pu: float | None = 1.0, closed: bool = True, soc: float = 0.6,
          critical: float = 0.35, general: float = 0.85, pv: float = 0.0) -> dict:
    values = {("CB_CAMPUS_PCC", "closed"): closed, ("BESS_CAMPUS", "soc_frac"): soc,
              ("LD_CAMPUS_CRITICAL", "p_mw"): critical, ("LD_CAMPUS_GENERAL", "p_mw"): general,
              ("LD_CAMPUS_CRITICAL", "connected"): True, ("LD_CAMPUS_GENERAL", "connected"): True,
              ("PV_CAMPUS", "p_mw"): pv}
    if v_pu is not None:
        values[("M_CAMPUS_PCC", "v_pu")] = v_pu
    return values


@pytest.fixture
def supervisor(jiuke) -> MicrogridSupervisor:
    return MicrogridSupervisor.of(jiuke, "CAMPUS")


def _writes(commands) -> list[tuple[str, str, object]]:
    return [(c.device, c.point, c.value) for c in commands]


def test_it_watches_the_breaker_the_grid_side_voltage_the_soc_the_loads_and_the_pv(supervisor):
    assert set(supervisor.points) == set(field())
    assert supervisor.upstream_meter == "M_CAMPUS_PCC"


def test_a_healthy_grid_asks_for_nothing(supervisor):
    commands, entries = supervisor.respond(NIGHT, field())
    assert commands == [] and entries == []
    assert supervisor.state.mode is MicrogridMode.GRID_CONNECTED


def test_loss_of_mains_at_night_sheds_general_load_to_hold_two_hours(supervisor):
    # 1.2 MW on (0.25 - 0.1) x 4 MWh x 0.95 = 0.57 MWh lasts under half an hour; critical alone
    # (0.35 MW) lasts 1.6 h, still short of 2 h, but critical load is never shed for energy
    supervisor.respond(NIGHT - pd.Timedelta(minutes=1), field(soc=0.25))
    commands, entries = supervisor.respond(NIGHT, field(v_pu=math.nan, closed=False, soc=0.25))
    assert supervisor.state.mode is MicrogridMode.ISLANDED
    assert _writes(commands) == [("LD_CAMPUS_GENERAL", "connect_cmd", False)]
    assert supervisor.islanded_at == NIGHT
    kinds = [e.kind for e in entries]
    assert "shed" in kinds and kinds.count("islanding") >= 2  # BESS forms the grid; figures
    assert supervisor.held_off == {"LD_CAMPUS_GENERAL"}


def _shed_general(**kw) -> dict:
    values = field(general=0.0, **kw)  # the shed load reads 0 MW, its intake open
    values[("LD_CAMPUS_GENERAL", "connected")] = False
    return values


def test_the_breaker_closes_only_after_the_grid_side_was_healthy_for_a_minute(supervisor):
    supervisor.respond(NIGHT - pd.Timedelta(minutes=1), field(soc=0.25))
    supervisor.respond(NIGHT, field(v_pu=math.nan, closed=False, soc=0.25))
    back = NIGHT + pd.Timedelta(minutes=10)
    shed = _shed_general(closed=False, soc=0.24)
    assert supervisor.respond(back, shed)[0] == []
    assert supervisor.respond(back + pd.Timedelta(seconds=59), shed)[0] == []
    commands, entries = supervisor.respond(back + pd.Timedelta(seconds=60), shed)
    assert _writes(commands) == [("CB_CAMPUS_PCC", "close_cmd", True)]
    assert supervisor.state.mode is MicrogridMode.GRID_CONNECTED
    assert supervisor.reconnected_at == back + pd.Timedelta(seconds=60)
    assert any(e.kind == "reconnection" for e in entries)
    # the shed load comes back once the breaker reads closed, not before
    assert supervisor.held_off == {"LD_CAMPUS_GENERAL"}
    commands, _ = supervisor.respond(back + pd.Timedelta(seconds=65), _shed_general(soc=0.24))
    assert _writes(commands) == [("LD_CAMPUS_GENERAL", "connect_cmd", True)]
    assert supervisor.held_off == frozenset()


def test_a_close_the_breaker_did_not_make_leaves_the_island_and_is_tried_again(supervisor):
    supervisor.respond(NIGHT - pd.Timedelta(minutes=1), field(soc=0.25))
    supervisor.respond(NIGHT, field(v_pu=math.nan, closed=False, soc=0.25))
    back = NIGHT + pd.Timedelta(minutes=10)
    shed = _shed_general(closed=False, soc=0.24)
    supervisor.respond(back, shed)
    commands, _ = supervisor.respond(back + pd.Timedelta(seconds=60), shed)
    assert ("CB_CAMPUS_PCC", "close_cmd", True) in _writes(commands)
    # the breaker still reads open: the island goes on, the load stays off
    commands, _ = supervisor.respond(back + pd.Timedelta(seconds=65), shed)
    assert ("LD_CAMPUS_GENERAL", "connect_cmd", True) not in _writes(commands)
    assert supervisor.state.mode is MicrogridMode.ISLANDED
    assert "LD_CAMPUS_GENERAL" in supervisor.held_off
    commands, _ = supervisor.respond(back + pd.Timedelta(seconds=125), shed)
    assert ("CB_CAMPUS_PCC", "close_cmd", True) in _writes(commands)  # a minute later


def test_a_grid_side_meter_without_communication_is_not_a_dead_grid(supervisor):
    values = field()
    del values[("M_CAMPUS_PCC", "v_pu")]  # Bad status: left out of the values
    assert supervisor.respond(NIGHT, values) == ([], [])
    assert supervisor.state.mode is MicrogridMode.GRID_CONNECTED


def test_no_reconnection_while_the_grid_side_is_outside_the_voltage_band(supervisor):
    supervisor.respond(NIGHT, field(v_pu=math.nan, closed=False))
    sagging = field(v_pu=0.90, closed=False)
    for s in (0, 120, 600):
        commands, _ = supervisor.respond(NIGHT + pd.Timedelta(seconds=s), sagging)
        assert ("CB_CAMPUS_PCC", "close_cmd", True) not in _writes(commands)
    assert supervisor.state.mode is MicrogridMode.ISLANDED


def test_a_load_shed_in_the_island_counts_with_its_last_measured_demand(supervisor):
    # with SoC rising (PV at noon), the shed load comes back only if its real demand fits
    supervisor.respond(NIGHT - pd.Timedelta(minutes=1), field(soc=0.25))
    supervisor.respond(NIGHT, field(v_pu=math.nan, closed=False, soc=0.25))
    noon = NIGHT + pd.Timedelta(hours=1)
    commands, _ = supervisor.respond(noon, _shed_general(v_pu=math.nan, closed=False, soc=0.9,
                                                         pv=1.0))
    assert ("LD_CAMPUS_GENERAL", "connect_cmd", True) in _writes(commands)
    assert supervisor.last is not None
    assert supervisor.last.served_p_mw == pytest.approx(0.35 + 0.85)  # not 0.35 + 0


def test_a_device_that_does_not_answer_stops_the_supervisor_deciding_blind(supervisor):
    values = field(v_pu=math.nan, closed=False)
    del values[("BESS_CAMPUS", "soc_frac")]
    assert supervisor.respond(NIGHT, values) == ([], [])
    assert supervisor.state.mode is MicrogridMode.GRID_CONNECTED


def test_started_while_islanded_it_takes_over_and_reconnects_when_the_grid_is_back(supervisor):
    # restarted with the campus islanded, LD_CAMPUS_GENERAL shed before the restart
    islanded = _shed_general(v_pu=1.0, closed=False, soc=0.6)  # too low to take it back
    start = NIGHT
    assert supervisor.respond(start, islanded)[0] == []  # supply back: the minute starts now
    assert supervisor.held_off == {"LD_CAMPUS_GENERAL"}  # counted as shed, not forgotten
    commands, _ = supervisor.respond(start + pd.Timedelta(seconds=60), islanded)
    assert ("CB_CAMPUS_PCC", "close_cmd", True) in _writes(commands)
    commands, _ = supervisor.respond(start + pd.Timedelta(seconds=65), _shed_general(soc=0.6))
    assert _writes(commands) == [("LD_CAMPUS_GENERAL", "connect_cmd", True)]


def test_an_open_breaker_with_the_campus_dead_is_left_alone(supervisor):
    maintenance = field(v_pu=1.0, closed=False, critical=0.0, general=0.0)
    for s in (0, 60, 600):
        assert supervisor.respond(NIGHT + pd.Timedelta(seconds=s), maintenance)[0] == []


def test_an_island_whose_battery_charge_is_unknown_is_judged_as_if_at_its_floor(supervisor):
    # a NaN state of charge (a BMS that reports garbage) is no reason to stop answering: the
    # island is held as if the battery were at its floor, so the general load is shed
    supervisor.respond(NIGHT - pd.Timedelta(minutes=1), field(soc=math.nan))
    commands, _ = supervisor.respond(NIGHT, field(v_pu=math.nan, closed=False, soc=math.nan))
    assert supervisor.state.mode is MicrogridMode.ISLANDED
    assert _writes(commands) == [("LD_CAMPUS_GENERAL", "connect_cmd", False)]
