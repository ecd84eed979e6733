"""AC power flow of one net over many time steps: power-grid-model batch, or pandapower per step.

Both engines solve the same balanced positive-sequence model that ``pandapower.runpp`` builds with
its defaults (``trafo_model="t"``, ``calculate_voltage_angles=True``, ext_grids as ideal slacks,
``trafo_loading="current"``, ZIP loads). The power-grid-model engine converts the net with the
small converter of its own (one batch, one Newton-Raphson per step) and agrees with pandapower to
better than 1e-6 pu; the pandapower engine runs ``runpp`` step by step on a copy of the net.

Units and signs follow pandapower: MW, Mvar, kA, pu, degrees. Loads and storage consume
(storage ``p_mw > 0`` charges), sgens generate, an ext_grid's ``p_mw > 0`` feeds the net. A
de-energised or out-of-service bus has NaN voltage; branches without flow report 0.

This module is the public surface; the work is done in the private ``network_models._powerflow``
package (as power-grid-model keeps ``_core``): the injections and their checks, the result type,
the pandapower loop, the converter to power-grid-model input and its batch run.
``device_injections`` builds the injections from per-device values (registry ids and signs).
``SwitchingCase`` solves one net in many switch states (line and transformer switches vary per
step) from one conversion, for studies that try switching actions (FLISR).
"""

from __future__ import annotations

import copy

import pandapower as pp
from power_grid_model import PowerGridModel

from network_models._powerflow.device_injections import DeviceValues, device_injections
from network_models._powerflow.injections import (
    TimeSeriesInjections,
    step_count,
    validated_series,
)
from network_models._powerflow.pandapower_engine import run_pandapower
from network_models._powerflow.pgm_batch import batch_update, run_power_grid_model
from network_models._powerflow.pgm_conversion import PgmNet, convert_net
from network_models._powerflow.pgm_switching import SwitchingCase
from network_models._powerflow.results import PowerFlowEngine, TimeSeriesResult
from network_models.errors import InputError

__all__ = [
    "DeviceValues",
    "PowerFlowCase",
    "PowerFlowEngine",
    "SwitchingCase",
    "TimeSeriesInjections",
    "TimeSeriesResult",
    "device_injections",
    "run_time_series",
    "solve_once",
]

# controllers/reconfiguration_ac.py builds its own batches on the converted net and imports
# these two by their old private names; kept until it moves to a public converter API.
_convert_net = convert_net
_batch_update = batch_update


def solve_once(net: pp.pandapowerNet, **options: object) -> None:
    """One AC power flow with pandapower's ``runpp`` on ``net`` (results written into it).

    Without numba: its just-in-time compilation costs 3–6 s at the first call of every process,
    worth it only for long loops, and those go to power-grid-model here (a single runpp of the
    Jiuke model takes about 65 ms either way once compiled). ``options`` go to ``runpp``.
    """
    pp.runpp(net, numba=False, **options)


def run_time_series(
    net: pp.pandapowerNet,
    injections: TimeSeriesInjections,
    *,
    engine: PowerFlowEngine = PowerFlowEngine.POWER_GRID_MODEL,
) -> TimeSeriesResult:
    """Solve the AC power flow of ``net`` once per step of ``injections``; ``net`` is not changed.

    Switch states and ``in_service`` flags of the net hold for every step. Raises
    :class:`~network_models.errors.InputError` for injection arrays of the wrong shape or with
    non-finite values, and ``NotImplementedError`` for in-service elements the power-grid-model
    converter does not model (gen, trafo3w, impedance, ward, ...). To solve the same net many
    times (a controller every step), build a :class:`PowerFlowCase` once.
    """
    return PowerFlowCase(net, engine=engine).run(injections)


class PowerFlowCase:
    """One net, converted for its engine once, solved for as many injection series as needed.

    The case keeps its own copy of the net: later changes to ``net`` (switching, outages) need a
    new case.
    """

    def __init__(
        self,
        net: pp.pandapowerNet,
        *,
        engine: PowerFlowEngine = PowerFlowEngine.POWER_GRID_MODEL,
    ) -> None:
        try:
            self.engine = PowerFlowEngine(engine)
        except ValueError:
            expected = ", ".join(e.value for e in PowerFlowEngine)
            raise InputError(f"unknown engine {engine!r}: expected one of {expected}",
                             field="engine") from None
        self.net = copy.deepcopy(net)
        self._pgm: PgmNet | None = None
        self._model: PowerGridModel | None = None
        if self.engine is PowerFlowEngine.POWER_GRID_MODEL:
            self._pgm = convert_net(self.net)
            self._model = PowerGridModel(self._pgm.input_data,
                                         system_frequency=float(self.net.f_hz))

    def run(self, injections: TimeSeriesInjections) -> TimeSeriesResult:
        """The AC power flow of every step of ``injections`` (see :func:`run_time_series`)."""
        series = validated_series(self.net, injections)
        steps = step_count(series)
        if self.engine is PowerFlowEngine.PANDAPOWER:
            return run_pandapower(self.net, series, steps)
        return run_power_grid_model(self.net, self._pgm, self._model, series, steps)

