"""The per-step element values a time series solves for, checked against the net's tables."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandapower as pp

from network_models.errors import InputError


@dataclass(frozen=True, kw_only=True, eq=False)
class TimeSeriesInjections:
    """Per-step values for element rows of a pandapower net; arrays shaped (steps, n_rows).

    Rows follow the table's index order (``net.load.index``, ``net.sgen.index``,
    ``net.storage.index``). A value replaces the element's ``p_mw``/``q_mvar``; its ``scaling``
    still applies, as in pandapower. Loads and storage consume (storage ``p_mw > 0`` charges);
    sgens generate. ``None`` keeps the net's static value in every step. When every field is
    ``None`` the series has one step.
    """

    load_p_mw: np.ndarray | None = None
    load_q_mvar: np.ndarray | None = None
    sgen_p_mw: np.ndarray | None = None
    sgen_q_mvar: np.ndarray | None = None
    storage_p_mw: np.ndarray | None = None
    storage_q_mvar: np.ndarray | None = None


_SERIES_COLUMNS: dict[str, tuple[str, str]] = {
    field_.name: (field_.name.split("_", 1)[0], field_.name.split("_", 1)[1])
    for field_ in fields(TimeSeriesInjections)
}  # "load_p_mw" -> ("load", "p_mw")


def validated_series(
    net: pp.pandapowerNet, injections: TimeSeriesInjections
) -> dict[tuple[str, str], np.ndarray]:
    """The given arrays keyed by (table, column), checked against the net's table sizes."""
    series: dict[tuple[str, str], np.ndarray] = {}
    steps: int | None = None
    for name, (table, column) in _SERIES_COLUMNS.items():
        raw = getattr(injections, name)
        if raw is None:
            continue
        values = np.asarray(raw, dtype=float)
        n_rows = len(net[table])
        if values.ndim != 2 or values.shape[1] != n_rows:
            raise InputError(
                f"expected an array shaped (steps, {n_rows}) for the {n_rows} rows of "
                f"net.{table}, got shape {values.shape}",
                source="TimeSeriesInjections", field=name,
            )
        if steps is not None and values.shape[0] != steps:
            raise InputError(
                f"expected {steps} steps like the other series, got {values.shape[0]}",
                source="TimeSeriesInjections", field=name,
            )
        steps = values.shape[0]
        bad = np.argwhere(~np.isfinite(values))
        if len(bad):
            step, row = (int(i) for i in bad[0])
            raise InputError(
                f"expected finite values, got {values[step, row]} at step {step} "
                f"(net.{table} index {net[table].index[row]})",
                source="TimeSeriesInjections", row=step, field=name,
            )
        series[(table, column)] = values
    return series


def step_count(series: dict[tuple[str, str], np.ndarray]) -> int:
    return next(iter(series.values())).shape[0] if series else 1


def column_series(
    net: pp.pandapowerNet, series: dict[tuple[str, str], np.ndarray], table: str, column: str,
    steps: int,
) -> np.ndarray:
    """(steps, n_rows) values of one column: the given series or the static value repeated."""
    given = series.get((table, column))
    if given is not None:
        return given
    static = net[table][column].to_numpy(dtype=float)
    return np.broadcast_to(static, (steps, static.shape[0]))
