"""AC checks for FLISR: a study copy of the net whose switch states and shed loads vary.

One :meth:`StudyNet.solve_many` call runs one power-grid-model batch: a step per (switch state,
set of shed loads) not solved before, on the context's converted net (``SwitchingCase``: the
switch states are update data, so the net is converted once per in-service state, not per
trial). Units: pu, percent, MW.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import pandapower as pp

from controllers.flisr.context import FlisrContext
from controllers.flisr.records import AcCheck, OperatingValues
from network_models.ac_checks import AcLimits, Violation
from network_models.errors import InputError
from network_models.powerflow import SwitchingCase, TimeSeriesInjections, TimeSeriesResult
from network_models.registry import Bess, EvChargingSite, Load, PvSystem

__all__ = ["AcStep", "StudyNet", "acceptable"]

_V_TOL_PU = 1e-4  # a violation no worse than before by this much is not the plan's doing
_LOADING_TOL_PCT = 0.05


@dataclass(frozen=True, kw_only=True)
class AcStep:
    """AC power flow of one state: extremes, losses and violations (``case`` names the state)."""

    converged: bool
    v_min_pu: float
    v_max_pu: float
    max_line_loading_pct: float
    max_trafo_loading_pct: float
    losses_mw: float
    violations: tuple[Violation, ...]

    def as_check(self, preexisting: Sequence[Violation], limits: AcLimits) -> AcCheck:
        return AcCheck(
            converged=self.converged,
            v_min_pu=self.v_min_pu,
            v_max_pu=self.v_max_pu,
            max_line_loading_pct=self.max_line_loading_pct,
            max_trafo_loading_pct=self.max_trafo_loading_pct,
            losses_mw=self.losses_mw,
            violations=self.violations,
            preexisting=tuple(preexisting),
            limits=limits,
        )


def acceptable(step: AcStep, baseline: Sequence[Violation]) -> bool:
    """True if ``step`` converged and every violation it has was there in ``baseline``, no worse."""
    if not step.converged:
        return False
    before = {(v.kind, v.element): v.value for v in baseline}
    for v in step.violations:
        old = before.get((v.kind, v.element))
        if old is None:
            return False
        worse = old - v.value if v.kind == "voltage_low" else v.value - old
        tolerance = _V_TOL_PU if v.kind.startswith("voltage") else _LOADING_TOL_PCT
        if worse > tolerance:
            return False
    return True


class StudyNet:
    """A copy of the model's net at the operating values, for one FLISR run."""

    def __init__(self, ctx: FlisrContext, operating: OperatingValues, limits: AcLimits) -> None:
        self.ctx = ctx
        self.limits = limits
        self.net = ctx.reset_study_net()
        _apply(ctx, self.net, operating)
        self.load_p_mw = self.net.load["p_mw"].to_numpy(dtype=float).copy()
        self.load_q_mvar = self.net.load["q_mvar"].to_numpy(dtype=float).copy()
        self._bus_names = np.array([ctx.bus_names[b] for b in self.net.bus.index], dtype=object)
        self._line_names = np.array(list(map(str, self.net.line["name"])), dtype=object)
        self._trafo_names = np.array(list(map(str, self.net.trafo["name"])), dtype=object)
        self._cache: dict[tuple[bytes, frozenset[int]], AcStep] = {}
        self._graphs: dict[bytes, nx.MultiGraph] = {}
        self._energised: dict[bytes, frozenset[int]] = {}

    def set_trafos_out(self, trafos: Iterable[int]) -> None:
        for t in trafos:
            self.net.trafo.at[t, "in_service"] = False
        self._cache.clear()
        self._graphs.clear()
        self._energised.clear()

    def set_state(self, state: np.ndarray) -> None:
        self.net.switch["closed"] = state.copy()

    def energised(self, state: np.ndarray) -> frozenset[int]:
        """Buses connected to a source in ``state`` (topology only)."""
        key = state.tobytes()
        if key not in self._energised:
            self._energised[key] = self.ctx.energised_in(self.net, state)
        return self._energised[key]

    def graph(self, state: np.ndarray) -> nx.MultiGraph:
        """The bus graph of ``state`` (do not change it)."""
        key = state.tobytes()
        if key not in self._graphs:
            self._graphs[key] = self.ctx.bus_graph_of(self.net, state)
        return self._graphs[key]

    def solve(self, state: np.ndarray, shed_sets: Sequence[frozenset[int]]) -> list[AcStep]:
        """AC power flow of ``state`` once per set of shed load positions (rows of net.load)."""
        return self.solve_many([(state, shed_sets)])[0]

    def solve_many(
        self, trials: Sequence[tuple[np.ndarray, Sequence[frozenset[int]]]]
    ) -> list[list[AcStep]]:
        """:meth:`solve` of each (switch state, shed sets) trial, all in one AC batch."""
        missing: dict[tuple[bytes, frozenset[int]], np.ndarray] = {}
        for state, shed_sets in trials:
            key = state.tobytes()
            for shed in shed_sets:
                if (key, shed) not in self._cache:
                    missing.setdefault((key, shed), state)
        if missing:
            n = len(missing)
            p = np.repeat(self.load_p_mw[None, :], n, axis=0)
            q = np.repeat(self.load_q_mvar[None, :], n, axis=0)
            for k, (_, shed) in enumerate(missing):
                p[k, list(shed)] = 0.0
                q[k, list(shed)] = 0.0
            states = np.array(list(missing.values()), dtype=bool)
            result = self._switching_case().run(
                states, TimeSeriesInjections(load_p_mw=p, load_q_mvar=q)
            )
            for k, pair in enumerate(missing):
                self._cache[pair] = self._step(result, k)
        return [
            [self._cache[(state.tobytes(), s)] for s in shed_sets] for state, shed_sets in trials
        ]

    def _switching_case(self) -> SwitchingCase:
        """The context's converted net for this study's in-service flags (made once, reused by
        every plan of the context: converting costs more than solving a plan's batches)."""
        net = self.net
        key = (
            "switching case",
            net.trafo["in_service"].to_numpy(dtype=bool).tobytes(),
            net.line["in_service"].to_numpy(dtype=bool).tobytes(),
            net.bus["in_service"].to_numpy(dtype=bool).tobytes(),
        )
        return self.ctx.cached(key, lambda: SwitchingCase(net))

    def _step(self, result: TimeSeriesResult, k: int) -> AcStep:
        limits = self.limits
        if not result.converged[k]:
            nan = math.nan
            return AcStep(
                converged=False,
                v_min_pu=nan,
                v_max_pu=nan,
                max_line_loading_pct=nan,
                max_trafo_loading_pct=nan,
                losses_mw=nan,
                violations=(
                    Violation(case="flisr", kind="not_converged", element="", value=nan, limit=nan),
                ),
            )
        vm = result.vm_pu[k]
        live = np.isfinite(vm)
        line = result.line_loading_pct[k]
        trafo = result.trafo_loading_pct[k]
        violations = [
            *_over(
                vm, live & (vm < limits.v_min_pu), self._bus_names, "voltage_low", limits.v_min_pu
            ),
            *_over(
                vm, live & (vm > limits.v_max_pu), self._bus_names, "voltage_high", limits.v_max_pu
            ),
            *_over(
                line,
                line > limits.max_line_loading_pct,
                self._line_names,
                "line_loading",
                limits.max_line_loading_pct,
            ),
            *_over(
                trafo,
                trafo > limits.max_trafo_loading_pct,
                self._trafo_names,
                "trafo_loading",
                limits.max_trafo_loading_pct,
            ),
        ]
        return AcStep(
            converged=True,
            v_min_pu=float(vm[live].min()) if live.any() else math.nan,
            v_max_pu=float(vm[live].max()) if live.any() else math.nan,
            max_line_loading_pct=float(line.max()) if line.size else 0.0,
            max_trafo_loading_pct=float(trafo.max()) if trafo.size else 0.0,
            losses_mw=float(result.losses_mw[k]),
            violations=tuple(violations),
        )


