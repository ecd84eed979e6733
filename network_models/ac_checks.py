"""AC checks of a grid model: power flow at peak and at light load, and the N-1 screen.

The N-1 screen takes out, one at a time, every backbone cable (protection opens both ends) and
every substation transformer, at peak, and reports interrupted customers and limit violations.
For models without a named backbone (standard feeders) every line that is not a tie is studied.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandapower as pp

from network_models.model import GridModel
from network_models.powerflow import solve_once
from network_models.registry import EvChargingSite, Load, PvSystem
from network_models.topology import energised_buses


@dataclass(frozen=True, kw_only=True)
class AcLimits:
    """Operating limits: GB/T 12325 ±7 % at 10 kV and below; thermal 100 % of rating."""

    v_min_pu: float = 0.93
    v_max_pu: float = 1.07
    max_line_loading_pct: float = 100.0
    max_trafo_loading_pct: float = 100.0


@dataclass(frozen=True, kw_only=True)
class OperatingPoint:
    """A named study case: loads, EV sites and PV scaled from their ratings."""

    name: str
    load_frac: float
    ev_frac: float
    pv_frac: float
    note: str = ""


PEAK = OperatingPoint(
    name="peak",
    load_frac=1.0,
    ev_frac=1.0,
    pv_frac=0.0,
    note="every load at its peak, every EV site at its connection limit, evening (no PV)",
)
LIGHT_LOAD = OperatingPoint(
    name="light_load",
    load_frac=0.3,
    ev_frac=0.0,
    pv_frac=1.0,
    note="assumption: 30 % of peak load, no EV charging, PV at nameplate (voltage-rise case)",
)


@dataclass(frozen=True, kw_only=True)
class Violation:
    case: str
    kind: str  # "voltage_low", "voltage_high", "line_loading", "trafo_loading", "not_converged"
    element: str
    value: float
    limit: float


@dataclass(frozen=True, kw_only=True)
class CaseResult:
    case: str
    converged: bool
    v_min_pu: float
    v_max_pu: float
    max_line_loading_pct: float
    max_trafo_loading_pct: float
    import_mw: float
    losses_mw: float
    customers_interrupted: int
    violations: tuple[Violation, ...] = ()


@dataclass(frozen=True, kw_only=True)
class GridCheckReport:
    model: str
    buses: int
    lines: int
    trafos: int
    switches: int
    devices: int
    cases: tuple[CaseResult, ...]
    n1_outages: int
    n1_customers_interrupted: int
    n1_violations: tuple[Violation, ...]
    n1_worst_line_loading_pct: float
    n1_worst_v_min_pu: float
    limits: AcLimits = field(default_factory=AcLimits)

    @property
    def converged(self) -> bool:
        return all(c.converged for c in self.cases)

    @property
    def ok(self) -> bool:
        return (
            self.converged
            and not any(c.violations for c in self.cases)
            and not self.n1_violations
            and self.n1_customers_interrupted == 0
        )

    def to_dict(self) -> dict:
        """The JSON shape of ``gridctl grid check --json``. A figure no power flow gave (a case
        that did not converge, an N-1 screen with no outage solved) is None, never NaN: the
        reason is beside it (``converged``, ``n1.outages`` and ``n1.solved``)."""
        cases = {c.case: {k: _finite(v) for k, v in asdict(c).items() if k != "case"}
                 for c in self.cases}
        for data in cases.values():
            data["violations"] = [{k: _finite(x) for k, x in v.items()}
                                  for v in data["violations"]]
        solved = [c for c in self.cases if c.converged]

        def over_cases(pick: Callable[[Iterable[float]], float], figure: str,
                       digits: int) -> float | None:
            values = [getattr(c, figure) for c in solved]
            return round(pick(values), digits) if values else None

        n1_solved = math.isfinite(self.n1_worst_v_min_pu)
        return {
            "model": self.model,
            "buses": self.buses,
            "lines": self.lines,
            "trafos": self.trafos,
            "switches": self.switches,
            "devices": self.devices,
            "converged": self.converged,
            "v_min_pu": over_cases(min, "v_min_pu", 5),
            "v_max_pu": over_cases(max, "v_max_pu", 5),
            "max_line_loading_pct": over_cases(max, "max_line_loading_pct", 3),
            "max_trafo_loading_pct": over_cases(max, "max_trafo_loading_pct", 3),
            "cases": cases,
            "n1": {
                "outages": self.n1_outages,
                "solved": n1_solved,
                "customers_interrupted": self.n1_customers_interrupted,
                "violations": [{k: _finite(x) for k, x in asdict(v).items()}
                               for v in self.n1_violations],
                "worst_line_loading_pct": round(self.n1_worst_line_loading_pct, 3)
                if n1_solved else None,
                "worst_v_min_pu": round(self.n1_worst_v_min_pu, 5) if n1_solved else None,
            },
            "limits": asdict(self.limits),
            "ok": self.ok,
        }


def _finite(value: Any) -> Any:
    """``value``, or None where it is a float that is not a finite number (nothing solved)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def apply_operating_point(model: GridModel, net: pp.pandapowerNet, op: OperatingPoint) -> None:
    """Set loads, EV sites, PV and storage of ``net`` (a copy of the model's net) to ``op``."""
    reg = model.registry
    for d in reg.of_type(Load):
        i = d.element.index
        net.load.at[i, "p_mw"] = d.p_peak_mw * op.load_frac
        net.load.at[i, "q_mvar"] = d.q_peak_mvar * op.load_frac
    for ev in reg.of_type(EvChargingSite):
        net.load.at[ev.element.index, "p_mw"] = ev.p_site_max_kw / 1000.0 * op.ev_frac
        net.load.at[ev.element.index, "q_mvar"] = 0.0
    for pv in reg.of_type(PvSystem):
        net.sgen.at[pv.element.index, "p_mw"] = pv.p_mwp * op.pv_frac
        net.sgen.at[pv.element.index, "q_mvar"] = 0.0
    if len(net.storage):
        net.storage["p_mw"] = 0.0
        net.storage["q_mvar"] = 0.0


