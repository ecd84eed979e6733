"""Injections of a time series from per-device values: the one place device ids become net rows.

The planner (a dispatch schedule and its forecast) and the simulator (one tick of its devices)
both speak device ids and the registry's signs; the power flow speaks rows of ``net.load``,
``net.sgen`` and ``net.storage`` and pandapower's signs. ``device_injections`` is the single
translation between them, so the two cannot drift apart (as a flipped BESS reactive sign once
did).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandapower as pp
import pandas as pd
from numpy.typing import ArrayLike

from network_models._powerflow.injections import TimeSeriesInjections
from network_models.errors import InputError
from network_models.registry import Device, DeviceRegistry

# per-device values: a DataFrame (rows are steps, columns device ids) or id -> a number (every
# step) or a sequence with one value per step
DeviceValues = pd.DataFrame | Mapping[str, float | ArrayLike]

# argument -> (registry devices, pandapower table and column, pandapower value per registry value)
_ARGUMENTS: Mapping[str, tuple[str, str, str, float]] = {
    "load_p_mw": ("loads", "load", "p_mw", 1.0),
    "load_q_mvar": ("loads", "load", "q_mvar", 1.0),
    "ev_site_p_mw": ("ev_sites", "load", "p_mw", 1.0),
    "ev_site_q_mvar": ("ev_sites", "load", "q_mvar", 1.0),
    "pv_p_mw": ("pv", "sgen", "p_mw", 1.0),
    "pv_q_mvar": ("pv", "sgen", "q_mvar", 1.0),
    # registry: a battery injects (discharging p > 0); pandapower storage consumes, in p
    # (charging > 0) and in q (absorbing > 0) alike, as a load does
    "bess_p_mw": ("bess", "storage", "p_mw", -1.0),
    "bess_q_mvar": ("bess", "storage", "q_mvar", -1.0),
}


def device_injections(
    net: pp.pandapowerNet,
    registry: DeviceRegistry,
    *,
    steps: int | None = None,
    load_p_mw: DeviceValues | None = None,
    load_q_mvar: DeviceValues | None = None,
    ev_site_p_mw: DeviceValues | None = None,
    ev_site_q_mvar: DeviceValues | None = None,
    pv_p_mw: DeviceValues | None = None,
    pv_q_mvar: DeviceValues | None = None,
    bess_p_mw: DeviceValues | None = None,
    bess_q_mvar: DeviceValues | None = None,
) -> TimeSeriesInjections:
    """The per-step injections of ``net`` for the given device values (every array filled).

    Values are in the registry's signs: a load's and an EV site's ``p_mw``/``q_mvar`` are
    consumed; a PV system's and a battery's are injected (a charging battery has ``p_mw < 0``).
    Columns are device ids of the argument's kind; steps are rows, by position (indices are not
    aligned). What is not given: loads and sgens keep the net's static values, EV sites draw no
    reactive power, batteries are idle (storage ``p_mw = q_mvar = 0``), whatever the net holds.
    ``steps`` defaults to the length of the given values (1 if only numbers or nothing is given).
    Raises :class:`~network_models.errors.InputError` for an id that is not a device of that kind,
    a device whose row is not in its table, values of different lengths or non-finite values.
    """
    given = {
        name: values
        for name, values in (
            ("load_p_mw", load_p_mw), ("load_q_mvar", load_q_mvar),
            ("ev_site_p_mw", ev_site_p_mw), ("ev_site_q_mvar", ev_site_q_mvar),
            ("pv_p_mw", pv_p_mw), ("pv_q_mvar", pv_q_mvar),
            ("bess_p_mw", bess_p_mw), ("bess_q_mvar", bess_q_mvar),
        )
        if values is not None
    }
    columns = {name: _columns(name, values) for name, values in given.items()}
    n = _step_count(columns, steps)
    # registry kind -> device id -> row position, looked up once a call (two arguments a kind)
    rows_of = {"ev_sites": _row_positions(net, "load", registry.ev_sites, "ev_site_q_mvar")}
    arrays = _defaults(net, rows_of["ev_sites"], n)
    for name, by_id in columns.items():
        kind, table, column, sign = _ARGUMENTS[name]
        if kind not in rows_of:
            rows_of[kind] = _row_positions(net, table, getattr(registry, kind), name)
        rows = rows_of[kind]
        for device_id in by_id:
            if device_id not in rows:
                raise InputError(
                    f"{device_id!r} is not one of the registry's {kind}: expected the id of one",
                    source="device_injections", element=device_id, field=name,
                )
        positions = [rows[device_id] for device_id in by_id]
        arrays[(table, column)][:, positions] = sign * _block(list(by_id.values()), n)
    return TimeSeriesInjections(
        **{f"{table}_{column}": values for (table, column), values in arrays.items()}
    )


def _columns(name: str, values: DeviceValues) -> dict[str, np.ndarray]:
    """Device id -> float values (0-d for one number, 1-d per step), checked finite.

    Values of one shape (all numbers, or all sequences of one length) are checked in one array
    (the simulator builds a tick's injections every tick); others, and any that fail, device
    by device, so that the error names the first device at fault.
    """
    pairs = list(values.items())  # a DataFrame's columns or a mapping's items alike
    try:
        stacked = np.asarray([raw for _, raw in pairs], dtype=float)
    except (TypeError, ValueError):  # of different shapes, or not numbers
        stacked = None
    if stacked is not None and stacked.ndim in (1, 2) and np.isfinite(stacked).all():
        return {str(device_id): row for (device_id, _), row in zip(pairs, stacked, strict=True)}
    out: dict[str, np.ndarray] = {}
    for device_id, raw in values.items():
        array = np.asarray(raw, dtype=float)
        if array.ndim > 1 or not np.all(np.isfinite(array)):
            raise InputError(
                f"expected one finite number per step, got {raw!r}",
                source="device_injections", element=str(device_id), field=name,
            )
        out[str(device_id)] = array
    return out


def _step_count(columns: Mapping[str, Mapping[str, np.ndarray]], steps: int | None) -> int:
    lengths = {
        (name, device_id): len(values)
        for name, by_id in columns.items()
        for device_id, values in by_id.items()
        if values.ndim == 1
    }
    n = steps if steps is not None else next(iter(lengths.values()), 1)
    for (name, device_id), length in lengths.items():
        if length != n:
            raise InputError(
                f"expected {n} steps like the other values, got {length}",
                source="device_injections", element=device_id, field=name,
            )
    return n


def _defaults(
    net: pp.pandapowerNet, ev_rows: Mapping[str, int], steps: int
) -> dict[tuple[str, str], np.ndarray]:
    """(steps, rows) arrays before any device value: static loads and sgens, idle storage."""
    arrays = {
        (table, column): np.tile(net[table][column].to_numpy(dtype=float), (steps, 1))
        for table in ("load", "sgen")
        for column in ("p_mw", "q_mvar")
    }
    n_storage = len(net.storage) if "storage" in net else 0
    arrays[("storage", "p_mw")] = np.zeros((steps, n_storage))
    arrays[("storage", "q_mvar")] = np.zeros((steps, n_storage))
    arrays[("load", "q_mvar")][:, list(ev_rows.values())] = 0.0
    return arrays


def _row_positions(
    net: pp.pandapowerNet, table: str, devices: Iterable[Device], name: str
) -> dict[str, int]:
    """Device id -> position of its element in ``net[table]``."""
    index = net[table].index
    positions: dict[str, int] = {}
    for device in devices:
        if device.element.index not in index:
            raise InputError(
                f"row {device.element.index} is not in net.{table}: expected the row of "
                "this device's element",
                source="device_injections", element=device.id, field=name,
            )
        positions[device.id] = int(index.get_loc(device.element.index))
    return positions


def _block(values: list[np.ndarray], steps: int) -> np.ndarray:
    """(steps, devices) array of the devices' values (a number holds for every step)."""
    block = np.empty((steps, len(values)))
    for k, device_values in enumerate(values):
        block[:, k] = device_values
    return block
