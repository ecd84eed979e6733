"""AC power flow of one net over many time steps: power-grid-model batch, or pandapower per step.

Both engines solve the same balanced positive-sequence model that ``pandapower.runpp`` builds with
its defaults (``trafo_model="t"``, ``calculate_voltage_angles=True``, ext_grids as ideal slacks,
``trafo_loading="current"``, ZIP loads). The power-grid-model engine converts the net with the
small converter below (one batch, one Newton-Raphson per step) and agrees with pandapower to
better than 1e-6 pu; the pandapower engine runs ``runpp`` step by step on a copy of the net.

Units and signs follow pandapower: MW, Mvar, kA, pu, degrees. Loads and storage consume
(storage ``p_mw > 0`` charges), sgens generate, an ext_grid's ``p_mw > 0`` feeds the net. A
de-energised or out-of-service bus has NaN voltage; branches without flow report 0.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field, fields
from enum import StrEnum

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower.powerflow import LoadflowNotConverged
from power_grid_model import (
    CalculationMethod,
    ComponentType,
    DatasetType,
    LoadGenType,
    PowerGridModel,
    initialize_array,
)

from network_models.errors import InputError

__all__ = [
    "PowerFlowCase",
    "PowerFlowEngine",
    "TimeSeriesInjections",
    "TimeSeriesResult",
    "run_time_series",
    "solve_once",
]

# pandapower's ext_grid is an ideal slack; a power-grid-model source has an internal impedance.
# At 1e18 VA a 100 MW import moves the source bus by 1e-10 pu, far below the 1e-6 pu we promise,
# and the Newton-Raphson still converges in the usual handful of iterations.
_SOURCE_SK_VA = 1e18
_SOURCE_RX_RATIO = 0.1
_SWITCH_RX_RATIO = 2.0  # runpp's default switch_rx_ratio for bus-bus switches with z_ohm > 0
_PGM_ERROR_TOLERANCE_PU = 1e-10
_PGM_MAX_ITERATIONS = 20
_UNSUPPORTED_TABLES = (
    "gen", "trafo3w", "impedance", "ward", "xward", "dcline", "motor", "asymmetric_load",
    "asymmetric_sgen", "svc", "tcsc", "ssc", "vsc", "line_dc", "b2b_vsc", "vsc_stacked",
    "vsc_bipolar",
)


class PowerFlowEngine(StrEnum):
    """Which solver runs the time series."""

    PANDAPOWER = "pandapower"
    POWER_GRID_MODEL = "power_grid_model"


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


@dataclass(frozen=True, kw_only=True, eq=False)
class TimeSeriesResult:
    """Power flow results per step; rows are steps, columns follow the net's table index order.

    ``*_index`` hold the pandapower indices of the columns. Voltages of de-energised or
    out-of-service buses are NaN; flows of branches that carry none are 0. Loadings are in percent
    of ``max_i_ka * df * parallel`` (lines) and of ``sn_mva * df * parallel`` by current at rated
    voltage (transformers), as pandapower reports them. ``losses_mw`` is the active loss of all
    lines and transformers. A step that did not converge is NaN throughout and ``converged`` False.
    """

    engine: PowerFlowEngine
    bus_index: np.ndarray
    line_index: np.ndarray
    trafo_index: np.ndarray
    ext_grid_index: np.ndarray
    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_pct: np.ndarray
    line_i_ka: np.ndarray
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray
    line_p_to_mw: np.ndarray
    line_q_to_mvar: np.ndarray
    trafo_loading_pct: np.ndarray
    trafo_p_hv_mw: np.ndarray
    trafo_q_hv_mvar: np.ndarray
    trafo_p_lv_mw: np.ndarray
    trafo_q_lv_mvar: np.ndarray
    ext_grid_p_mw: np.ndarray
    ext_grid_q_mvar: np.ndarray
    losses_mw: np.ndarray
    converged: np.ndarray

    @property
    def steps(self) -> int:
        return int(self.converged.shape[0])


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
        self._pgm: _PgmNet | None = None
        self._model: PowerGridModel | None = None
        if self.engine is PowerFlowEngine.POWER_GRID_MODEL:
            self._pgm = _convert_net(self.net)
            self._model = PowerGridModel(self._pgm.input_data,
                                         system_frequency=float(self.net.f_hz))

    def run(self, injections: TimeSeriesInjections) -> TimeSeriesResult:
        """The AC power flow of every step of ``injections`` (see :func:`run_time_series`)."""
        series = _validated_series(self.net, injections)
        steps = _step_count(series)
        if self.engine is PowerFlowEngine.PANDAPOWER:
            return _run_pandapower(self.net, series, steps)
        return _run_power_grid_model(self.net, self._pgm, self._model, series, steps)


# --- injections ------------------------------------------------------------------------------

_SERIES_COLUMNS: dict[str, tuple[str, str]] = {
    field_.name: (field_.name.split("_", 1)[0], field_.name.split("_", 1)[1])
    for field_ in fields(TimeSeriesInjections)
}  # "load_p_mw" -> ("load", "p_mw")


def _validated_series(
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


def _step_count(series: dict[tuple[str, str], np.ndarray]) -> int:
    return next(iter(series.values())).shape[0] if series else 1


def _column_series(
    net: pp.pandapowerNet, series: dict[tuple[str, str], np.ndarray], table: str, column: str,
    steps: int,
) -> np.ndarray:
    """(steps, n_rows) values of one column: the given series or the static value repeated."""
    given = series.get((table, column))
    if given is not None:
        return given
    static = net[table][column].to_numpy(dtype=float)
    return np.broadcast_to(static, (steps, static.shape[0]))


# --- pandapower engine -----------------------------------------------------------------------


def _run_pandapower(
    net: pp.pandapowerNet, series: dict[tuple[str, str], np.ndarray], steps: int
) -> TimeSeriesResult:
    work = copy.deepcopy(net)
    out = _ResultArrays.empty(net, steps)
    if not _has_live_source(net):
        # runpp refuses a net without a slack; every bus is simply dead
        out.mark_all_dead()
        return out.freeze(PowerFlowEngine.PANDAPOWER, net)
    init = "auto"
    for step in range(steps):
        for (table, column), values in series.items():
            work[table][column] = values[step]
        try:
            pp.runpp(work, init=init)
        except LoadflowNotConverged:
            init = "auto"  # the failed run left no results to start from
            continue
        init = "results"
        out.converged[step] = True
        _store_pandapower_step(work, out, step)
    return out.freeze(PowerFlowEngine.PANDAPOWER, net)


def _has_live_source(net: pp.pandapowerNet) -> bool:
    eg = net.ext_grid
    live_bus = net.bus["in_service"].reindex(eg["bus"]).fillna(False).to_numpy(dtype=bool)
    return bool(np.any(eg["in_service"].to_numpy(dtype=bool) & live_bus))


def _store_pandapower_step(net: pp.pandapowerNet, out: _ResultArrays, step: int) -> None:
    out.vm_pu[step] = net.res_bus["vm_pu"].to_numpy()
    out.va_degree[step] = net.res_bus["va_degree"].to_numpy()
    line, trafo, eg = net.res_line, net.res_trafo, net.res_ext_grid
    for name, res, column in (
        ("line_loading_pct", line, "loading_percent"), ("line_i_ka", line, "i_ka"),
        ("line_p_from_mw", line, "p_from_mw"), ("line_q_from_mvar", line, "q_from_mvar"),
        ("line_p_to_mw", line, "p_to_mw"), ("line_q_to_mvar", line, "q_to_mvar"),
        ("trafo_loading_pct", trafo, "loading_percent"), ("trafo_p_hv_mw", trafo, "p_hv_mw"),
        ("trafo_q_hv_mvar", trafo, "q_hv_mvar"), ("trafo_p_lv_mw", trafo, "p_lv_mw"),
        ("trafo_q_lv_mvar", trafo, "q_lv_mvar"), ("ext_grid_p_mw", eg, "p_mw"),
        ("ext_grid_q_mvar", eg, "q_mvar"),
    ):
        if len(res):
            # pandapower leaves NaN on branches between dead buses; they carry nothing
            getattr(out, name)[step] = np.nan_to_num(res[column].to_numpy(dtype=float))
    out.losses_mw[step] = float(np.nansum(line["pl_mw"]) + np.nansum(trafo["pl_mw"]))


@dataclass
class _ResultArrays:
    """Mutable result buffers, NaN until a step is stored."""

    vm_pu: np.ndarray
    va_degree: np.ndarray
    line_loading_pct: np.ndarray
    line_i_ka: np.ndarray
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray
    line_p_to_mw: np.ndarray
    line_q_to_mvar: np.ndarray
    trafo_loading_pct: np.ndarray
    trafo_p_hv_mw: np.ndarray
    trafo_q_hv_mvar: np.ndarray
    trafo_p_lv_mw: np.ndarray
    trafo_q_lv_mvar: np.ndarray
    ext_grid_p_mw: np.ndarray
    ext_grid_q_mvar: np.ndarray
    losses_mw: np.ndarray
    converged: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @classmethod
    def empty(cls, net: pp.pandapowerNet, steps: int) -> _ResultArrays:
        widths = {"vm_pu": len(net.bus), "va_degree": len(net.bus), "losses_mw": None}
        for name in (f.name for f in fields(cls)):
            if name.startswith("line_"):
                widths[name] = len(net.line)
            elif name.startswith("trafo_"):
                widths[name] = len(net.trafo)
            elif name.startswith("ext_grid_"):
                widths[name] = len(net.ext_grid)
        arrays = {
            name: np.full((steps,) if width is None else (steps, width), np.nan)
            for name, width in widths.items()
        }
        return cls(**arrays, converged=np.zeros(steps, dtype=bool))

    def mark_all_dead(self) -> None:
        """Every step solved trivially: no bus energised, nothing flows."""
        for name, array in vars(self).items():
            if name not in ("vm_pu", "va_degree", "converged"):
                array[:] = 0.0
        self.converged[:] = True

    def freeze(self, engine: PowerFlowEngine, net: pp.pandapowerNet) -> TimeSeriesResult:
        for array in vars(self).values():
            array.flags.writeable = False
        return TimeSeriesResult(
            engine=engine,
            bus_index=net.bus.index.to_numpy(),
            line_index=net.line.index.to_numpy(),
            trafo_index=net.trafo.index.to_numpy(),
            ext_grid_index=net.ext_grid.index.to_numpy(),
            **vars(self),
        )


# --- power-grid-model engine -----------------------------------------------------------------


@dataclass(frozen=True)
class _ApplianceRows:
    """PGM sym_load/sym_gen rows made from one pandapower table, with their share of p and q."""

    table: str
    ids: np.ndarray
    positions: np.ndarray  # row positions in the pandapower table
    p_share: np.ndarray
    q_share: np.ndarray


@dataclass(frozen=True)
class _PgmNet:
    """A net converted to power-grid-model input, with the maps back to pandapower rows."""

    input_data: dict[ComponentType, np.ndarray]
    node_of_bus: np.ndarray  # PGM node position per net.bus row
    bus_in_service: np.ndarray
    source_ids: np.ndarray  # per net.ext_grid row; -1 where out of service
    sym_load_rows: tuple[_ApplianceRows, ...]
    sym_gen_rows: tuple[_ApplianceRows, ...]


class _IdCounter:
    """Unique ids across all PGM components of one model, as power-grid-model requires."""

    def __init__(self) -> None:
        self._next = 0

    def take(self, count: int) -> np.ndarray:
        ids = np.arange(self._next, self._next + count, dtype=np.int32)
        self._next += count
        return ids


def _run_power_grid_model(
    net: pp.pandapowerNet,
    pgm_net: _PgmNet,
    model: PowerGridModel,
    series: dict[tuple[str, str], np.ndarray],
    steps: int,
) -> TimeSeriesResult:
    # without loads, sgens or storage nothing varies: one plain calculation stands for all steps
    update = _batch_update(net, pgm_net, series, steps)
    output = model.calculate_power_flow(
        symmetric=True,
        calculation_method=CalculationMethod.newton_raphson,
        error_tolerance=_PGM_ERROR_TOLERANCE_PU,
        max_iterations=_PGM_MAX_ITERATIONS,
        update_data=update or None,
        continue_on_batch_error=True,
        output_component_types=[
            c for c in (ComponentType.node, ComponentType.line, ComponentType.generic_branch,
                        ComponentType.source) if c in pgm_net.input_data
        ],
    )
    output = {
        component: np.broadcast_to(data, (steps, *data.shape[-1:]))
        for component, data in output.items()
    }
    converged = np.ones(steps, dtype=bool)
    if model.batch_error is not None:
        converged[model.batch_error.failed_scenarios] = False
    return _results_from_pgm(net, pgm_net, output, converged)


def _convert_net(net: pp.pandapowerNet) -> _PgmNet:
    """power-grid-model input data for the net's switch states and in_service flags."""
    _reject_unsupported(net)
    ids = _IdCounter()
    bus_in_service = net.bus["in_service"].to_numpy(dtype=bool)
    node_of_bus = _fused_bus_nodes(net, bus_in_service)
    n_nodes = int(node_of_bus.max()) + 1 if len(node_of_bus) else 0
    node = initialize_array(DatasetType.input, ComponentType.node, n_nodes)
    node["id"] = ids.take(n_nodes)
    representative = np.zeros(n_nodes, dtype=int)
    representative[node_of_bus[::-1]] = np.arange(len(node_of_bus))[::-1]
    node["u_rated"] = net.bus["vn_kv"].to_numpy(dtype=float)[representative] * 1e3

    topo = _Topology(net, node_of_bus, bus_in_service)
    input_data: dict[ComponentType, np.ndarray] = {ComponentType.node: node}
    line = _line_input(net, topo, ids)
    trafo = _trafo_input(net, topo, ids)
    switch_branches = _impedance_switch_input(net, topo, ids)
    input_data[ComponentType.line] = np.concatenate([line, switch_branches])
    input_data[ComponentType.generic_branch] = trafo
    source, source_ids = _source_input(net, topo, ids)
    input_data[ComponentType.source] = source
    shunt = _shunt_input(net, topo, ids)
    input_data[ComponentType.shunt] = shunt
    sym_load, sym_load_rows = _appliance_input(net, topo, ids, ComponentType.sym_load)
    sym_gen, sym_gen_rows = _appliance_input(net, topo, ids, ComponentType.sym_gen)
    input_data[ComponentType.sym_load] = sym_load
    input_data[ComponentType.sym_gen] = sym_gen
    return _PgmNet(
        input_data={k: v for k, v in input_data.items() if len(v)},
        node_of_bus=node_of_bus,
        bus_in_service=bus_in_service,
        source_ids=source_ids,
        sym_load_rows=sym_load_rows,
        sym_gen_rows=sym_gen_rows,
    )


