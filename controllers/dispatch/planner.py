"""The ``Dispatcher``: plans a horizon's schedule, checks it in full AC, re-linearises until it
passes (the steps are in the package docstring, :mod:`controllers.dispatch`)."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from controllers.config import DispatchConfig
from controllers.dispatch.ac_check import ac_check_of
from controllers.dispatch.assembly import (
    baseline_schedule,
    safe_schedule,
    schedule_injections,
    schedule_of_solution,
)
from controllers.dispatch.plan_run import PlanResult, Replanning, decision_record
from controllers.dispatch.positions import MonitoredColumns
from controllers.dispatch.sessions import (
    fixable_shortfall,
    session_states,
    topped_up,
    vehicles_that_should_not_wait,
)
from controllers.dispatch.window import base_point, window_inputs
from controllers.dispatch_problem import (
    BasePoint,
    DispatchInputs,
    DispatchProblem,
    WindowInputs,
)
from controllers.ev_charging import SessionState
from controllers.network_linearisation import NetworkLinearisation, linearise
from controllers.schedule import AcCheck, DispatchSchedule
from controllers.screening import MonitoredLimits, screen_limits, window_limits
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle
from network_models.ac_checks import OperatingPoint, apply_operating_point
from network_models.model import GridModel
from network_models.powerflow import (
    PowerFlowCase,
    PowerFlowEngine,
    TimeSeriesInjections,
    run_time_series,
)

LINEARISATION_POINT = OperatingPoint(
    name="linearisation",
    load_frac=0.6,
    ev_frac=0.2,
    pv_frac=0.3,
    note="a typical daytime point; slopes vary little over the voltage band",
)


def net_with_switches(model: GridModel, switch_closed: Mapping[str, bool]) -> object:
    """A copy of the model's net with the given switch positions applied (by switch name)."""
    net = model.copy_net()
    for name, closed in switch_closed.items():
        net.switch.at[model.switch_index(name), "closed"] = bool(closed)
    return net


