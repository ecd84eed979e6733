"""The records of a plan's checks: the AC check of a schedule, the binding limits of a solve."""

from __future__ import annotations

import numpy as np
import pandas as pd

from controllers.config import DispatchConfig
from controllers.dispatch_problem import DispatchSolution
from controllers.schedule import AcCheck, AcViolation
from network_models.ac_checks import limit_violations
from network_models.powerflow import TimeSeriesResult


def ac_check_of(net, res: TimeSeriesResult, config: DispatchConfig, wall_s: float) -> AcCheck:
    """Limits of every step of a time-series AC result (voltages of energised buses only)."""
    violations = [
        AcViolation(step=step, kind=kind, element=element, value=value, limit=limit)
        for step, kind, element, value, limit in limit_violations(
            net, res.vm_pu, res.line_loading_pct, res.trafo_loading_pct, config.ac_limits
        )
    ]
    vm = res.vm_pu
    for s in np.flatnonzero(~res.converged):
        violations.append(
            AcViolation(
                step=int(s),
                kind="not_converged",
                element="",
                value=float("nan"),
                limit=float("nan"),
            )
        )
    violations.sort(key=lambda v: (v.step, v.kind, v.element))
    finite = vm[np.isfinite(vm)]
    return AcCheck(
        engine=str(res.engine),
        converged=bool(res.converged.all()),
        v_min_pu=float(finite.min()) if finite.size else float("nan"),
        v_max_pu=float(finite.max()) if finite.size else float("nan"),
        max_line_loading_pct=float(np.nanmax(res.line_loading_pct, initial=0.0)),
        max_trafo_loading_pct=float(np.nanmax(res.trafo_loading_pct, initial=0.0)),
        import_mw=res.ext_grid_p_mw.sum(axis=1),
        losses_mw=res.losses_mw,
        violations=tuple(violations),
        wall_s=wall_s,
        result=res,
    )


def binding_records(
    solution: DispatchSolution | None, index: pd.DatetimeIndex
) -> tuple[dict[str, object], ...]:
    """The binding limits of a solve for the decision record: step start times (ISO, local)
    in place of step numbers, shadow prices and limits rounded for reading."""
    if solution is None or not solution.ok:
        return ()
    return tuple(
        {
            "element": b.element,
            "kind": b.kind,
            "times": [index[j].isoformat() for j in b.steps],
            "shadow_price": [round(x, 3) for x in b.shadow_prices],
            "unit": b.unit,
            "max_shadow_price": round(max(b.shadow_prices), 3),
            "limit": [round(x, 5) for x in b.limits],
        }
        for b in solution.binding
    )