def _reject_unsupported(net: pp.pandapowerNet) -> None:
    for table in _UNSUPPORTED_TABLES:
        frame = net[table] if table in net else pd.DataFrame()
        in_service = frame["in_service"] if "in_service" in frame else pd.Series(True, frame.index)
        if in_service.astype(bool).any():
            raise NotImplementedError(
                f"net.{table} has in-service rows: the power-grid-model engine does not model "
                f"{table} elements; use engine=PowerFlowEngine.PANDAPOWER for this net"
            )
    shunt = net.shunt if "shunt" in net else pd.DataFrame()
    if "step_dependency_table" in shunt and shunt["step_dependency_table"].fillna(False).any():
        raise NotImplementedError(
            "net.shunt uses step_dependency_table: tabulated shunt steps are not converted; "
            "use engine=PowerFlowEngine.PANDAPOWER"
        )


def _fused_bus_nodes(net: pp.pandapowerNet, bus_in_service: np.ndarray) -> np.ndarray:
    """PGM node position per bus row: closed bus-bus switches with z_ohm = 0 fuse in-service buses.

    pandapower merges such buses into one; a link would leave a small impedance between them.
    """
    position = _bus_positions(net)
    parent = np.arange(len(net.bus))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sw = net.switch
    fused = (sw["et"] == "b") & sw["closed"].astype(bool) & ~(_switch_z_ohm(sw) > 0)
    for bus, element in zip(sw.loc[fused, "bus"], sw.loc[fused, "element"], strict=True):
        a, b = int(position[bus]), int(position[element])
        if bus_in_service[a] and bus_in_service[b]:
            parent[root(a)] = root(b)
    roots = np.array([root(i) for i in range(len(parent))], dtype=int)
    _, node_of_bus = np.unique(roots, return_inverse=True)
    return node_of_bus.astype(int)


