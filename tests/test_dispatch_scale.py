"""The dispatch problem scales: no dense intermediate, and the network it carries is reduced
exactly to the buses something injects at or is watched at."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from controllers.config import DispatchConfig
from controllers.dispatch import Dispatcher
from controllers.dispatch_problem import DispatchProblem
from controllers.network_reduction import reduce_network
from controllers.screening import MonitoredLimits
from network_models import load_model

STEPS = 8


@pytest.fixture(scope="module")
def no_bess():
    """A SimBench MV grid as it comes: 133 PV systems, no battery, no EV site."""
    model = load_model("simbench:1-MV-urban--0-sw")
    assert not model.registry.bess and not model.registry.ev_sites and model.registry.pv
    return model


def _canonical(problem: DispatchProblem) -> dict:
    data, _, _ = problem.problem.get_problem_data(cp.CLARABEL)
    return data


def test_a_grid_without_batteries_builds_a_sparse_lp(no_bess):
    """An empty battery variable in a term (``cp.abs`` of no battery's reactive power) sent
    cvxpy down its QP path, to a dense coefficient matrix (90 GiB at 1,425 buses): the problem
    is an LP, its data as sparse as the network's."""
    dispatcher = Dispatcher(no_bess, steps=STEPS)
    problem = dispatcher.problem
    assert problem.problem.is_dpp()
    assert all(x.size for x in problem.problem.variables())  # no empty variable anywhere
    data = _canonical(problem)
    a = data["A"]
    assert sp.issparse(a)
    assert data.get("P") is None or data["P"].nnz == 0  # linear: no quadratic term
    n_rows, n_vars = a.shape
    # a few entries per row: the Jacobian's ~6 per balance row, 2-3 for the rest
    assert a.nnz <= 12 * (n_rows + n_vars)
    assert not any(isinstance(c, cp.constraints.PSD) for c in problem.problem.constraints)


def test_the_problem_grows_linearly_with_the_horizon(no_bess):
    """Twice the steps, twice the rows, variables and non-zeros (no term couples all steps
    with all states)."""
    config = DispatchConfig()
    dispatcher = Dispatcher(no_bess, steps=STEPS)
    sizes = []
    for steps in (STEPS, 2 * STEPS):
        problem = DispatchProblem(no_bess, dispatcher.lin, steps=steps, step_h=0.25,
                                  config=config, limits=dispatcher.limits)
        a = _canonical(problem)["A"]
        sizes.append(np.array([a.shape[0], a.shape[1], a.nnz], dtype=float))
    ratio = sizes[1] / sizes[0]
    assert np.all((ratio > 1.9) & (ratio < 2.1)), ratio


def test_the_reduced_network_gives_the_kept_states_of_the_full_one(no_bess):
    """Kron's reduction is exact: for any injections at the kept buses, the reduced equations
    give the same voltages and angles there as the full ones."""
    dispatcher = Dispatcher(no_bess, steps=STEPS)
    lin = dispatcher.lin
    problem = dispatcher.problem
    kept = problem.reduction.kept
    assert 0 < len(kept) < lin.n_state  # something was eliminated
    assert problem.reduction.jacobian.nnz <= lin.jacobian.nnz  # and nothing filled in
    rng = np.random.default_rng(3)
    rhs = np.zeros(lin.n_state)
    rhs[kept] = rng.normal(size=len(kept)) * 1e-3  # only kept buses inject
    full = spla.spsolve(sp.csc_matrix(lin.jacobian), rhs)
    reduced = spla.spsolve(problem.reduction.jacobian, rhs[kept])
    np.testing.assert_allclose(reduced, full[kept], rtol=1e-8, atol=1e-12)


def test_a_device_on_an_eliminated_bus_is_carried_exactly_onto_the_kept_ones(no_bess):
    """The PV systems' buses are eliminated too, their injections carried onto the buses kept:
    any PV schedule gives the same voltages and angles at the kept buses as the full network."""
    from controllers.network_reduction import stacked_injections

    dispatcher = Dispatcher(no_bess, steps=STEPS)
    lin, problem = dispatcher.lin, dispatcher.problem
    full_b = stacked_injections(_full_maps(no_bess, lin))
    red = problem.reduction
    assert red.injections is not None and red.injections.shape == (len(red.kept),
                                                                    full_b.shape[1])
    u = np.random.default_rng(5).normal(size=full_b.shape[1]) * 0.01
    full = spla.spsolve(sp.csc_matrix(lin.jacobian), full_b @ u)
    reduced = spla.spsolve(red.jacobian, red.injections @ u)
    np.testing.assert_allclose(reduced, full[red.kept], rtol=1e-7, atol=1e-11)


def _full_maps(model, lin):
    from controllers.dispatch_problem.parameters import DeviceMap, DeviceMaps

    net, reg = model.net, model.registry
    return DeviceMaps(
        pv=DeviceMap.of(lin, [int(net.sgen.bus.at[d.element.index]) for d in reg.pv]),
        bess=DeviceMap.of(lin, [int(net.storage.bus.at[d.element.index]) for d in reg.bess]),
        ev=DeviceMap.of(lin, [int(net.load.bus.at[d.element.index]) for d in reg.ev_sites]),
    )


def test_every_state_is_kept_when_everything_is_watched(no_bess):
    """A bus whose voltage is bounded is never eliminated."""
    dispatcher = Dispatcher(no_bess, steps=STEPS)
    lin = dispatcher.lin
    everything = MonitoredLimits.everything(lin)
    watched = np.unique(sp.coo_matrix(lin.v_select).col)
    red = reduce_network(lin, watched)
    assert set(watched) <= set(red.kept)
    assert everything.v_low.size == len(lin.monitored_buses)


def test_the_state_and_the_sensitivity_forms_plan_the_same(jiuke):
    """Solving the state away (a dense row over the devices per watched quantity) is exact:
    the same plan as with the state kept, to the solver's tolerance."""
    import datetime as dt

    from controllers.dayahead import sessions_at_start
    from controllers.dispatch.sessions import session_states
    from controllers.snapshot import GridSnapshot
    from forecasts.bundle import build

    bundle = build(jiuke, dt.date(2026, 7, 15), "6h", seed=0)
    steps = len(bundle.index)
    dispatcher = Dispatcher(jiuke, steps=steps, step_h=bundle.step_h)
    snapshot = GridSnapshot.initial(jiuke, bundle.start, sessions_at_start(bundle))
    states = session_states(bundle, snapshot)
    start = dispatcher.baseline(bundle, snapshot, states=states)
    from controllers.dispatch.window import base_point
    from controllers.dispatch_problem import DispatchInputs

    inputs = DispatchInputs(
        window=dispatcher.window_inputs(bundle, snapshot, states),
        base=base_point(start, dispatcher.evaluate(bundle, start), dispatcher.columns))
    solved = {}
    for form in ("state", "sensitivity"):
        problem = DispatchProblem(jiuke, dispatcher.lin, steps=steps, step_h=bundle.step_h,
                                  config=dispatcher.config, limits=dispatcher.limits,
                                  network_form=form)
        problem.set_inputs(inputs)
        solved[form] = problem.solve()
        assert solved[form].ok
    state, sens = solved["state"], solved["sensitivity"]
    assert sens.objective_cny == pytest.approx(state.objective_cny, rel=1e-5)
    np.testing.assert_allclose(sens.import_mw, state.import_mw, atol=2e-3)
