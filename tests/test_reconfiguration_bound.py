"""The loss bound that lets exhaustive reconfiguration solve few configurations by AC.

A bound that is ever above a configuration's AC losses could prune the optimum: it is checked
against the AC power flow of configurations spread over all 50,751 of IEEE 33-bus.
"""

from __future__ import annotations

import numpy as np
import pytest

from controllers.reconfiguration import reconfigure
from controllers.reconfiguration.ac import study_configurations
from controllers.reconfiguration.graph import switching_graph
from controllers.reconfiguration.loss_bound import LossBound, loss_bound_of
from controllers.reconfiguration.radiality import enumerate_radial_configurations
from network_models import load_model
from network_models.ac_checks import PEAK, AcLimits, apply_operating_point


@pytest.fixture(scope="module")
def case33_study():
    model = load_model("case33bw")
    net = model.copy_net()
    apply_operating_point(model, net, PEAK)
    graph = switching_graph(model, net)
    configurations = enumerate_radial_configurations(graph, limit=60_000)
    return model, net, graph, configurations


def test_the_bound_never_exceeds_the_ac_losses_of_a_configuration(case33_study):
    _, net, graph, configurations = case33_study
    sample = configurations[::37]  # 1,372 configurations across the enumeration
    bound = loss_bound_of(net, graph)
    assert isinstance(bound, LossBound)
    losses = bound.losses_mw(sample)
    study = study_configurations(net, graph, sample)
    solved = study.converged
    assert solved.sum() > 1000
    assert np.all(losses[solved] <= study.losses_mw[solved])
    # tight enough to prune: within 4 % of AC at best, and never trivially zero
    assert np.max(losses[solved] / study.losses_mw[solved]) > 0.95
    assert np.all(losses > 0)


def test_the_bound_at_source_voltage_is_weaker_than_the_full_bound(case33_study):
    _, net, graph, configurations = case33_study
    bound = loss_bound_of(net, graph)
    assert isinstance(bound, LossBound)
    coarse = bound.losses_mw(configurations, at_source_voltage=True)
    fine = bound.losses_mw(configurations)
    assert np.all(coarse <= fine)


def test_exhaustive_search_solves_few_by_ac_and_still_accounts_for_every_configuration():
    result = reconfigure(load_model("case33bw"))
    assert result.proven_optimal and result.configurations_evaluated == 50_751
    assert result.configurations_solved_ac is not None
    assert result.configurations_solved_ac < 1_000
    assert result.after.losses_mw * 1e3 == pytest.approx(139.55, abs=0.01)


def test_limits_no_configuration_meets_leave_nothing_pruned(case33_study):
    # at 0.99 pu minimum voltage no radial configuration of IEEE 33 is within limits, so the
    # least-violating answer needs every configuration solved, as full enumeration does
    model = case33_study[0]
    result = reconfigure(model, limits=AcLimits(v_min_pu=0.99))
    assert not result.after.within_limits and not result.proven_optimal
    assert result.configurations_solved_ac == 50_751


def test_the_bound_declines_a_grid_whose_physics_it_does_not_cover(jiuke):
    net = jiuke.copy_net()
    apply_operating_point(jiuke, net, PEAK)
    reason = loss_bound_of(net, switching_graph(jiuke, net))
    assert isinstance(reason, str) and reason  # transformers, PV: says why
