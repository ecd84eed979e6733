"""The dispatch problem's objective is the sum of its named cost terms, each in CNY."""

from __future__ import annotations

import datetime as dt

import pytest

from controllers.dayahead import sessions_at_start
from controllers.dispatch import Dispatcher
from controllers.snapshot import GridSnapshot
from forecasts.bundle import build
from network_models import load_model

DAY = dt.date(2026, 7, 15)


@pytest.fixture(scope="module")
def plan():
    model = load_model("cigre_mv")
    bundle = build(model, DAY, "6h", seed=0)
    dispatcher = Dispatcher(model, steps=len(bundle.index), step_h=bundle.step_h)
    snapshot = GridSnapshot.initial(model, bundle.start, sessions_at_start(bundle))
    return dispatcher, dispatcher.plan(bundle, snapshot)


def test_the_objective_is_the_sum_of_its_named_terms(plan):
    _, result = plan
    sol = result.solution
    assert sol is not None and sol.ok
    assert sum(sol.terms_cny.values()) == pytest.approx(sol.objective_cny, rel=1e-9, abs=1e-6)
    assert {"energy_and_carbon", "peak", "curtailment", "losses", "reactive", "ev_shortfall",
            "ev_deferral", "violations", "degradation", "bess_terminal",
            "bess_out_of_band"} == set(sol.terms_cny)  # cigre_mv has batteries


def test_the_problem_is_built_once_and_stays_dpp(plan):
    dispatcher, _ = plan
    problem = dispatcher.problem
    assert problem.problem.is_dpp()
    # what the plan solved with is what the parameters hold: a new solve needs no rebuild
    start = problem.last_inputs.window.bess_energy_start_mwh
    assert problem.params.bess_energy_start_mwh.value == pytest.approx(start.clip(0, None))