def _bus_positions(net: pp.pandapowerNet) -> np.ndarray:
    """Row position of each bus, indexed by bus index (-1 where no bus has that index)."""
    index = net.bus.index.to_numpy(dtype=np.int64)
    position = np.full(int(index.max()) + 1 if len(index) else 0, -1, dtype=np.int64)
    position[index] = np.arange(len(index))
    return position


def _switch_z_ohm(sw: pd.DataFrame) -> pd.Series:
    if "z_ohm" not in sw:
        return pd.Series(0.0, index=sw.index)
    return sw["z_ohm"].fillna(0.0).astype(float)


class _Topology:
    """Node ids of buses and the open ends of lines and transformers."""

    def __init__(
        self, net: pp.pandapowerNet, node_of_bus: np.ndarray, bus_in_service: np.ndarray
    ) -> None:
        self._position = _bus_positions(net)
        self._vn_kv = net.bus["vn_kv"].to_numpy(dtype=float)
        self._node_of_bus = node_of_bus
        self._bus_in_service = bus_in_service
        open_sw = net.switch[~net.switch["closed"].astype(bool)]
        self._open_ends = {
            (et, int(element), int(bus))
            for et, element, bus in zip(
                open_sw["et"], open_sw["element"], open_sw["bus"], strict=True
            )
        }

    def _rows(self, buses: pd.Series) -> np.ndarray:
        return self._position[buses.to_numpy(dtype=np.int64)]

    def node(self, buses: pd.Series) -> np.ndarray:
        return self._node_of_bus[self._rows(buses)]

    def bus_alive(self, buses: pd.Series) -> np.ndarray:
        return self._bus_in_service[self._rows(buses)]

    def vn_kv(self, buses: pd.Series) -> np.ndarray:
        return self._vn_kv[self._rows(buses)]

    def end_closed(self, et: str, table: pd.DataFrame, bus_column: str) -> np.ndarray:
        """Whether each branch end is connected: in-service bus and no open switch there."""
        no_open_switch = np.array(
            [(et, int(i), int(b)) not in self._open_ends
             for i, b in zip(table.index, table[bus_column], strict=True)],
            dtype=bool,
        )
        return self.bus_alive(table[bus_column]) & no_open_switch