def _customers_by_bus(model: GridModel) -> dict[int, int]:
    out: dict[int, int] = {}
    for d in model.registry.of_type(Load):
        b = int(model.net.load.at[d.element.index, "bus"])
        out[b] = out.get(b, 0) + d.customers
    return out


def _evaluate(
    model: GridModel, net: pp.pandapowerNet, case: str, limits: AcLimits, customers: dict[int, int]
) -> CaseResult:
    dead = {int(b) for b in net.bus.index[net.bus.in_service]} - energised_buses(net)
    interrupted = sum(n for b, n in customers.items() if b in dead)
    try:
        solve_once(net, init="dc" if dead else "auto", max_iteration=30)
    except pp.powerflow.LoadflowNotConverged:
        nan = float("nan")
        return CaseResult(
            case=case,
            converged=False,
            v_min_pu=nan,
            v_max_pu=nan,
            max_line_loading_pct=nan,
            max_trafo_loading_pct=nan,
            import_mw=nan,
            losses_mw=nan,
            customers_interrupted=interrupted,
            violations=(
                Violation(case=case, kind="not_converged", element="", value=nan, limit=nan),
            ),
        )
    vm = net.res_bus.vm_pu
    live = vm.dropna()
    line_load = net.res_line.loading_percent.fillna(0.0)
    trafo_load = net.res_trafo.loading_percent.fillna(0.0)
    violations = [
        Violation(case=case, kind=kind, element=element, value=value, limit=limit)
        for _, kind, element, value, limit in limit_violations(
            net,
            vm.to_numpy()[None, :],
            line_load.to_numpy()[None, :],
            trafo_load.to_numpy()[None, :],
            limits,
        )
    ]
    return CaseResult(
        case=case,
        converged=True,
        v_min_pu=float(live.min()),
        v_max_pu=float(live.max()),
        max_line_loading_pct=float(line_load.max()) if len(line_load) else 0.0,
        max_trafo_loading_pct=float(trafo_load.max()) if len(trafo_load) else 0.0,
        import_mw=float(net.res_ext_grid.p_mw.sum()),
        losses_mw=float(net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()),
        customers_interrupted=interrupted,
        violations=tuple(violations),
    )