class Dispatcher:
    """Plans schedules over a fixed-length horizon for one model and switch state.

    Public: :meth:`plan` (the optimised, AC-checked schedule), :meth:`baseline` (uncontrolled
    operation), :meth:`safe_schedule` (the rule-based fallback), :meth:`evaluate` (the AC check
    of any schedule) and :meth:`injections` (its power-flow injections); ``terminal_soc_frac``
    sets the batteries' end-of-window targets (e.g. from a day-ahead plan)."""

    def __init__(
        self,
        model: GridModel,
        *,
        steps: int,
        step_h: float = 0.25,
        config: DispatchConfig | None = None,
        switch_closed: Mapping[str, bool] | None = None,
        screen_each_window: bool = False,
    ) -> None:
        """``screen_each_window``: each plan monitors only the limits of the year's extremes
        that the window's uncontrolled AC flow also comes near (:func:`screen_by_reach`; the
        day-ahead's, where the problem is built for one plan and when first solved), not all
        those of the extremes (kept by the MPC, which builds one problem here and re-solves
        it for every window)."""
        self.model = model
        self.screen_each_window = screen_each_window
        self.steps = steps
        self.step_h = step_h
        self.config = config or DispatchConfig()
        self.switch_closed = dict(switch_closed or {})
        # BESS state of charge at the end of the window, by id (e.g. from a day-ahead plan)
        self.terminal_soc_frac: dict[str, float] = {}
        self.net = net_with_switches(model, self.switch_closed)
        point = copy.deepcopy(self.net)
        apply_operating_point(model, point, LINEARISATION_POINT)
        self.lin: NetworkLinearisation = linearise(point)
        self.power_flow = PowerFlowCase(self.net)  # converted once per dispatcher
        # the limits the year's extremes can reach (see ``screening``)
        self.limits: MonitoredLimits = screen_limits(model, self.net, self.lin, self.config)
        self._year_limits = self.limits
        self._problem: DispatchProblem | None = None
        if not screen_each_window:
            self._problem = self.problem  # built once, re-solved for every window
        reg = model.registry
        self.pv_ids = [d.id for d in reg.pv]
        self.bess = reg.bess
        self.ev_sites = reg.ev_sites
        self.load_ids = [d.id for d in reg.loads]
        self.columns = MonitoredColumns.of(self.net, self.lin)

    @property
    def problem(self) -> DispatchProblem:
        """The dispatch problem of the monitored limits, built on first use."""
        if self._problem is None:
            self._problem = DispatchProblem(self.model, self.lin, steps=self.steps,
                                            step_h=self.step_h, config=self.config,
                                            limits=self.limits)
        return self._problem

    def _screen_window(self, base: BasePoint) -> None:
        """Monitor the limits of the year's extremes the window's own flow ``base`` comes
        near (:func:`window_limits`); a new problem if they changed."""
        limits = window_limits(self.lin, self._year_limits, base, self.config)
        if not all(np.array_equal(getattr(limits, k), getattr(self.limits, k))
                   for k in ("v_low", "v_high", "branches")):
            self.limits, self._problem = limits, None

    # -- planning ------------------------------------------------------------------------------
    def plan(
        self,
        bundle: ForecastBundle,
        snapshot: GridSnapshot,
        *,
        base: DispatchSchedule | None = None,
    ) -> PlanResult:
        """The validated schedule for the bundle's first ``steps`` steps from ``snapshot``.

        Starts from ``base`` (the caller's previous schedule, if it covers the window) or from
        uncontrolled operation; then solves, splits each site among its sessions, checks in AC
        and solves again around the AC solution, or with higher EV envelopes where sessions
        fell short, until the check passes and no session is left short that could be served,
        at most ``max_relinearisations`` times more."""
        t_start = time.perf_counter()
        bundle = self._window(bundle, snapshot.time)
        # real departures everywhere: finishing early is the split's preference, never a deadline
        states = session_states(bundle, snapshot)
        start = base if base is not None and base.index.equals(bundle.index) else None
        baseline = None
        if start is None:
            start = baseline = self.baseline(bundle, snapshot, states=states)
        window = self.window_inputs(bundle, snapshot, states)
        start_ac = self.evaluate(bundle, start)
        if self.screen_each_window:
            self._screen_window(base_point(start, start_ac, self.columns))
        run = Replanning(base_schedule=start, base_ac=start_ac, schedule=start, ac=start_ac,
                          ev_energy_min_mwh=window.ev_energy_min_mwh.copy())
        for iterations in range(1, self.config.max_relinearisations + 2):
            run.iterations = iterations
            if not self._solve(run, window):
                break
            self._split_among_sessions(run, bundle, snapshot, states)
            late = fixable_shortfall(self.ev_sites, bundle, states, run.schedule, run.solution,
                                     run.ev_energy_min_mwh)
            if run.ac.passed and not late:
                break
            if not run.ac.passed:
                self._relinearise(run)
            if late:
                self._raise_envelopes(run, late)
        return PlanResult(
            schedule=run.schedule,
            record=decision_record(run, bundle, snapshot, states, t_start,
                                   ev_sites=self.ev_sites, bess=self.bess),
            ac=run.ac,
            solution=run.solution,
            baseline=baseline,
            baseline_ac=start_ac if baseline is not None else None,
        )

    def window_inputs(
        self, bundle: ForecastBundle, snapshot: GridSnapshot, states: Sequence[SessionState]
    ) -> WindowInputs:
        """The problem's inputs of the window ``bundle`` (see :func:`window.window_inputs`)."""
        return window_inputs(self.model.registry, bundle, snapshot, states, config=self.config,
                             terminal_soc_frac=self.terminal_soc_frac)

    def _solve(self, run: Replanning, window: WindowInputs) -> bool:
        """Solve around the run's base point with its envelopes; False if no solution."""
        inputs = DispatchInputs(
            window=replace(window, ev_energy_min_mwh=run.ev_energy_min_mwh),
            base=base_point(run.base_schedule, run.base_ac, self.columns),
        )
        self.problem.set_inputs(inputs)
        solution = run.solution = self.problem.solve()
        run.solve_s += solution.solve_s if np.isfinite(solution.solve_s) else solution.total_s
        if solution.ok and self.problem.last_attempts:
            run.notes.append(f"solve {run.iterations}: solved after "
                             f"{'; '.join(self.problem.last_attempts)}")
        if not solution.ok:
            run.notes.append(f"solve {run.iterations}: {solution.status}")
        return solution.ok

    def _split_among_sessions(
        self,
        run: Replanning,
        bundle: ForecastBundle,
        snapshot: GridSnapshot,
        states: Sequence[SessionState],
    ) -> None:
        """The run's solution as a schedule, split among sessions, and its AC check.

        The split's top-up serves what the site envelope (a relaxation) misplaced, but it is
        not in the network problem: where it breaks a limit, the split keeps to the plan's site
        power from here on, and a session it leaves short is the envelope's to serve (raised
        later) or the grid's to report."""
        reg, margin = self.model.registry, self.config.ev_finish_margin_min
        schedule = schedule_of_solution(reg, bundle, snapshot, states, run.solution,
                                        finish_margin_min=margin, top_up=run.top_up)
        ac = self.evaluate(bundle, schedule)
        if not ac.passed and run.top_up and topped_up(self.ev_sites, schedule, run.solution):
            held = schedule_of_solution(reg, bundle, snapshot, states, run.solution,
                                        finish_margin_min=margin, top_up=False)
            held_ac = self.evaluate(bundle, held)
            if len(held_ac.violations) < len(ac.violations):
                run.notes.append(
                    f"solve {run.iterations}: the split among sessions drew beyond the plan's "
                    f"site power and broke {len(ac.violations)} AC limit(s); split again "
                    f"within the plan's site power ({len(held_ac.violations)} violation(s))"
                )
                run.top_up, schedule, ac = False, held, held_ac
        run.schedule, run.ac = schedule, ac

    def _relinearise(self, run: Replanning) -> None:
        """After a failed AC check: add back violated limits the screen left out, and make the
        schedule the new base point."""
        ac = run.ac
        added = self._monitor_violated(ac)
        if added:
            run.limits_readded += added
            run.notes.append(
                f"solve {run.iterations}: AC check found violations at {added} limit(s) "
                "the screen had left out; added them and rebuilt the problem"
            )
        first = ac.violations[0]
        run.notes.append(
            f"solve {run.iterations}: AC check found {len(ac.violations)} violation(s), "
            f"first {first.kind} at {first.element} step {first.step}: re-linearised "
            "around the AC solution"
        )
        run.base_schedule, run.base_ac = run.schedule, ac

    def _raise_envelopes(self, run: Replanning, late: Sequence[tuple[int, int, float]]) -> None:
        """The site envelope is a relaxation: where the split among sessions left some owed,
        ask the site for that much more by those sessions' departures."""
        for site_row, step, kwh in late:
            run.ev_energy_min_mwh[site_row, step:] += kwh / 1000.0
        run.envelopes_raised += len(late)
        run.notes.append(
            f"solve {run.iterations}: {len(late)} session(s) short after the split among "
            "sessions; raised their sites' energy envelopes"
        )

    def _monitor_violated(self, ac: AcCheck) -> int:
        """Add violated limits the screen left out; rebuild the problem if any. How many."""
        lin, net = self.lin, self.net
        bus_row = {str(net.bus.name.at[b]): i for i, b in enumerate(lin.monitored_buses)}
        n_lines = len(lin.monitored_lines)
        branch_row = {str(net.line.name.at[li]): i for i, li in enumerate(lin.monitored_lines)}
        branch_row.update(
            {str(net.trafo.name.at[ti]): n_lines + i for i, ti in enumerate(lin.monitored_trafos)}
        )
        low, high, branches = [], [], []
        for v in ac.violations:
            if v.kind == "voltage_low" and v.element in bus_row:
                low.append(bus_row[v.element])
            elif v.kind == "voltage_high" and v.element in bus_row:
                high.append(bus_row[v.element])
            elif v.kind in ("line_loading", "trafo_loading") and v.element in branch_row:
                branches.append(branch_row[v.element])
        new = self.limits.with_added(v_low=low, v_high=high, branches=branches)
        added = (len(new.v_low) + len(new.v_high) + len(new.branches)
                 - len(self.limits.v_low) - len(self.limits.v_high) - len(self.limits.branches))
        if not added:
            return 0
        self.limits, self._problem = new, None  # rebuilt at the next solve
        return added

    def vehicles_that_should_not_wait(
        self, site, states: Sequence[SessionState], now: pd.Timestamp
    ) -> list[SessionState]:
        """The vehicles plugged in at ``site`` whose charging the plan does not defer, with this
        dispatcher's thresholds (``sessions.vehicles_that_should_not_wait``)."""
        return vehicles_that_should_not_wait(site, states, now, self.config)

    # -- schedules without the optimiser, and the AC check --------------------------------------
    def baseline(
        self,
        bundle: ForecastBundle,
        snapshot: GridSnapshot,
        *,
        states: Sequence[SessionState] | None = None,
    ) -> DispatchSchedule:
        """Uncontrolled operation: PV uncurtailed, batteries idle, EVs at full power on arrival."""
        bundle = self._window(bundle, snapshot.time)
        states = session_states(bundle, snapshot) if states is None else states
        return baseline_schedule(self.model.registry, bundle, snapshot, states)

    def safe_schedule(self, bundle: ForecastBundle, snapshot: GridSnapshot) -> DispatchSchedule:
        """The rule-based schedule a fallback sends when no plan can be made: PV uncurtailed at
        unity power factor, batteries idle, every vehicle charged just in time within half its
        site's limit (no optimiser, no network model: what holds without either).

        Over the window of ``steps`` steps from ``snapshot.time``; the sessions are the
        snapshot's, with the forecast's arrivals added as owed."""
        window = self._window(bundle, snapshot.time)
        states = session_states(window, snapshot)
        return safe_schedule(self.model.registry, window, snapshot, states)

    def evaluate(
        self,
        bundle: ForecastBundle,
        schedule: DispatchSchedule,
        *,
        engine: PowerFlowEngine = PowerFlowEngine.POWER_GRID_MODEL,
    ) -> AcCheck:
        """Full AC power flow of every step of ``schedule`` against the forecast's loads."""
        t0 = time.perf_counter()
        injections = self.injections(bundle, schedule)
        if engine is PowerFlowEngine.POWER_GRID_MODEL:
            res = self.power_flow.run(injections)  # converted once per dispatcher
        else:
            res = run_time_series(self.net, injections, engine=engine)
        wall = time.perf_counter() - t0
        return ac_check_of(self.net, res, self.config, wall)

    def injections(
        self, bundle: ForecastBundle, schedule: DispatchSchedule
    ) -> TimeSeriesInjections:
        """The per-step injections of the dispatcher's net for ``schedule`` and the forecast's
        loads (what :meth:`evaluate` runs)."""
        return schedule_injections(self.net, self.model.registry, bundle, schedule)

    def _window(self, bundle: ForecastBundle, start: pd.Timestamp) -> ForecastBundle:
        end = start + pd.Timedelta(hours=self.step_h * self.steps)
        w = bundle.window(start, end)
        if len(w.index) != self.steps:
            raise ValueError(
                f"the forecast covers {len(w.index)} steps from {start}, the plan needs "
                f"{self.steps}: extend the forecast horizon"
            )
        if abs(w.step_h - self.step_h) > 1e-9:
            raise ValueError(f"forecast step {w.step_h} h, planner step {self.step_h} h")
        return w