def _line_input(net: pp.pandapowerNet, topo: _Topology, ids: _IdCounter) -> np.ndarray:
    line = net.line
    n = len(line)
    out = initialize_array(DatasetType.input, ComponentType.line, n)
    out["id"] = ids.take(n)
    if n == 0:
        return out
    in_service = line["in_service"].to_numpy(dtype=bool)
    out["from_node"] = topo.node(line["from_bus"])
    out["to_node"] = topo.node(line["to_bus"])
    out["from_status"] = in_service & topo.end_closed("l", line, "from_bus")
    out["to_status"] = in_service & topo.end_closed("l", line, "to_bus")
    length_km = line["length_km"].to_numpy(dtype=float)
    parallel = line["parallel"].to_numpy(dtype=float)
    out["r1"] = line["r_ohm_per_km"].to_numpy(dtype=float) * length_km / parallel
    out["x1"] = line["x_ohm_per_km"].to_numpy(dtype=float) * length_km / parallel
    c_f = line["c_nf_per_km"].to_numpy(dtype=float) * 1e-9 * length_km * parallel
    g_s = line["g_us_per_km"].to_numpy(dtype=float) * 1e-6 * length_km * parallel
    if np.any((g_s != 0) & (c_f == 0)):
        raise NotImplementedError(
            "net.line has rows with g_us_per_km > 0 and c_nf_per_km = 0: a shunt conductance "
            "without capacitance is not converted; use engine=PowerFlowEngine.PANDAPOWER"
        )
    out["c1"] = c_f
    omega_c = 2 * math.pi * float(net.f_hz) * c_f
    out["tan1"] = np.divide(g_s, omega_c, out=np.zeros(n), where=omega_c > 0)
    i_n = line["max_i_ka"].to_numpy(dtype=float) * line["df"].to_numpy(dtype=float) * parallel
    out["i_n"] = np.where(i_n > 0, i_n * 1e3, np.nan)
    return out