def limit_violations(
    net: pp.pandapowerNet,
    vm_pu: np.ndarray,
    line_loading_pct: np.ndarray,
    trafo_loading_pct: np.ndarray,
    limits: AcLimits,
) -> list[tuple[int, str, str, float, float]]:
    """(step, kind, element, value, limit) of every limit broken, in step order.

    Arrays are (steps, n) in the net's bus, line and trafo table order. NaN voltages (dead buses)
    and NaN loadings break nothing.
    """
    found: list[tuple[int, str, str, float, float]] = []
    checks = (
        (vm_pu, lambda a: a < limits.v_min_pu - 1e-9, net.bus.name, "voltage_low", limits.v_min_pu),
        (
            vm_pu,
            lambda a: a > limits.v_max_pu + 1e-9,
            net.bus.name,
            "voltage_high",
            limits.v_max_pu,
        ),
        (
            line_loading_pct,
            lambda a: a > limits.max_line_loading_pct + 1e-6,
            net.line.name,
            "line_loading",
            limits.max_line_loading_pct,
        ),
        (
            trafo_loading_pct,
            lambda a: a > limits.max_trafo_loading_pct + 1e-6,
            net.trafo.name,
            "trafo_loading",
            limits.max_trafo_loading_pct,
        ),
    )
    for values, broken, names, kind, limit in checks:
        with np.errstate(invalid="ignore"):
            hits = np.argwhere(broken(values))
        names = names.to_numpy()
        found += [(int(t), kind, str(names[i]), float(values[t, i]), limit) for t, i in hits]
    found.sort(key=lambda v: v[0])
    return found


def n1_outages(model: GridModel) -> list[tuple[str, str]]:
    """The single outages studied: ("line", name) for backbone cables, ("trafo", name) for
    substation transformers. Without a named backbone, every in-service line with no open switch."""
    net = model.net
    if model.backbone_lines:
        lines = list(model.backbone_lines)
    else:
        open_lines = set(net.switch.element[(net.switch.et == "l") & ~net.switch.closed])
        lines = [
            str(net.line.name.at[i])
            for i in net.line.index
            if net.line.in_service.at[i] and i not in open_lines
        ]
    # outages are named after the net's elements (a device id need not be its element's name)
    trafos = [str(net.trafo.name.at[t.element.index])
              for t in model.registry.substation_transformers]
    return [("line", n) for n in lines] + [("trafo", n) for n in trafos]


def check_grid(
    model: GridModel,
    *,
    limits: AcLimits | None = None,
    cases: Iterable[OperatingPoint] = (PEAK, LIGHT_LOAD),
    n1: bool = True,
) -> GridCheckReport:
    """Power flow for each operating point and the N-1 screen at peak."""
    limits = limits or AcLimits()
    customers = _customers_by_bus(model)
    results = []
    for op in cases:
        net = model.copy_net()
        apply_operating_point(model, net, op)
        results.append(_evaluate(model, net, op.name, limits, customers))

    outages = n1_outages(model) if n1 else []
    n1_violations: list[Violation] = []
    interrupted = 0
    worst_loading, worst_v = 0.0, float("inf")
    base = model.copy_net()
    apply_operating_point(model, base, PEAK)
    for kind, name in outages:
        net = copy.deepcopy(base)
        if kind == "line":
            net.line.at[model.line_index(name), "in_service"] = False
        else:
            net.trafo.at[model.trafo_index(name), "in_service"] = False
        r = _evaluate(model, net, f"n-1 {kind} {name}", limits, customers)
        interrupted += r.customers_interrupted
        n1_violations.extend(r.violations)
        if r.converged:
            worst_loading = max(worst_loading, r.max_line_loading_pct)
            worst_v = min(worst_v, r.v_min_pu)
    return GridCheckReport(
        model=model.name,
        buses=len(model.net.bus),
        lines=len(model.net.line),
        trafos=len(model.net.trafo),
        switches=len(model.net.switch),
        devices=len(model.registry),
        cases=tuple(results),
        n1_outages=len(outages),
        n1_customers_interrupted=interrupted,
        n1_violations=tuple(n1_violations),
        n1_worst_line_loading_pct=worst_loading,
        n1_worst_v_min_pu=worst_v if np.isfinite(worst_v) else float("nan"),
        limits=limits,
    )
