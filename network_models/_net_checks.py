"""Names and values of a pandapower net that comes from outside: completed, then checked.

``name_elements`` gives every bus, line, transformer and switch a unique name (topology and
switching speak names); ``check_net_values`` and ``check_structure`` refuse a net the power flow
or the planner could not use, naming the table, row and column. Import the public names from
:mod:`network_models.standard`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
import pandapower as pp
import pandas as pd

from network_models.errors import ModelError


def clean(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


def unique_labels(candidates: Sequence[str | None], fallbacks: Sequence[str]) -> list[str]:
    """Keep candidates that are set and occur once; give the others their fallback, made unique."""
    counts = Counter(c for c in candidates if c is not None)
    taken = {c for c, n in counts.items() if n == 1}
    labels: list[str] = []
    for cand, fallback in zip(candidates, fallbacks, strict=True):
        if cand is not None and counts[cand] == 1:
            labels.append(cand)
            continue
        new, n = fallback, 2
        while new in taken:
            new, n = f"{fallback}_{n}", n + 1
        labels.append(new)
        taken.add(new)
    return labels


def name_elements(net: pp.pandapowerNet) -> None:
    """Give every bus, line, trafo and switch of ``net`` a unique non-empty string name, in place.

    Unique names are kept; a missing name becomes ``<table>_<index>`` and a duplicated one
    ``<name>_<index>``, so the result depends only on the net.
    """
    for table in ("bus", "line", "trafo", "switch"):
        df = net[table]
        if df.empty:
            continue
        names = [clean(v) for v in df["name"]] if "name" in df else [None] * len(df)
        counts = Counter(n for n in names if n is not None)
        fallbacks = [
            f"{table}_{idx}" if n is None or counts[n] == 1 else f"{n}_{idx}"
            for n, idx in zip(names, df.index, strict=True)
        ]
        df["name"] = unique_labels(names, fallbacks)


def check_names(net: pp.pandapowerNet, source: str) -> None:
    for table in ("bus", "line", "trafo", "switch"):
        df = net[table]
        names = [clean(v) for v in df["name"]] if "name" in df else [None] * len(df)
        if None in names or len(set(names)) != len(names):
            raise ModelError(
                "names must be unique and non-empty: call name_elements(net) first",
                source=source, element=table, field="name",
            )


# --- values ----------------------------------------------------------------------------------

# (column, lowest allowed, whether the lowest itself is allowed, what it is, unit): every row of
# these columns must hold a finite number within its bound (NaN refused too), as the power flow
# and the registry compute with them. Other columns may be NaN (pandapower's "not given"), never
# ±inf.
_REQUIRED_VALUES: Mapping[str, tuple[tuple[str, float, bool, str, str], ...]] = MappingProxyType({
    "bus": (("vn_kv", 0.0, False, "nominal voltage", "kV"),),
    "line": (
        ("length_km", 0.0, False, "length", "km"),
        ("r_ohm_per_km", 0.0, True, "resistance", "ohm/km"),
        ("x_ohm_per_km", 0.0, True, "reactance", "ohm/km"),
        ("c_nf_per_km", 0.0, True, "capacitance", "nF/km"),
        ("max_i_ka", 0.0, False, "thermal rating", "kA"),
        ("parallel", 1.0, True, "number of parallel systems", ""),
    ),
    "trafo": (
        ("sn_mva", 0.0, False, "rating", "MVA"),
        ("vn_hv_kv", 0.0, False, "HV rated voltage", "kV"),
        ("vn_lv_kv", 0.0, False, "LV rated voltage", "kV"),
        ("vk_percent", 0.0, False, "short-circuit voltage", "%"),
        ("vkr_percent", 0.0, True, "real part of the short-circuit voltage", "%"),
        ("pfe_kw", 0.0, True, "iron losses", "kW"),
        ("i0_percent", 0.0, True, "open-circuit current", "%"),
        ("shift_degree", -math.inf, False, "phase shift", "degrees"),
    ),
    "ext_grid": (
        ("vm_pu", 0.0, False, "voltage set point", "pu"),
        ("va_degree", -math.inf, False, "voltage angle", "degrees"),
    ),
    "gen": (("p_mw", -math.inf, False, "active power", "MW"),
            ("vm_pu", 0.0, False, "voltage set point", "pu")),
    "load": (("p_mw", -math.inf, False, "active power", "MW"),
             ("q_mvar", -math.inf, False, "reactive power", "Mvar")),
    "sgen": (("p_mw", -math.inf, False, "active power", "MW"),
             ("q_mvar", -math.inf, False, "reactive power", "Mvar")),
    "storage": (("p_mw", -math.inf, False, "active power", "MW"),
                ("q_mvar", -math.inf, False, "reactive power", "Mvar")),
})


def check_net_values(net: pp.pandapowerNet, source: str) -> None:
    """Refuse a net whose ratings, impedances or powers are not finite or out of bounds.

    No table may hold ±inf anywhere; the columns of :data:`_REQUIRED_VALUES` must be finite
    (NaN refused) and within their bound. The error names ``source``, the table, row and column.
    """
    for table in list(net):
        frame = net[table]
        if table.startswith(("res_", "_")) or not isinstance(frame, pd.DataFrame) or frame.empty:
            continue
        required = {c: (low, closed, what, unit) for c, low, closed, what, unit in
                    _REQUIRED_VALUES.get(table, ())}
        for column in frame.columns:
            values = frame[column]
            if column in required:
                low, closed, what, unit = required[column]
                numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
                with np.errstate(invalid="ignore"):
                    inside = np.isfinite(numbers) & (numbers >= low if closed else numbers > low)
                bound = (f" in {unit}" if math.isinf(low)
                         else f" {'≥' if closed else '>'} {low:g} {unit}".rstrip())
                expected = f"a finite {what}{bound}"
            elif pd.api.types.is_float_dtype(values):
                numbers = values.to_numpy(dtype=float)
                inside = ~np.isinf(numbers)
                expected = "a finite number (or none)"
            else:
                continue
            if inside.all():
                continue
            pos = int(np.flatnonzero(~inside)[0])
            row = frame.index[pos]
            name = clean(frame["name"].iloc[pos]) if "name" in frame else None
            raise ModelError(
                f"{_shown(values.iloc[pos])}: expected {expected}", source=source,
                element=f"{table} table" + (f" {name}" if name else ""), row=int(row),
                field=str(column),
            )


# below this a line's admittance overflows the power flow's arithmetic; real lines have 10 mΩ+
MIN_LINE_IMPEDANCE_OHM = 1e-6


def check_structure(net: pp.pandapowerNet, source: str) -> None:
    """A grid gridctl can run: fed by a grid supply point, with a branch to carry its power."""
    grids = net.ext_grid if "ext_grid" in net else pd.DataFrame()
    if grids.empty or not grids["in_service"].astype(bool).any():
        raise ModelError(
            "no grid supply point in service: expected an ext_grid (the substation's or "
            "upstream grid's connection) in service", source=source, element="ext_grid table")
    line = net.line
    if not line.empty:
        ohm = (np.hypot(line["r_ohm_per_km"], line["x_ohm_per_km"]) * line["length_km"]
               / line["parallel"]).to_numpy(dtype=float)
        tiny = ohm < MIN_LINE_IMPEDANCE_OHM
        if tiny.any():
            pos = int(np.flatnonzero(tiny)[0])
            raise ModelError(
                f"series impedance {ohm[pos]:.3g} ohm: expected at least "
                f"{MIN_LINE_IMPEDANCE_OHM:g} ohm (r_ohm_per_km, x_ohm_per_km, length_km; a "
                "connection without impedance is a bus-bus switch)", source=source,
                element="line table", row=int(line.index[pos]), field="length_km")
    branches = sum(len(net[t]) for t in ("line", "trafo", "trafo3w") if t in net)
    if not branches:
        raise ModelError(
            "no line or transformer: expected a grid with at least one branch to plan",
            source=source, element="line table")


def _shown(value: Any) -> str:
    try:
        return f"{float(value):g}"
    except (TypeError, ValueError):
        return repr(value)