def _impedance_switch_input(
    net: pp.pandapowerNet, topo: _Topology, ids: _IdCounter
) -> np.ndarray:
    """Closed bus-bus switches with z_ohm > 0 are small impedances, as in runpp."""
    sw = net.switch
    mask = (sw["et"] == "b") & sw["closed"].astype(bool) & (_switch_z_ohm(sw) > 0)
    mask &= topo.bus_alive(sw["bus"]) & topo.bus_alive(
        sw["element"].where(sw["et"] == "b", sw["bus"])
    )
    chosen = sw[mask]
    n = len(chosen)
    out = initialize_array(DatasetType.input, ComponentType.line, n)
    out["id"] = ids.take(n)
    if n == 0:
        return out
    z_ohm = chosen["z_ohm"].to_numpy(dtype=float)
    out["from_node"] = topo.node(chosen["bus"])
    out["to_node"] = topo.node(chosen["element"])
    out["from_status"] = 1
    out["to_status"] = 1
    out["r1"] = z_ohm * _SWITCH_RX_RATIO / math.hypot(1.0, _SWITCH_RX_RATIO)
    out["x1"] = z_ohm / math.hypot(1.0, _SWITCH_RX_RATIO)
    out["c1"] = 0.0
    out["tan1"] = 0.0
    return out


def _trafo_input(net: pp.pandapowerNet, topo: _Topology, ids: _IdCounter) -> np.ndarray:
    """Two-winding transformers as generic branches holding runpp's T-model pi equivalent.

    power-grid-model's own transformer is a pi model; pandapower's default is the T model with the
    magnetising branch between two halves of the leakage impedance. The exact pi equivalent of
    that T, with the tap ratio and phase shift on the HV side, is what a generic branch holds.
    Impedances and admittances are in ohm and siemens referred to the LV side.
    """
    trafo = net.trafo
    n = len(trafo)
    out = initialize_array(DatasetType.input, ComponentType.generic_branch, n)
    out["id"] = ids.take(n)
    if n == 0:
        return out
    _reject_unsupported_trafo_options(trafo)
    # unlike a line, runpp drops a transformer whole when either of its buses is out of service
    in_service = trafo["in_service"].to_numpy(dtype=bool)
    in_service &= topo.bus_alive(trafo["hv_bus"]) & topo.bus_alive(trafo["lv_bus"])
    out["from_node"] = topo.node(trafo["hv_bus"])
    out["to_node"] = topo.node(trafo["lv_bus"])
    out["from_status"] = in_service & topo.end_closed("t", trafo, "hv_bus")
    out["to_status"] = in_service & topo.end_closed("t", trafo, "lv_bus")

    vn_hv_kv, vn_lv_kv, shift_deg = _tapped_ratings(trafo)
    ratio = (vn_hv_kv / vn_lv_kv) / (topo.vn_kv(trafo["hv_bus"]) / topo.vn_kv(trafo["lv_bus"]))
    z_series, y_shunt = _trafo_t_to_pi(trafo, vn_lv_kv)
    out["r1"] = z_series.real
    out["x1"] = z_series.imag
    out["g1"] = y_shunt.real
    out["b1"] = y_shunt.imag
    out["k"] = ratio
    out["theta"] = np.deg2rad(shift_deg)
    out["sn"] = (trafo["sn_mva"] * trafo["parallel"]).to_numpy(dtype=float) * 1e6
    return out


