"""What changes between solves of the dispatch problem, as typed records in the operator's units.

Two parts: :class:`WindowInputs`, what the window holds (forecasts, prices, the measured state
and the EV envelopes), made once per plan; :class:`BasePoint`, the schedule and its AC solution
the network is linearised around, new at every re-linearisation. Arrays are (devices, steps)
unless noted. Sign conventions: PV and BESS powers are injections (BESS discharge positive), EV
site power is consumption, import is power drawn from the upstream grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, kw_only=True, eq=False)
class WindowInputs:
    """The window's forecasts, prices, measured state and EV envelopes."""

    pv_available_mw: np.ndarray  # what the sun gives each PV system
    pv_q_max_mvar: np.ndarray  # reactive power each inverter has left beside that
    ev_site_p_max_mw: np.ndarray  # what each EV site's plugged-in vehicles can draw
    ev_energy_min_mwh: np.ndarray  # each site's energy by the end of each step: at least
    ev_energy_max_mwh: np.ndarray  # ... and at most
    ev_first_step_floor_mwh: np.ndarray  # (n_ev,) what plugged-in vehicles can take in step 1
    bess_energy_start_mwh: np.ndarray  # (n_bess,) as measured (where it is assumed if unknown)
    bess_energy_min_mwh: np.ndarray  # (n_bess,) hard lower bound: floor, or lower if measured
    bess_energy_max_mwh: np.ndarray  # (n_bess,) hard upper bound: soc_max, or higher if measured
    bess_p_max_mw: np.ndarray  # (n_bess,) most charge or discharge power, 0 when not dispatchable
    bess_energy_target_mwh: np.ndarray  # (n_bess,) at the end of the window
    import_cost_cny_per_mwh: np.ndarray  # (steps,) energy price + carbon price × intensity
    uncontrolled_load_mw: np.ndarray  # (steps,) loads only, for the losses term


@dataclass(frozen=True, kw_only=True, eq=False)
class BasePoint:
    """The point the network is linearised around: a schedule and its AC power flow."""

    pv_p_mw: np.ndarray
    pv_q_mvar: np.ndarray
    bess_p_mw: np.ndarray
    bess_q_mvar: np.ndarray
    ev_site_p_mw: np.ndarray
    vm_pu: np.ndarray  # (monitored buses, steps)
    flow_p_mw: np.ndarray  # (monitored branches, steps), at each branch's from end
    flow_q_mvar: np.ndarray
    v_from_pu: np.ndarray  # (monitored branches, steps) voltage at each branch's from end
    import_mw: np.ndarray  # (steps,)


@dataclass(frozen=True, kw_only=True, eq=False)
class DispatchInputs:
    """Everything that changes between solves: the window and the base point."""

    window: WindowInputs
    base: BasePoint
