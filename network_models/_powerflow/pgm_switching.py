"""One net converted for power-grid-model once, solved for many switch states in one batch.

A switch at a line or transformer end only opens that end, so a switch state becomes the
``from_status``/``to_status`` of the converted branches in each scenario's update data, and one
conversion serves every state. Closed bus-bus switches fuse buses into one node (as pandapower
does), so the conversion depends on them: the case keeps one conversion per state of its bus-bus
switches, made the first time a step needs it, and runs one batch per conversion.

The case reads the net's element powers (``p_mw``, ``q_mvar``, ``scaling``) at each run, where
the injections do not give them; its structure (``in_service`` flags, impedances, ratings) is
the net's when the case was made. Units and results as :func:`network_models.powerflow.
run_time_series`.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandapower as pp
import scipy.sparse as sp
from power_grid_model import ComponentType, DatasetType, PowerGridModel, initialize_array

from network_models._powerflow.injections import (
    TimeSeriesInjections,
    step_count,
    validated_series,
)
from network_models._powerflow.pgm_batch import BranchRatings, batch_update, solve_batch
from network_models._powerflow.pgm_conversion import PgmNet, convert_net
from network_models._powerflow.results import TimeSeriesResult
from network_models.errors import InputError

__all__ = ["SwitchingCase"]


class SwitchingCase:
    """``net`` converted for power-grid-model, solved for a switch state per step.

    ``net`` is kept by reference (see the module docstring): a study that changes its
    ``in_service`` flags or impedances needs a new case.
    """

    def __init__(self, net: pp.pandapowerNet) -> None:
        self.net = net
        sw = net.switch
        et = sw["et"].to_numpy(dtype=object)
        self._bus_bus = np.flatnonzero(et == "b")
        self._ends = _BranchEnds.of(net)
        self._ratings = BranchRatings.of(net)
        self._converted: dict[bytes, tuple[PgmNet, PowerGridModel]] = {}

    def run(
        self, switch_closed: np.ndarray, injections: TimeSeriesInjections
    ) -> TimeSeriesResult:
        """AC power flow of each step: ``switch_closed`` (steps × net.switch rows, bool) and the
        step's injections (steps as ``switch_closed``; ``None`` keeps the net's values)."""
        closed = np.atleast_2d(np.asarray(switch_closed, dtype=bool))
        series = validated_series(self.net, injections)
        steps = closed.shape[0]
        if closed.shape[1] != len(self.net.switch) or (series and step_count(series) != steps):
            raise InputError(
                f"expected switch states shaped (steps, {len(self.net.switch)}) and injections "
                f"of as many steps, got {closed.shape} and {step_count(series)} steps",
                source="SwitchingCase", field="switch_closed",
            )
        keys = [closed[s, self._bus_bus].tobytes() for s in range(steps)]
        parts: list[tuple[np.ndarray, TimeSeriesResult]] = []
        for key in dict.fromkeys(keys):
            rows = np.array([s for s in range(steps) if keys[s] == key])
            pgm_net, model = self._conversion(key, closed[rows[0]])
            part_series = {name: values[rows] for name, values in series.items()}
            update = batch_update(self.net, pgm_net, part_series, len(rows))
            update.update(self._ends.status_update(pgm_net, closed[rows]))
            result = solve_batch(self.net, pgm_net, model, update, len(rows), self._ratings)
            parts.append((rows, result))
        if len(parts) == 1:
            return parts[0][1]
        return _merged(parts, steps)

    def _conversion(self, key: bytes, closed: np.ndarray) -> tuple[PgmNet, PowerGridModel]:
        if key not in self._converted:
            saved = self.net.switch["closed"].to_numpy(copy=True)
            # branch-end switches closed: their state comes with each step's update
            state = np.ones(len(saved), dtype=bool)
            state[self._bus_bus] = closed[self._bus_bus]
            self.net.switch["closed"] = state
            try:
                pgm_net = convert_net(self.net)
            finally:
                self.net.switch["closed"] = saved
            model = PowerGridModel(pgm_net.input_data, system_frequency=float(self.net.f_hz))
            self._converted[key] = (pgm_net, model)
        return self._converted[key]


class _BranchEnds:
    """Which switches sit at each line and transformer end, as (ends × switches) matrices."""

    def __init__(self, net: pp.pandapowerNet, matrices: dict[str, sp.csr_matrix],
                 alive: dict[str, np.ndarray]) -> None:
        self.net = net
        self.matrices = matrices
        self.alive = alive  # branch in service and bus in service, per end

    @classmethod
    def of(cls, net: pp.pandapowerNet) -> _BranchEnds:
        sw = net.switch
        bus_alive = dict(zip(net.bus.index.tolist(), net.bus["in_service"].astype(bool),
                             strict=True))
        matrices, alive = {}, {}
        for et, table, ends in (("l", "line", ("from_bus", "to_bus")),
                                ("t", "trafo", ("hv_bus", "lv_bus"))):
            frame = net[table]
            row_of = {int(i): r for r, i in enumerate(frame.index.tolist())}
            in_service = frame["in_service"].to_numpy(dtype=bool)
            if et == "t" and len(frame):
                # runpp drops a transformer whole when either of its buses is out of service
                in_service = in_service & np.array(
                    [bus_alive[int(h)] and bus_alive[int(lv)]
                     for h, lv in zip(frame["hv_bus"], frame["lv_bus"], strict=True)], dtype=bool)
            for end in ends:
                bus_of_row = frame[end].to_numpy(dtype=np.int64)
                pairs = [
                    (k, row_of[int(e)])
                    for k, (s_et, e, b) in enumerate(
                        zip(sw["et"].tolist(), sw["element"].tolist(), sw["bus"].tolist(),
                            strict=True))
                    if s_et == et and int(e) in row_of and int(b) == bus_of_row[row_of[int(e)]]
                ]
                rows_, cols = (zip(*pairs, strict=True) if pairs else ((), ()))
                # (ends × switches): a step's open switches at each end, by one product
                matrices[end] = sp.csr_matrix(
                    (np.ones(len(pairs)), (list(cols), list(rows_))), shape=(len(frame), len(sw))
                )
                alive[end] = in_service & np.array(
                    [bus_alive[int(b)] for b in bus_of_row], dtype=bool
                )
        return cls(net, matrices, alive)

    def status_update(self, pgm_net: PgmNet, closed: np.ndarray) -> dict[ComponentType, np.ndarray]:
        """Line and transformer end states per step (steps × branches) as update data."""
        update = {}
        steps = closed.shape[0]
        opened = (~closed).astype(float)
        for component, table, (a, b) in (
            (ComponentType.line, "line", ("from_bus", "to_bus")),
            (ComponentType.generic_branch, "trafo", ("hv_bus", "lv_bus")),
        ):
            n = len(self.net[table])
            if n == 0:
                continue
            batch = initialize_array(DatasetType.update, component, (steps, n))
            # the converter puts a table's rows first, in table order
            batch["id"] = pgm_net.input_data[component]["id"][:n]
            for end, column in ((a, "from_status"), (b, "to_status")):
                any_open = (self.matrices[end] @ opened.T).T > 0
                batch[column] = self.alive[end][None, :] & ~any_open
            update[component] = batch
        return update


def _merged(parts: list[tuple[np.ndarray, TimeSeriesResult]], steps: int) -> TimeSeriesResult:
    """One result of ``steps`` steps from results of some of them (rows given)."""
    first = parts[0][1]
    values = {}
    for f in fields(TimeSeriesResult):
        value = getattr(first, f.name)
        if f.name in ("engine",) or f.name.endswith("_index"):
            values[f.name] = value
            continue
        merged = np.empty((steps, *value.shape[1:]), dtype=value.dtype)
        for rows, result in parts:
            merged[rows] = getattr(result, f.name)
        merged.flags.writeable = False
        values[f.name] = merged
    return TimeSeriesResult(**values)
