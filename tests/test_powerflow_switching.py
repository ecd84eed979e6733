"""One conversion, many switch states: SwitchingCase against a power flow of each switched net."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from network_models.ac_checks import PEAK, apply_operating_point
from network_models.errors import InputError
from network_models.powerflow import SwitchingCase, TimeSeriesInjections, run_time_series

_COMPARED = ("vm_pu", "line_loading_pct", "trafo_loading_pct", "line_p_from_mw", "losses_mw")


@pytest.fixture(scope="module")
def jiuke_peak(jiuke):
    net = jiuke.copy_net()
    apply_operating_point(jiuke, net, PEAK)
    return net


def _states(net, kinds: tuple[str, ...], count: int, seed: int) -> np.ndarray:
    """The normal state, then states with three switches of the given kinds flipped."""
    rng = np.random.default_rng(seed)
    normal = net.switch["closed"].to_numpy(dtype=bool)
    rows = np.flatnonzero(net.switch["et"].isin(kinds).to_numpy())
    states = np.repeat(normal[None], count, axis=0)
    for s in range(1, count):
        flip = rng.choice(rows, 3, replace=False)
        states[s, flip] = ~states[s, flip]
    return states


@pytest.mark.parametrize(
    "kinds", [("l", "t"), ("l", "t", "b")], ids=["branch ends", "with bus-bus"]
)
def test_each_step_equals_the_power_flow_of_the_net_in_that_switch_state(jiuke_peak, kinds):
    net = jiuke_peak
    states = _states(net, kinds, 10, seed=len(kinds))
    rng = np.random.default_rng(7)
    p = net.load["p_mw"].to_numpy()[None, :] * rng.uniform(0.5, 1.2, (10, len(net.load)))
    q = np.repeat(net.load["q_mvar"].to_numpy()[None, :], 10, axis=0)
    result = SwitchingCase(net).run(states, TimeSeriesInjections(load_p_mw=p, load_q_mvar=q))
    for s in range(10):
        switched = copy.deepcopy(net)
        switched.switch["closed"] = states[s]
        reference = run_time_series(
            switched, TimeSeriesInjections(load_p_mw=p[s : s + 1], load_q_mvar=q[s : s + 1])
        )
        assert result.converged[s] == reference.converged[0]
        for name in _COMPARED:
            np.testing.assert_allclose(
                getattr(result, name)[s], getattr(reference, name)[0], rtol=0, atol=1e-12,
                err_msg=f"{name} at step {s}",
            )


def test_the_case_reads_element_powers_at_each_run_and_leaves_the_switches_as_they_were(
    jiuke_peak,
):
    net = copy.deepcopy(jiuke_peak)
    case = SwitchingCase(net)
    normal = net.switch["closed"].to_numpy(dtype=bool).copy()
    before = case.run(normal, TimeSeriesInjections()).losses_mw[0]
    net.load["p_mw"] *= 1.5
    after = case.run(normal, TimeSeriesInjections()).losses_mw[0]
    assert after > before * 1.5  # losses grow faster than the load
    assert np.array_equal(net.switch["closed"].to_numpy(dtype=bool), normal)


def test_switch_states_of_the_wrong_shape_are_refused(jiuke_peak):
    with pytest.raises(InputError, match="switch states"):
        SwitchingCase(jiuke_peak).run(np.ones((2, 3), dtype=bool), TimeSeriesInjections())
