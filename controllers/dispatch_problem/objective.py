"""The dispatch objective: small pure cost terms, each in CNY, weighted as data.

As acnportal composes its objectives from small functions (``tou_energy_cost``,
``demand_charge``, ...), each term here is one function of the typed Parameters and Variables
and the weights of ``ObjectiveWeights``; :func:`objective_terms` names them. The decision record
reports each term's value (``DispatchSolution.terms_cny``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cvxpy as cp
import numpy as np

from controllers.config import ObjectiveWeights
from controllers.dispatch_problem.parameters import DispatchParameters, DispatchVariables
from network_models.registry import Bess


def nonempty_sum(parts: Iterable[cp.Expression]) -> cp.Expression:
    """The sum of ``parts``, 0 when there are none.

    A term over a zero-length variable (``cp.abs`` of the reactive power of no battery) is not
    free: cvxpy then takes its QP path and builds a dense coefficient matrix (30,241 × 400,609,
    90 GiB, on a 1,425-bus SimBench grid without batteries). Terms leave empty variables out."""
    total: cp.Expression = cp.Constant(0.0)
    for part in parts:
        total = total + part
    return total


def energy_and_carbon_cny(
    p: DispatchParameters, v: DispatchVariables, step_h: float
) -> cp.Expression:
    """What the import costs: energy price plus carbon price × intensity, per MWh."""
    return p.import_cost_cny_per_mwh @ v.import_mw * step_h


def peak_cny(v: DispatchVariables, w: ObjectiveWeights) -> cp.Expression:
    """The demand charge on the window's highest import."""
    return w.peak_cny_per_mw * v.peak_import_mw


def curtailment_cny(p: DispatchParameters, v: DispatchVariables, w: ObjectiveWeights,
                    step_h: float) -> cp.Expression:
    """PV energy the sun gave and the plan did not take."""
    if not v.pv_p_mw.size:
        return cp.Constant(0.0)
    return w.curtailment_cny_per_mwh * step_h * cp.sum(p.pv_available_mw - v.pv_p_mw)


def losses_cny(
    p: DispatchParameters, v: DispatchVariables, w: ObjectiveWeights, step_h: float
) -> cp.Expression:
    """Network losses (import plus injections less consumption), an extra weight beside the
    price the import already carries."""
    balance = v.import_mw - p.uncontrolled_load_mw
    for sign, x in ((1, v.pv_p_mw), (1, v.bess_net_mw), (-1, v.ev_site_p_mw)):
        if x.size:  # no empty device variable in any expression (see ``nonempty_sum``)
            balance = balance + sign * cp.sum(x, axis=0)
    return w.losses_cny_per_mwh * step_h * cp.sum(balance)


def reactive_cny(v: DispatchVariables, w: ObjectiveWeights, step_h: float) -> cp.Expression:
    """Reactive power used (for limits, not for pennies of losses)."""
    return w.reactive_cny_per_mvarh * step_h * nonempty_sum(
        cp.sum(cp.abs(q)) for q in (v.pv_q_mvar, v.bess_q_mvar) if q.size)


def ev_shortfall_cny(v: DispatchVariables, w: ObjectiveWeights) -> cp.Expression:
    """Energy below the sites' lower envelopes: each MWh owed late costs in every step it stays
    owed."""
    if not v.ev_shortfall_mwh.size:
        return cp.Constant(0.0)
    return w.ev_shortfall_cny_per_mwh * cp.sum(v.ev_shortfall_mwh)


def ev_deferral_cny(v: DispatchVariables, w: ObjectiveWeights) -> cp.Expression:
    """Energy plugged-in vehicles that should not wait could take in the first step and are not
    given."""
    if not v.ev_deferred_mwh.size:
        return cp.Constant(0.0)
    return w.ev_deferral_cny_per_mwh * cp.sum(v.ev_deferred_mwh)


def violations_cny(v: DispatchVariables, w: ObjectiveWeights) -> cp.Expression:
    """The slacks of the voltage band and the thermal limits."""
    return (w.voltage_violation_cny_per_pu * cp.sum(v.voltage_slack_pu)
            + w.loading_violation_cny_per_mva * cp.sum(v.loading_slack_mva))


def degradation_cny(v: DispatchVariables, w: ObjectiveWeights, bess: Sequence[Bess],
                    step_h: float) -> cp.Expression:
    """Each battery's throughput cost, charge and discharge alike."""
    deg = np.array([b.degradation_cny_per_mwh for b in bess]) * w.degradation
    return step_h * cp.sum(deg @ (v.bess_charge_mw + v.bess_discharge_mw))


def bess_terminal_cny(v: DispatchVariables, w: ObjectiveWeights) -> cp.Expression:
    """Energy below each battery's end-of-window target."""
    return w.bess_terminal_cny_per_mwh * cp.sum(v.bess_terminal_shortfall_mwh)


def bess_out_of_band_cny(v: DispatchVariables, w: ObjectiveWeights) -> cp.Expression:
    """Energy outside each battery's band: each MWh costs in every step it stays out."""
    return w.bess_out_of_band_cny_per_mwh * (
        cp.sum(v.bess_below_band_mwh) + cp.sum(v.bess_above_band_mwh))


def objective_terms(
    p: DispatchParameters,
    v: DispatchVariables,
    w: ObjectiveWeights,
    *,
    bess: Sequence[Bess],
    step_h: float,
) -> dict[str, cp.Expression]:
    """The objective's terms by name, CNY; the objective is their sum."""
    terms = {
        "energy_and_carbon": energy_and_carbon_cny(p, v, step_h),
        "peak": peak_cny(v, w),
        "curtailment": curtailment_cny(p, v, w, step_h),
        "losses": losses_cny(p, v, w, step_h),
        "reactive": reactive_cny(v, w, step_h),
        "ev_shortfall": ev_shortfall_cny(v, w),
        "ev_deferral": ev_deferral_cny(v, w),
        "violations": violations_cny(v, w),
    }
    if len(bess):
        terms["degradation"] = degradation_cny(v, w, bess, step_h)
        terms["bess_terminal"] = bess_terminal_cny(v, w)
        terms["bess_out_of_band"] = bess_out_of_band_cny(v, w)
    return terms