def _reject_unsupported_trafo_options(trafo: pd.DataFrame) -> None:
    if "tap_dependency_table" in trafo and trafo["tap_dependency_table"].fillna(False).any():
        raise NotImplementedError(
            "net.trafo uses tap_dependency_table: tabulated tap characteristics are not "
            "converted; use engine=PowerFlowEngine.PANDAPOWER"
        )
    for column in ("leakage_resistance_ratio_hv", "leakage_reactance_ratio_hv"):
        if column in trafo and not np.allclose(trafo[column].fillna(0.5).astype(float), 0.5):
            raise NotImplementedError(
                f"net.trafo.{column} differs from 0.5: an asymmetric T model is not converted; "
                "use engine=PowerFlowEngine.PANDAPOWER"
            )
    if len(trafo) and "tap_changer_type" not in trafo:
        raise NotImplementedError(
            "net.trafo has no tap_changer_type column (a pandapower 2.x net): convert it with "
            "pandapower.convert_format first"
        )


def _tapped_ratings(trafo: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rated HV and LV voltages (kV) after the tap changers, and the phase shift (degrees)."""
    vn_kv = {
        "hv": trafo["vn_hv_kv"].to_numpy(dtype=float).copy(),
        "lv": trafo["vn_lv_kv"].to_numpy(dtype=float).copy(),
    }
    shift_deg = trafo["shift_degree"].fillna(0.0).to_numpy(dtype=float).copy()
    for prefix in ("tap", "tap2"):
        if f"{prefix}_pos" not in trafo:
            continue
        kind = trafo[f"{prefix}_changer_type"].astype(object).where(
            trafo[f"{prefix}_changer_type"].notna(), ""
        ).to_numpy()
        if np.any(kind == "Tabular"):
            raise NotImplementedError(
                f"net.trafo.{prefix}_changer_type 'Tabular' is not converted; "
                "use engine=PowerFlowEngine.PANDAPOWER"
            )
        side = trafo[f"{prefix}_side"].astype(object).where(
            trafo[f"{prefix}_side"].notna(), ""
        ).to_numpy()
        steps = (
            trafo[f"{prefix}_pos"].to_numpy(dtype=float)
            - trafo[f"{prefix}_neutral"].to_numpy(dtype=float)
        )
        step_pct = _float_column(trafo, f"{prefix}_step_percent")
        step_deg = _float_column(trafo, f"{prefix}_step_degree")
        for name, direction in (("hv", 1.0), ("lv", -1.0)):
            vn = vn_kv[name]
            ratio_tap = ((kind == "Ratio") | (kind == "Symmetrical")) & (side == name)
            ideal_tap = (kind == "Ideal") & (side == name)
            # a tap that changes magnitude and angle of the winding voltage together
            du = vn * np.nan_to_num(step_pct * steps / 100.0)
            angle = np.deg2rad(np.nan_to_num(step_deg))
            along, across = vn + du * np.cos(angle), du * np.sin(angle)
            shift_deg += np.where(ratio_tap, np.rad2deg(np.arctan(direction * across / along)), 0)
            vn[ratio_tap] = np.hypot(along, across)[ratio_tap]
            # an ideal phase shifter turns the angle only
            ideal_shift = np.where(
                np.nan_to_num(step_deg) != 0,
                steps * step_deg,
                2 * np.rad2deg(np.arcsin(np.clip(steps * step_pct / 200.0, -1, 1))),
            )
            shift_deg += np.where(ideal_tap, direction * np.nan_to_num(ideal_shift), 0)
    return vn_kv["hv"], vn_kv["lv"], shift_deg


def _float_column(table: pd.DataFrame, column: str) -> np.ndarray:
    if column not in table:
        return np.full(len(table), np.nan)
    return pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)


def _trafo_t_to_pi(trafo: pd.DataFrame, vn_lv_kv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Series impedance (ohm) and total shunt admittance (S) of the pi equal to the T model.

    Both on the tapped LV winding voltage; the shunt is split equally between the two ends.
    """
    sn_mva = trafo["sn_mva"].to_numpy(dtype=float)
    parallel = trafo["parallel"].to_numpy(dtype=float)
    z_base = vn_lv_kv**2 / sn_mva
    z_abs = trafo["vk_percent"].to_numpy(dtype=float) / 100.0 * z_base
    r = trafo["vkr_percent"].to_numpy(dtype=float) / 100.0 * z_base
    z_series = (r + 1j * np.sqrt(np.maximum(z_abs**2 - r**2, 0.0))) / parallel
    g_mag = trafo["pfe_kw"].to_numpy(dtype=float) * 1e-3 / vn_lv_kv**2
    y_mag_abs = trafo["i0_percent"].to_numpy(dtype=float) / 100.0 * sn_mva / vn_lv_kv**2
    b_mag = -np.sqrt(np.maximum(y_mag_abs**2 - g_mag**2, 0.0))
    y_mag = (g_mag + 1j * b_mag) * parallel

    pi_series = z_series.astype(complex)
    pi_shunt = np.zeros(len(trafo), dtype=complex)
    has_mag = y_mag != 0
    # star (half, half, magnetising) to delta
    half = z_series[has_mag] / 2
    z_mag = 1 / y_mag[has_mag]
    star_sum = half * half + 2 * half * z_mag
    pi_series[has_mag] = star_sum / z_mag
    pi_shunt[has_mag] = 2 * half / star_sum  # each end: 1 / (star_sum / half); two ends
    return pi_series, pi_shunt


def _source_input(
    net: pp.pandapowerNet, topo: _Topology, ids: _IdCounter
) -> tuple[np.ndarray, np.ndarray]:
    eg = net.ext_grid
    live = eg["in_service"].to_numpy(dtype=bool) & topo.bus_alive(eg["bus"])
    chosen = eg[live]
    out = initialize_array(DatasetType.input, ComponentType.source, len(chosen))
    out["id"] = ids.take(len(chosen))
    source_ids = np.full(len(eg), -1, dtype=np.int64)
    source_ids[live] = out["id"]
    if len(chosen):
        out["node"] = topo.node(chosen["bus"])
        out["status"] = 1
        out["u_ref"] = chosen["vm_pu"].to_numpy(dtype=float)
        out["u_ref_angle"] = np.deg2rad(chosen["va_degree"].fillna(0.0).to_numpy(dtype=float))
        out["sk"] = _SOURCE_SK_VA
        out["rx_ratio"] = _SOURCE_RX_RATIO
    return out, source_ids


def _shunt_input(net: pp.pandapowerNet, topo: _Topology, ids: _IdCounter) -> np.ndarray:
    """Shunts as admittances: p_mw and q_mvar (consumed, per step) at the shunt's vn_kv."""
    sh = net.shunt if "shunt" in net else pd.DataFrame()
    if len(sh) == 0:
        return initialize_array(DatasetType.input, ComponentType.shunt, 0)
    live = sh["in_service"].to_numpy(dtype=bool) & topo.bus_alive(sh["bus"])
    chosen = sh[live]
    out = initialize_array(DatasetType.input, ComponentType.shunt, len(chosen))
    out["id"] = ids.take(len(chosen))
    if len(chosen):
        vn_kv = chosen["vn_kv"].to_numpy(dtype=float)
        vn_kv = np.where(np.isnan(vn_kv), topo.vn_kv(chosen["bus"]), vn_kv)
        per_kv2 = chosen["step"].to_numpy(dtype=float) / vn_kv**2
        out["node"] = topo.node(chosen["bus"])
        out["status"] = 1
        out["g1"] = chosen["p_mw"].to_numpy(dtype=float) * per_kv2
        out["b1"] = -chosen["q_mvar"].to_numpy(dtype=float) * per_kv2
    return out


def _appliance_input(
    net: pp.pandapowerNet, topo: _Topology, ids: _IdCounter, component: ComponentType
) -> tuple[np.ndarray, tuple[_ApplianceRows, ...]]:
    """sym_load rows (loads split by ZIP share, storage) or sym_gen rows (sgens)."""
    groups: list[tuple[_ApplianceRows, LoadGenType, np.ndarray]] = []
    for table, load_type, p_share, q_share in _appliance_parts(net, component):
        frame = net[table]
        live = frame["in_service"].to_numpy(dtype=bool) & topo.bus_alive(frame["bus"])
        live &= (p_share != 0) | (q_share != 0)
        positions = np.flatnonzero(live)
        rows = _ApplianceRows(
            table=table, ids=ids.take(len(positions)), positions=positions,
            p_share=p_share[positions], q_share=q_share[positions],
        )
        groups.append((rows, load_type, topo.node(frame["bus"].iloc[positions])))
    n = sum(len(rows.ids) for rows, _, _ in groups)
    out = initialize_array(DatasetType.input, component, n)
    if n:
        out["id"] = np.concatenate([rows.ids for rows, _, _ in groups])
        out["node"] = np.concatenate([nodes for _, _, nodes in groups])
        out["status"] = 1
        out["type"] = np.concatenate([np.full(len(r.ids), t) for r, t, _ in groups])
        out["p_specified"] = 0.0
        out["q_specified"] = 0.0
    return out, tuple(rows for rows, _, _ in groups)


def _appliance_parts(
    net: pp.pandapowerNet, component: ComponentType
) -> list[tuple[str, LoadGenType, np.ndarray, np.ndarray]]:
    """(table, PGM load type, share of p, share of q) per row; a ZIP load becomes three parts."""
    if component == ComponentType.sym_gen:
        n = len(net.sgen)
        return [("sgen", LoadGenType.const_power, np.ones(n), np.ones(n))]
    load = net.load
    pct = {
        name: (load[name].fillna(0.0).to_numpy(dtype=float) / 100.0 if name in load
               else np.zeros(len(load)))
        for name in ("const_z_p_percent", "const_z_q_percent", "const_i_p_percent",
                     "const_i_q_percent")
    }
    n_storage = len(net.storage) if "storage" in net else 0
    parts = [
        ("load", LoadGenType.const_power,
         1.0 - pct["const_z_p_percent"] - pct["const_i_p_percent"],
         1.0 - pct["const_z_q_percent"] - pct["const_i_q_percent"]),
        ("load", LoadGenType.const_impedance, pct["const_z_p_percent"], pct["const_z_q_percent"]),
        ("load", LoadGenType.const_current, pct["const_i_p_percent"], pct["const_i_q_percent"]),
    ]
    if n_storage:
        parts.append(("storage", LoadGenType.const_power, np.ones(n_storage), np.ones(n_storage)))
    return parts


def _batch_update(
    net: pp.pandapowerNet,
    pgm_net: _PgmNet,
    series: dict[tuple[str, str], np.ndarray],
    steps: int,
) -> dict[ComponentType, np.ndarray]:
    """One scenario per step with p and q of every sym_load and sym_gen (W, var)."""
    update: dict[ComponentType, np.ndarray] = {}
    for component, groups in (
        (ComponentType.sym_load, pgm_net.sym_load_rows),
        (ComponentType.sym_gen, pgm_net.sym_gen_rows),
    ):
        n = sum(len(rows.ids) for rows in groups)
        if n == 0:
            continue
        batch = initialize_array(DatasetType.update, component, (steps, n))
        start = 0
        for rows in groups:
            stop = start + len(rows.ids)
            scaling = net[rows.table]["scaling"].to_numpy(dtype=float)[rows.positions]
            for column, share, target in (("p_mw", rows.p_share, "p_specified"),
                                          ("q_mvar", rows.q_share, "q_specified")):
                values = _column_series(net, series, rows.table, column, steps)
                batch[target][:, start:stop] = values[:, rows.positions] * scaling * share * 1e6
            batch["id"][:, start:stop] = rows.ids
            start = stop
        update[component] = batch
    return update


def _results_from_pgm(
    net: pp.pandapowerNet,
    pgm_net: _PgmNet,
    output: dict[ComponentType, np.ndarray],
    converged: np.ndarray,
) -> TimeSeriesResult:
    steps = converged.shape[0]
    out = _ResultArrays.empty(net, steps)
    out.converged[:] = converged
    node = output[ComponentType.node][:, pgm_net.node_of_bus]
    alive = (node["energized"] == 1) & pgm_net.bus_in_service
    out.vm_pu[:] = np.where(alive, node["u_pu"], np.nan)
    out.va_degree[:] = np.where(alive, np.rad2deg(node["u_angle"]), np.nan)

    losses = np.zeros(steps)
    if len(net.line):
        line = output[ComponentType.line][:, : len(net.line)]
        i_ka = np.maximum(line["i_from"], line["i_to"]) / 1e3
        rating_ka = (net.line["max_i_ka"] * net.line["df"] * net.line["parallel"]).to_numpy(float)
        out.line_i_ka[:] = i_ka
        out.line_loading_pct[:] = _percent(i_ka, rating_ka)
        _store_branch_flows(out, "line", line, ("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"))
        losses += (line["p_from"] + line["p_to"]).sum(axis=1) / 1e6
    if len(net.trafo):
        trafo = output[ComponentType.generic_branch]
        tr = net.trafo
        s_hv = trafo["i_from"] / 1e3 * tr["vn_hv_kv"].to_numpy(dtype=float)
        s_lv = trafo["i_to"] / 1e3 * tr["vn_lv_kv"].to_numpy(dtype=float)
        rating_mva = (tr["sn_mva"] * tr["df"] * tr["parallel"]).to_numpy(dtype=float)
        out.trafo_loading_pct[:] = _percent(np.maximum(s_hv, s_lv) * math.sqrt(3), rating_mva)
        _store_branch_flows(out, "trafo", trafo, ("p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar"))
        losses += (trafo["p_from"] + trafo["p_to"]).sum(axis=1) / 1e6
    out.losses_mw[:] = losses
    if len(net.ext_grid):
        live = pgm_net.source_ids >= 0
        out.ext_grid_p_mw[:] = 0.0
        out.ext_grid_q_mvar[:] = 0.0
        if live.any():
            source = output[ComponentType.source]
            out.ext_grid_p_mw[:, live] = source["p"] / 1e6
            out.ext_grid_q_mvar[:, live] = source["q"] / 1e6
    _blank_failed_steps(out, converged)
    return out.freeze(PowerFlowEngine.POWER_GRID_MODEL, net)


def _percent(value: np.ndarray, rating: np.ndarray) -> np.ndarray:
    return np.divide(value * 100.0, rating, out=np.full_like(value, np.inf), where=rating != 0)


def _store_branch_flows(
    out: _ResultArrays, prefix: str, branch: np.ndarray, names: tuple[str, str, str, str]
) -> None:
    for name, attribute in zip(names, ("p_from", "q_from", "p_to", "q_to"), strict=True):
        getattr(out, f"{prefix}_{name}")[:] = np.nan_to_num(branch[attribute]) / 1e6


def _blank_failed_steps(out: _ResultArrays, converged: np.ndarray) -> None:
    failed = ~converged
    if not failed.any():
        return
    for name, array in vars(out).items():
        if name != "converged":
            array[failed] = np.nan

