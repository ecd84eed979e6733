"""The solver chain of the dispatch problem: the configured solver, then others on a numerical
failure (the problem is an LP), with the settings of a dispatch decision."""

from __future__ import annotations

import warnings

import cvxpy as cp

from controllers.config import DispatchConfig

# qdldl was 3x faster than Clarabel's default here; tolerances are those of a dispatch decision
# (0.01 CNY on a 400 kCNY day), not of a proof
_SOLVER_OPTIONS: dict[str, dict[str, object]] = {
    "CLARABEL": {
        "direct_solve_method": "qdldl",
        "tol_gap_abs": 1e-5,
        "tol_gap_rel": 1e-6,
        "tol_feas": 1e-7,
        "tol_ktratio": 1e-6,
        "max_iter": 100,
    },
    "HIGHS": {"warm_start": False},  # cvxpy's warm start made a re-solve 60x slower
}
# after a numerical failure: Clarabel as it comes, then HiGHS (the problem is an LP)
_RETRIES: tuple[tuple[str, dict[str, object]], ...] = (
    ("CLARABEL", {"max_iter": 200}),
    ("HIGHS", {"warm_start": False}),
)

SOLVED = ("optimal", "optimal_inaccurate")


def solver_attempts(config: DispatchConfig) -> list[tuple[str, dict[str, object]]]:
    """The configured solver with its settings, then, only for a solver that is installed
    and failed numerically, others that solve the same LP: an interior point method can
    stop short with a numerical error close to the optimum (seen: Clarabel with qdldl at a
    relative gap of 1e-4, on a day it solves at once when asked again)."""
    first = (config.solver, _SOLVER_OPTIONS.get(config.solver, {}))
    if config.solver not in cp.installed_solvers():
        return [first]  # a configuration error: said as such, not papered over
    others = [(name, opts) for name, opts in _RETRIES
              if name in cp.installed_solvers() and (name, opts) != first]
    limit = config.solver_time_limit_s
    if limit is None:
        return [first, *others]
    # both solvers take the option by this name; a solve cut short is not retried (the
    # operator's time is spent), it is a plan that did not come
    return [(first[0], {**first[1], "time_limit": float(limit)})]


def solve_in_turn(problem: cp.Problem, config: DispatchConfig) -> tuple[str, tuple[str, ...]]:
    """Solve ``problem`` with each of :func:`solver_attempts` until one solves it.

    Returns the last status and what failed before it (everything, if nothing solved)."""
    status, failed = "not_solved", []
    for solver, opts in solver_attempts(config):
        try:
            with warnings.catch_warnings():
                # "may be inaccurate": the status says it, and the record carries it
                warnings.filterwarnings("ignore", "Solution may be inaccurate")
                problem.solve(solver=solver, **opts)
            status = problem.status
        except cp.error.SolverError as exc:
            status = f"solver_error: {exc}"
        if status in SOLVED:
            break
        failed.append(f"{solver}: {status}")
    return status, tuple(failed)