def _over(
    values: np.ndarray, mask: np.ndarray, names: np.ndarray, kind: str, limit: float
) -> list[Violation]:
    return [
        Violation(
            case="flisr", kind=kind, element=str(names[i]), value=float(values[i]), limit=limit
        )
        for i in np.flatnonzero(mask)
    ]


def _apply(ctx: FlisrContext, net: pp.pandapowerNet, operating: OperatingValues) -> None:
    """Operating point, then the given device values (registry signs) on ``net``."""
    for (table, column), values in ctx.operating_columns(operating.base).items():
        net[table][column] = values
    registry = ctx.model.registry
    for device_id in set(operating.p_mw) | set(operating.q_mvar):
        if device_id not in registry:
            raise InputError(
                f"no device {device_id!r} in model {ctx.model.name!r}: expected a load, EV "
                "site, PV or BESS id",
                source="OperatingValues",
                element=device_id,
                field="p_mw",
            )
        device = registry[device_id]
        p = operating.p_mw.get(device_id)
        q = operating.q_mvar.get(device_id)
        row = device.element.index
        if isinstance(device, Load):
            if p is not None:
                net.load.at[row, "p_mw"] = p
                if q is None:
                    q = p * math.tan(math.acos(device.power_factor))
            if q is not None:
                net.load.at[row, "q_mvar"] = q
        elif isinstance(device, EvChargingSite):
            _set(net, "load", row, p, q)
        elif isinstance(device, PvSystem):
            _set(net, "sgen", row, p, q)
        elif isinstance(device, Bess):
            # pandapower storage consumes; the registry's BESS injects
            _set(net, "storage", row, None if p is None else -p, None if q is None else -q)
        else:
            raise InputError(
                f"device {device_id!r} is a {device.kind.value}: expected a load, EV site, PV "
                "or BESS",
                source="OperatingValues",
                element=device_id,
                field="p_mw",
            )


def _set(net: pp.pandapowerNet, table: str, row: int, p: float | None, q: float | None) -> None:
    if p is not None:
        net[table].at[row, "p_mw"] = p
    if q is not None:
        net[table].at[row, "q_mvar"] = q
