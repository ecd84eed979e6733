"""One plan's run and its result: what the solve, check and re-linearise loop carries from one
solve to the next (:class:`Replanning`), what a plan returns (:class:`PlanResult`), and the
decision record made of a run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from controllers.bess_soc import read_fleet, soc_issues
from controllers.dispatch.ac_check import binding_records
from controllers.dispatch.sessions import shortfall_kwh, unservable_note
from controllers.dispatch_problem import DispatchSolution
from controllers.ev_charging import SessionState
from controllers.schedule import AcCheck, DecisionRecord, DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle
from network_models.registry import Bess, EvChargingSite


@dataclass(frozen=True, kw_only=True, eq=False)
class PlanResult:
    schedule: DispatchSchedule
    record: DecisionRecord
    ac: AcCheck
    solution: DispatchSolution | None
    # the uncontrolled schedule and its AC check, when the plan started from it (no ``base``)
    baseline: DispatchSchedule | None = None
    baseline_ac: AcCheck | None = None


@dataclass(kw_only=True, eq=False)
class Replanning:
    """What the plan's solve, check and re-linearise loop carries from one solve to the next."""

    base_schedule: DispatchSchedule  # the point the network is linearised around
    base_ac: AcCheck
    schedule: DispatchSchedule  # the latest schedule and its AC check
    ac: AcCheck
    ev_energy_min_mwh: np.ndarray  # the sites' lower envelopes, raised where sessions fell short
    solution: DispatchSolution | None = None
    solve_s: float = 0.0
    iterations: int = 0
    top_up: bool = True  # the split may draw beyond the plan, until that breaks an AC limit
    envelopes_raised: int = 0  # sessions whose site envelope was raised
    limits_readded: int = 0  # limits the screen had left out, added back
    notes: list[str] = field(default_factory=list)


def decision_record(
    run: Replanning,
    bundle: ForecastBundle,
    snapshot: GridSnapshot,
    states: Sequence[SessionState],
    t_start: float,
    *,
    ev_sites: Sequence[EvChargingSite],
    bess: Sequence[Bess],
) -> DecisionRecord:
    """The decision record of the run: what was solved, checked, left owed and noted."""
    solution, ac, notes = run.solution, run.ac, run.notes
    shortfall = shortfall_kwh(bundle, states, run.schedule)
    unservable = unservable_note(ev_sites, bundle, states, shortfall)
    if unservable is not None:
        notes.append(unservable)
    if solution is not None and solution.ok and not ac.passed:
        worst = ac.violations[0]
        notes.append(
            f"after {run.iterations} solves the AC check still fails: {worst.kind} at "
            f"{worst.element} step {worst.step} = {worst.value:.4f} (limit {worst.limit})"
        )
    return DecisionRecord(
        time=bundle.index[0].isoformat(),
        status=solution.status if solution is not None else "not_solved",
        fallback=None,
        objective_cny=solution.objective_cny if solution is not None else float("nan"),
        terms_cny=solution.terms_cny if solution is not None else {},
        solve_s=run.solve_s,
        total_s=time.perf_counter() - t_start,
        relinearisations=max(run.iterations - 1, 0),
        ac_check=ac.summary(),
        ev_shortfall_kwh=shortfall,
        bess_soc_issues=soc_issues(read_fleet(bess, snapshot.bess_soc_frac)),
        notes=tuple(notes),
        binding_constraints=binding_records(solution, bundle.index),
        limits_readded=run.limits_readded,
        ev_envelopes_raised=run.envelopes_raised,
    )
