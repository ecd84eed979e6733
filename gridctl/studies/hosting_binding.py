"""What broke first in a hosting check that failed, or what came nearest where it held: the
largest AC breach, the plan's binding limit with the largest shadow price, the element nearest
its limit."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from controllers.config import DispatchConfig
from controllers.schedule import AcCheck


def binding_of(
    ac: AcCheck,
    index: pd.DatetimeIndex,
    net,
    config: DispatchConfig,
    plan_binding: tuple[dict[str, Any], ...] = (),
    short_kwh_by_site: dict[str, float] | None = None,
) -> dict[str, Any]:
    """What broke first in a failed check: the largest breach of its AC check; where it passed
    AC (orderly short of EV energy or over its curtailment allowance), the plan's binding limit
    with the largest shadow price; else the element nearest its limit."""
    out: dict[str, Any] = {}
    short = {k: round(v, 1) for k, v in sorted((short_kwh_by_site or {}).items(),
                                                key=lambda kv: -kv[1])[:3] if v > 1e-3}
    if short:
        out["ev_short_kwh_by_site"] = short
    if ac.violations:
        def breach(v) -> float:
            if v.kind == "not_converged":
                return math.inf
            scale = 0.01 if v.kind.startswith("voltage") else 1.0  # pu against percent points
            return abs(v.value - v.limit) / scale
        worst = max(ac.violations, key=breach)
        out.update({"kind": worst.kind, "element": worst.element, "value": worst.value,
                    "limit": worst.limit, "time": index[worst.step].isoformat(),
                    "step": worst.step})
    elif plan_binding:
        top = max(plan_binding, key=lambda b: b["max_shadow_price"])
        k = int(np.argmax(top["shadow_price"]))
        out.update({"kind": top["kind"], "element": top["element"], "time": top["times"][k],
                    "limit": top["limit"][k], "shadow_price": top["shadow_price"][k],
                    "unit": top["unit"],
                    "note": "AC held: the plan's binding limit with the largest shadow price"})
    else:
        out.update(tightest(ac, index, net, config))
    return out


def tightest(ac: AcCheck, index: pd.DatetimeIndex, net, config: DispatchConfig) -> dict[str, Any]:
    """The element nearest its limit in an AC check that passed (pu or percent points left)."""
    res = ac.result
    lim = config.ac_limits
    cands = []
    vm = res.vm_pu
    if np.isfinite(vm).any():
        low = np.nanargmin(vm)
        step, col = np.unravel_index(low, vm.shape)
        cands.append(((vm[step, col] - lim.v_min_pu) * 100, "voltage_low",
                      str(net.bus.name.iloc[col]), float(vm[step, col]), lim.v_min_pu, step))
        high = np.nanargmax(vm)
        step, col = np.unravel_index(high, vm.shape)
        cands.append(((lim.v_max_pu - vm[step, col]) * 100, "voltage_high",
                      str(net.bus.name.iloc[col]), float(vm[step, col]), lim.v_max_pu, step))
    for arr, kind, names, limit in (
        (res.line_loading_pct, "line_loading", net.line.name, lim.max_line_loading_pct),
        (res.trafo_loading_pct, "trafo_loading", net.trafo.name, lim.max_trafo_loading_pct),
    ):
        if arr.size and np.isfinite(arr).any():
            i = np.nanargmax(arr)
            step, col = np.unravel_index(i, arr.shape)
            cands.append((limit - arr[step, col], kind, str(names.iloc[col]),
                          float(arr[step, col]), limit, step))
    if not cands:
        return {}
    margin, kind, element, value, limit, step = min(cands, key=lambda c: c[0])
    return {"kind": kind, "element": element, "value": value, "limit": limit, "step": int(step),
            "time": index[int(step)].isoformat(), "margin": round(float(margin), 4),
            "note": "no AC limit broken: the element nearest its limit"}
