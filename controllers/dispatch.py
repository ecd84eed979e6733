"""Plan a dispatch schedule for a horizon: optimise, check in full AC, re-linearise until it passes.

``Dispatcher`` owns one ``DispatchProblem`` (built once for the model, its switch state and the
horizon length) and plans from a forecast bundle and a grid snapshot:

1. the first base point is the forecast with PV uncurtailed, batteries idle and EVs charging
   unmanaged (or the caller's previous schedule);
2. an AC power flow of every step of the base point gives the linearisation offsets;
3. the optimiser decides; EV site power is split among sessions (``ev_charging``);
4. the schedule is checked with a full AC power flow of every step; if a limit is violated, the
   schedule becomes the new base point and the problem is solved again (parameters only).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from controllers.bess_soc import floor_frac, read_fleet, soc_issues
from controllers.config import DispatchConfig
from controllers.dispatch_problem import DispatchInputs, DispatchProblem, DispatchSolution
from controllers.ev_charging import (
    SessionState,
    allocate_site,
    site_envelope,
    uncontrolled_site_kw,
)
from controllers.network_linearisation import NetworkLinearisation, linearise
from controllers.schedule import AcCheck, AcViolation, DecisionRecord, DispatchSchedule
from controllers.screening import MonitoredLimits, screen_limits
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle
from network_models.ac_checks import OperatingPoint, apply_operating_point, limit_violations
from network_models.model import GridModel
from network_models.powerflow import (
    PowerFlowCase,
    PowerFlowEngine,
    TimeSeriesInjections,
    TimeSeriesResult,
    run_time_series,
)

LINEARISATION_POINT = OperatingPoint(
    name="linearisation",
    load_frac=0.6,
    ev_frac=0.2,
    pv_frac=0.3,
    note="a typical daytime point; slopes vary little over the voltage band",
)


@dataclass(frozen=True, kw_only=True, eq=False)
class PlanResult:
    schedule: DispatchSchedule
    record: DecisionRecord
    ac: AcCheck
    solution: DispatchSolution | None
    # the uncontrolled schedule and its AC check, when the plan started from it (no ``base``)
    baseline: DispatchSchedule | None = None
    baseline_ac: AcCheck | None = None


def net_with_switches(model: GridModel, switch_closed: Mapping[str, bool]) -> object:
    """A copy of the model's net with the given switch positions applied (by switch name)."""
    net = model.copy_net()
    for name, closed in switch_closed.items():
        net.switch.at[model.switch_index(name), "closed"] = bool(closed)
    return net


class Dispatcher:
    """Plans schedules over a fixed-length horizon for one model and switch state."""

    def __init__(
        self,
        model: GridModel,
        *,
        steps: int,
        step_h: float = 0.25,
        config: DispatchConfig | None = None,
        switch_closed: Mapping[str, bool] | None = None,
    ) -> None:
        self.model = model
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
        self._power_flow = PowerFlowCase(self.net)
        self.limits: MonitoredLimits = screen_limits(model, self.net, self.lin, self.config)
        self.problem = DispatchProblem(
            model, self.lin, steps=steps, step_h=step_h, config=self.config, limits=self.limits
        )
        reg = model.registry
        self.pv_ids = [d.id for d in reg.pv]
        self.bess = reg.bess
        self.ev_sites = reg.ev_sites
        self.load_ids = [d.id for d in reg.loads]
        self._pv_rows = _rows(self.net.sgen.index, [d.element.index for d in reg.pv])
        self._bess_rows = _rows(self.net.storage.index, [d.element.index for d in reg.bess])
        self._ev_rows = _rows(self.net.load.index, [d.element.index for d in reg.ev_sites])
        self._load_rows = _rows(self.net.load.index, [d.element.index for d in reg.loads])
        self._mon_cols = _rows(self.net.bus.index, list(self.lin.monitored_buses))
        self._line_cols = _rows(self.net.line.index, list(self.lin.monitored_lines))
        self._trafo_cols = _rows(self.net.trafo.index, list(self.lin.monitored_trafos))
        from_bus = np.r_[
            self.net.line.from_bus.to_numpy()[self._line_cols],
            self.net.trafo.hv_bus.to_numpy()[self._trafo_cols],
        ].astype(int)
        self._from_bus_cols = _rows(self.net.bus.index, list(from_bus))  # of monitored branches

    # -- public --------------------------------------------------------------------------------
    def plan(
        self,
        bundle: ForecastBundle,
        snapshot: GridSnapshot,
        *,
        base: DispatchSchedule | None = None,
    ) -> PlanResult:
        """The validated schedule for the bundle's first ``steps`` steps from ``snapshot``."""
        t_start = time.perf_counter()
        bundle = self._window(bundle, snapshot.time)
        # real departures everywhere: finishing early is the split's preference, never a deadline
        states = measured = self._session_states(bundle, snapshot)
        schedule = base if base is not None and base.index.equals(bundle.index) else None
        baseline = None
        if schedule is None:
            schedule = baseline = self.baseline(bundle, snapshot, states=measured)
        inputs_static = self._static_inputs(bundle, snapshot, states)
        base_schedule, base_ac = schedule, self.evaluate(bundle, schedule)
        baseline_ac = base_ac if baseline is not None else None
        solve_s, iterations, notes = 0.0, 0, []
        solution: DispatchSolution | None = None
        ac = base_ac
        ev_lo = inputs_static["ev_lo"].copy()
        top_up = True  # the split may draw beyond the plan, until that breaks an AC limit
        raised = readded = 0  # sessions whose site envelope was raised; limits added back
        for iterations in range(1, self.config.max_relinearisations + 2):
            inputs = self._inputs({**inputs_static, "ev_lo": ev_lo}, base_schedule, base_ac)
            self.problem.set_inputs(inputs)
            solution = self.problem.solve()
            solve_s += solution.solve_s if np.isfinite(solution.solve_s) else solution.total_s
            if solution.ok and self.problem.last_attempts:
                notes.append(f"solve {iterations}: solved after "
                             f"{'; '.join(self.problem.last_attempts)}")
            if not solution.ok:
                notes.append(f"solve {iterations}: {solution.status}")
                break
            schedule = self._schedule(bundle, snapshot, states, solution, top_up=top_up)
            ac = self.evaluate(bundle, schedule)
            if not ac.passed and top_up and self._topped_up(schedule, solution):
                # the split's top-up serves what the site envelope (a relaxation) misplaced,
                # but it is not in the network problem: where it breaks a limit, the split
                # keeps to the plan's site power from here on, and a session it leaves short
                # is the envelope's to serve (raised below) or the grid's to report
                held = self._schedule(bundle, snapshot, states, solution, top_up=False)
                held_ac = self.evaluate(bundle, held)
                if len(held_ac.violations) < len(ac.violations):
                    notes.append(
                        f"solve {iterations}: the split among sessions drew beyond the plan's "
                        f"site power and broke {len(ac.violations)} AC limit(s); split again "
                        f"within the plan's site power ({len(held_ac.violations)} violation(s))"
                    )
                    top_up, schedule, ac = False, held, held_ac
            late = self._fixable_shortfall(bundle, states, schedule, solution, ev_lo)
            if ac.passed and not late:
                break
            if not ac.passed:
                added = self._monitor_violated(ac)
                if added:
                    readded += added
                    notes.append(
                        f"solve {iterations}: AC check found violations at {added} limit(s) "
                        "the screen had left out; added them and rebuilt the problem"
                    )
                first = ac.violations[0]
                notes.append(
                    f"solve {iterations}: AC check found {len(ac.violations)} violation(s), "
                    f"first {first.kind} at {first.element} step {first.step}: re-linearised "
                    "around the AC solution"
                )
                base_schedule, base_ac = schedule, ac
            if late:
                # the site envelope is a relaxation: where the split among sessions left some
                # owed, ask the site for that much more by those sessions' departures
                for site_row, step, kwh in late:
                    ev_lo[site_row, step:] += kwh / 1000.0
                raised += len(late)
                notes.append(
                    f"solve {iterations}: {len(late)} session(s) short after the split among "
                    "sessions; raised their sites' energy envelopes"
                )
        shortfall = self._shortfall(bundle, measured, schedule)
        unservable = self._unservable_note(bundle, measured, shortfall)
        if unservable is not None:
            notes.append(unservable)
        status = solution.status if solution is not None else "not_solved"
        if solution is not None and solution.ok and not ac.passed:
            worst = ac.violations[0]
            notes.append(
                f"after {iterations} solves the AC check still fails: {worst.kind} at "
                f"{worst.element} step {worst.step} = {worst.value:.4f} (limit {worst.limit})"
            )
        record = DecisionRecord(
            time=bundle.index[0].isoformat(),
            status=status,
            fallback=None,
            objective_cny=solution.objective_cny if solution is not None else float("nan"),
            terms_cny=solution.terms_cny if solution is not None else {},
            solve_s=solve_s,
            total_s=time.perf_counter() - t_start,
            relinearisations=max(iterations - 1, 0),
            ac_check=ac.summary(),
            ev_shortfall_kwh=shortfall,
            bess_soc_issues=soc_issues(read_fleet(self.bess, snapshot.bess_soc_frac)),
            notes=tuple(notes),
            binding_constraints=binding_records(solution, bundle.index),
            limits_readded=readded,
            ev_envelopes_raised=raised,
        )
        return PlanResult(
            schedule=schedule,
            record=record,
            ac=ac,
            solution=solution,
            baseline=baseline,
            baseline_ac=baseline_ac,
        )

    def _fixable_shortfall(
        self,
        bundle: ForecastBundle,
        states: Sequence[SessionState],
        schedule: DispatchSchedule,
        solution: DispatchSolution,
        ev_lo_mwh: np.ndarray,
    ) -> list[tuple[int, int, float]]:
        """(site row, step of departure, kWh) for sessions left short of what they could get
        (an unservable session's gap beyond its maximum is reported, not chased), at sites
        whose plan met their envelope by that step: where the plan itself fell short of the
        envelope (the grid or the site limit could not carry it), a higher envelope costs the
        same per MWh and changes nothing, so it is reported, not chased."""
        from controllers.ev_charging import presence_h, servable_owed_kwh

        short = self._shortfall(bundle, states, schedule)
        if not short:
            return []
        planned_mwh = np.cumsum(solution.ev_p_mw, axis=1) * bundle.step_h
        plan_short = ev_lo_mwh - planned_mwh > 1e-6
        site_row = {s.id: k for k, s in enumerate(self.ev_sites)}
        by_id = {s.session.id: s for s in states}
        sites = {s.id: s for s in self.ev_sites}
        delivered = schedule.ev_session_p_kw.sum(axis=0) * bundle.step_h
        out = []
        for sid in short:
            st = by_id[sid]
            site = sites[st.session.site]
            servable = float(servable_owed_kwh(site, [st], bundle.index, bundle.step_h)[0])
            kwh = servable - float(delivered.get(sid, 0.0))
            if kwh <= 1e-3:
                continue  # no schedule can serve more: reported, not chased
            hours = presence_h([st.session], bundle.index, bundle.step_h)[0]
            present = np.flatnonzero(hours > 0)
            row, step = site_row[site.id], int(present[-1])
            if plan_short[row, step]:
                continue
            out.append((row, step, kwh))
        return out

    def _topped_up(self, schedule: DispatchSchedule, solution: DispatchSolution) -> bool:
        """True if the split among sessions drew more than the plan's site power somewhere."""
        if not len(self.ev_sites):
            return False
        drawn = schedule.ev_site_p_mw.to_numpy().T
        return bool((drawn - solution.ev_p_mw > 1e-6).any())

    def _unservable_note(
        self, bundle: ForecastBundle, states: Sequence[SessionState], short: Mapping[str, float]
    ) -> str | None:
        """What of the shortfall no schedule could have served: sessions that ask for more than
        the rest of their stay allows at their power."""
        from controllers.ev_charging import servable_owed_kwh

        sites = {s.id: s for s in self.ev_sites}
        gaps = {}
        for st in states:
            if st.session.id in short and st.session.site in sites:
                servable = servable_owed_kwh(sites[st.session.site], [st], bundle.index,
                                             bundle.step_h)[0]
                gap = st.energy_owed_kwh - float(servable)
                if gap > 1e-3:
                    gaps[st.session.id] = gap
        if not gaps:
            return None
        named = ", ".join(f"{sid} {kwh:.1f} kWh" for sid, kwh in list(gaps.items())[:5])
        return (f"{len(gaps)} session(s) unservable on their own (more than their stay allows at "
                f"their power), {sum(gaps.values()):.1f} kWh of the shortfall: {named}"
                + (", ..." if len(gaps) > 5 else ""))

    def _monitor_violated(self, ac: AcCheck) -> int:
        """Add violated limits the screen left out; rebuild the problem if any. How many."""
        bus_row = {str(self.net.bus.name.at[b]): i for i, b in enumerate(self.lin.monitored_buses)}
        n_lines = len(self.lin.monitored_lines)
        branch_row = {
            str(self.net.line.name.at[li]): i for i, li in enumerate(self.lin.monitored_lines)
        }
        branch_row.update(
            {
                str(self.net.trafo.name.at[ti]): n_lines + i
                for i, ti in enumerate(self.lin.monitored_trafos)
            }
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
        self.limits = new
        self.problem = DispatchProblem(
            self.model,
            self.lin,
            steps=self.steps,
            step_h=self.step_h,
            config=self.config,
            limits=new,
        )
        return added

    def baseline(
        self,
        bundle: ForecastBundle,
        snapshot: GridSnapshot,
        *,
        states: Sequence[SessionState] | None = None,
    ) -> DispatchSchedule:
        """Uncontrolled operation: PV uncurtailed, batteries idle, EVs at full power on arrival."""
        bundle = self._window(bundle, snapshot.time)
        states = self._session_states(bundle, snapshot) if states is None else states
        idx = bundle.index
        allocs = {s.id: uncontrolled_site_kw(s, states, idx, bundle.step_h) for s in self.ev_sites}
        pv = bundle.pv_p_mw.reindex(columns=self.pv_ids, fill_value=0.0)
        readings = read_fleet(self.bess, snapshot.bess_soc_frac)
        soc0 = np.array([readings[b.id].soc_frac for b in self.bess])  # NaN: unknown
        return self._assemble(
            bundle,
            pv.to_numpy().T,
            np.zeros_like(pv.to_numpy().T),
            np.zeros((len(self.bess), len(idx))),
            np.zeros((len(self.bess), len(idx))),
            np.repeat(soc0[:, None], len(idx), axis=1),
            allocs,
        )

    def safe_dispatch(self, bundle: ForecastBundle, snapshot: GridSnapshot) -> DispatchSchedule:
        """The rule-based schedule a fallback sends when no plan can be made: PV uncurtailed at
        unity power factor, batteries idle, every vehicle charged just in time within half its
        site's limit (no optimiser, no network model: what holds without either)."""
        from controllers.ev_charging import allocate_site

        window = self._window(bundle, snapshot.time)
        states = self._session_states(window, snapshot)
        base = self.baseline(window, snapshot, states=states)
        allocs = {
            s.id: allocate_site(
                s, states, np.full(len(window.index), s.p_site_max_kw / 2000.0), window.index,
                window.step_h,
            )
            for s in self.ev_sites
        }
        return self._assemble(
            window,
            base.pv_p_mw.to_numpy().T,
            np.zeros_like(base.pv_q_mvar.T),
            np.zeros_like(base.bess_p_mw.to_numpy().T),
            np.zeros_like(base.bess_q_mvar.to_numpy().T),
            base.bess_soc_frac.to_numpy().T,
            allocs,
        )

    def evaluate(
        self,
        bundle: ForecastBundle,
        schedule: DispatchSchedule,
        *,
        engine: PowerFlowEngine = PowerFlowEngine.POWER_GRID_MODEL,
    ) -> AcCheck:
        """Full AC power flow of every step of ``schedule`` against the forecast's loads."""
        t0 = time.perf_counter()
        injections = self._injections(bundle, schedule)
        if engine is PowerFlowEngine.POWER_GRID_MODEL:
            res = self._power_flow.run(injections)  # converted once per dispatcher
        else:
            res = run_time_series(self.net, injections, engine=engine)
        wall = time.perf_counter() - t0
        return ac_check_of(self.net, res, self.config, wall)

    # -- internals -----------------------------------------------------------------------------
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

    def _session_states(
        self, bundle: ForecastBundle, snapshot: GridSnapshot
    ) -> tuple[SessionState, ...]:
        """Snapshot sessions win; forecast sessions not in the snapshot are added as owed."""
        known = {s.session.id: s for s in snapshot.ev_sessions}
        states = list(known.values())
        end = bundle.end
        for s in bundle.ev_sessions:
            if s.id not in known and s.departure > snapshot.time and s.arrival < end:
                if s.arrival < snapshot.time:
                    continue  # already arrived yet not measured: not plugged in any more
                states.append(SessionState(session=s, energy_delivered_kwh=0.0))
        return tuple(s for s in states if s.session.departure > snapshot.time)

    def vehicles_that_should_not_wait(
        self, site, states: Sequence[SessionState], now: pd.Timestamp
    ) -> list[SessionState]:
        """The vehicles plugged in at ``site`` whose charging the plan does not defer, with this
        dispatcher's thresholds (:func:`~controllers.ev_charging.sessions_that_should_not_wait`);
        none when ``ev_deferral_cny_per_mwh`` is off. The MPC gives them the grid's room too."""
        from controllers.ev_charging import sessions_that_should_not_wait

        cfg = self.config
        if cfg.weights.ev_deferral_cny_per_mwh <= 0:
            return []
        return sessions_that_should_not_wait(
            site, states, now, slack_h=cfg.ev_wait_slack_min / 60.0,
            busy_frac=cfg.ev_site_busy_frac, oversubscribed_ratio=cfg.ev_site_oversubscribed_ratio)

    def _first_step_floor_mwh(
        self, site, snapshot: GridSnapshot, index: pd.DatetimeIndex, step_h: float
    ) -> float:
        """What the vehicles at ``site`` that should not wait can take in the first step, MWh:
        each at its power limit up to what it can still get, the site within its limit at every
        minute. The optimiser is asked for it (a soft floor priced at
        ``ev_deferral_cny_per_mwh``) so that no price or peak term holds such a vehicle back
        while the site has room and the grid is not limiting: energy deferred is energy a later
        arrival, unknown now, may take (the shortfall risk of an online plan)."""
        from controllers.ev_charging import max_site_energy_kwh, servable_owed_kwh

        plugged = self.vehicles_that_should_not_wait(site, snapshot.ev_sessions, snapshot.time)
        if not plugged:
            return 0.0
        owed = servable_owed_kwh(site, plugged, index, step_h)
        kwh = max_site_energy_kwh(site, [st.session for st in plugged], index[:1], step_h, owed)
        return float(kwh[0]) / 1000.0

    def _static_inputs(
        self, bundle: ForecastBundle, snapshot: GridSnapshot, states: Sequence[SessionState]
    ) -> dict[str, np.ndarray]:
        t, idx = self.steps, bundle.index
        pv_avail = bundle.pv_p_mw.reindex(columns=self.pv_ids, fill_value=0.0).to_numpy().T
        s_mva = np.array([d.s_mva for d in self.model.registry.pv])[:, None]
        # an inverter without reactive control has none to give (its q_set point is 0 to 0)
        q_capable = np.array([d.q_capable for d in self.model.registry.pv], dtype=bool)[:, None]
        q_cap = (np.sqrt(np.clip(s_mva**2 - pv_avail**2, 0.0, None)) * (pv_avail > 1e-6)
                 * q_capable)
        env = [site_envelope(s, states, idx, bundle.step_h) for s in self.ev_sites]
        ev_floor = [self._first_step_floor_mwh(s, snapshot, idx, bundle.step_h)
                    for s in self.ev_sites]
        n_ev = len(self.ev_sites)
        readings = read_fleet(self.bess, snapshot.bess_soc_frac)
        e0, emin, emax, p_max, etarget = [], [], [], [], []
        for b in self.bess:
            r = readings[b.id]
            floor = floor_frac(b, use_island_reserve=self.config.use_island_reserve)
            target = self.terminal_soc_frac.get(b.id, self.config.bess_terminal_soc_frac)
            target = b.soc_init_frac if target is None or not np.isfinite(target) else target
            target = min(max(target, floor), b.soc_max_frac)
            # unknown: held at 0 MW where it is assumed to be (inside the band, so no penalty)
            soc = r.soc_frac if r.dispatchable else target
            e0.append(soc * b.e_mwh)
            # the band widened to the measured SoC: never infeasible at the start, never
            # further out; the way back in is the objective's (out-of-band penalty)
            emin.append(min(floor, soc) * b.e_mwh)
            emax.append(max(b.soc_max_frac, soc) * b.e_mwh)
            p_max.append(b.p_mw if r.dispatchable else 0.0)
            etarget.append((target if r.dispatchable else soc) * b.e_mwh)
        price = bundle.price_cny_per_kwh.to_numpy() * 1000.0 * self.config.weights.energy
        carbon = bundle.carbon_kg_per_kwh.to_numpy() * self.config.weights.carbon_cny_per_t
        loads = bundle.load_p_mw.reindex(columns=self.load_ids, fill_value=0.0).to_numpy()
        return {
            "pv_avail": pv_avail,
            "pv_qcap": q_cap,
            "ev_cap": np.vstack([e.cap_mw for e in env]) if n_ev else np.zeros((0, t)),
            "ev_lo": np.vstack([e.e_min_mwh for e in env]) if n_ev else np.zeros((0, t)),
            "ev_hi": np.vstack([e.e_max_mwh for e in env]) if n_ev else np.zeros((0, t)),
            "ev_floor": np.array(ev_floor, dtype=float),
            "e0": np.array(e0),
            "emin": np.array(emin),
            "emax": np.array(emax),
            "bess_p_max": np.array(p_max),
            "etarget": np.array(etarget),
            "cost": price + carbon,
            "load": loads.sum(axis=1),
        }

    def _inputs(
        self, st: dict[str, np.ndarray], base: DispatchSchedule, ac: AcCheck
    ) -> DispatchInputs:
        res: TimeSeriesResult = ac.result
        vm = res.vm_pu[:, self._mon_cols].T
        vm = np.where(np.isfinite(vm), vm, 1.0)
        flow_p = np.vstack(
            [res.line_p_from_mw[:, self._line_cols].T, res.trafo_p_hv_mw[:, self._trafo_cols].T]
        )
        flow_q = np.vstack(
            [res.line_q_from_mvar[:, self._line_cols].T, res.trafo_q_hv_mvar[:, self._trafo_cols].T]
        )
        v_from = res.vm_pu[:, self._from_bus_cols].T
        v_from = np.where(np.isfinite(v_from), v_from, 1.0)
        return DispatchInputs(
            pv_avail_mw=st["pv_avail"],
            pv_q_cap_mvar=st["pv_qcap"],
            ev_cap_mw=st["ev_cap"],
            ev_e_min_mwh=st["ev_lo"],
            ev_e_max_mwh=st["ev_hi"],
            ev_first_step_floor_mwh=st["ev_floor"],
            bess_e0_mwh=st["e0"],
            bess_e_min_mwh=st["emin"],
            bess_e_max_mwh=st["emax"],
            bess_p_max_mw=st["bess_p_max"],
            bess_e_target_mwh=st["etarget"],
            import_cost_cny_per_mwh=st["cost"],
            base_pv_p_mw=base.pv_p_mw.to_numpy().T,
            base_pv_q_mvar=base.pv_q_mvar.to_numpy().T,
            base_bess_p_mw=base.bess_p_mw.to_numpy().T,
            base_bess_q_mvar=base.bess_q_mvar.to_numpy().T,
            base_ev_p_mw=base.ev_site_p_mw.to_numpy().T,
            base_vm_pu=vm,
            base_flow_p_mw=np.nan_to_num(flow_p),
            base_flow_q_mvar=np.nan_to_num(flow_q),
            base_v_from_pu=v_from,
            base_import_mw=np.nan_to_num(res.ext_grid_p_mw.sum(axis=1)),
            uncontrolled_net_load_mw=st["load"],
        )

    def _schedule(
        self,
        bundle: ForecastBundle,
        snapshot: GridSnapshot,
        states: Sequence[SessionState],
        sol: DispatchSolution,
        *,
        top_up: bool = True,
    ) -> DispatchSchedule:
        idx = bundle.index
        margin_h = max(self.config.ev_finish_margin_min, 0.0) / 60.0
        allocs = {
            s.id: allocate_site(s, states, sol.ev_p_mw[k], idx, bundle.step_h,
                                finish_margin_h=margin_h, top_up=top_up)
            for k, s in enumerate(self.ev_sites)
        }
        e_mwh = np.array([b.e_mwh for b in self.bess])[:, None]
        soc = sol.bess_e_mwh / e_mwh if len(self.bess) else sol.bess_e_mwh
        readings = read_fleet(self.bess, snapshot.bess_soc_frac)
        held = np.array([not readings[b.id].dispatchable for b in self.bess], dtype=bool)
        # a battery of unknown charge: exactly 0 MW (not the solver's 1e-9), its SoC unknown
        bess_p = np.where(held[:, None], 0.0, sol.bess_p_mw)
        soc = np.where(held[:, None], np.nan, soc)
        return self._assemble(
            bundle,
            np.clip(sol.pv_p_mw, 0, None),
            sol.pv_q_mvar,
            bess_p,
            sol.bess_q_mvar,
            soc,
            allocs,
        )

    def _assemble(self, bundle, pv_p, pv_q, bess_p, bess_q, soc, allocs) -> DispatchSchedule:
        idx = bundle.index
        bess_ids = [b.id for b in self.bess]
        site_cols, session_cols = {}, {}
        for site in self.ev_sites:
            a = allocs[site.id]
            site_cols[site.id] = (
                a.p_kw.sum(axis=0) / 1000.0 if len(a.session_ids) else np.zeros(len(idx))
            )
            for sid, row in zip(a.session_ids, a.p_kw, strict=True):
                session_cols[sid] = row

        def frame(values: np.ndarray, cols: list[str]) -> pd.DataFrame:
            return pd.DataFrame(
                np.asarray(values).T.reshape(len(idx), len(cols)), index=idx, columns=cols
            )

        return DispatchSchedule(
            index=idx,
            step_h=bundle.step_h,
            pv_p_mw=frame(pv_p, self.pv_ids),
            pv_q_mvar=frame(pv_q, self.pv_ids),
            bess_p_mw=frame(bess_p, bess_ids),
            bess_q_mvar=frame(bess_q, bess_ids),
            bess_soc_frac=frame(soc, bess_ids),
            ev_site_p_mw=pd.DataFrame(site_cols, index=idx, columns=[s.id for s in self.ev_sites]),
            ev_session_p_kw=pd.DataFrame(session_cols, index=idx, columns=list(session_cols)),
        )

    def _shortfall(
        self, bundle: ForecastBundle, states: Sequence[SessionState], schedule: DispatchSchedule
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        end = bundle.end
        delivered = schedule.ev_session_p_kw.sum(axis=0) * bundle.step_h
        for s in states:
            if s.session.departure <= end:
                got = float(delivered.get(s.session.id, 0.0))
                owed = s.energy_owed_kwh - got
                if owed > 1e-3:
                    out[s.session.id] = round(owed, 4)
        return out

    def _injections(
        self, bundle: ForecastBundle, schedule: DispatchSchedule
    ) -> TimeSeriesInjections:
        net, t = self.net, len(bundle.index)
        load_p = np.tile(net.load.p_mw.to_numpy(), (t, 1))
        load_q = np.tile(net.load.q_mvar.to_numpy(), (t, 1))
        lp = bundle.load_p_mw.reindex(columns=self.load_ids, fill_value=0.0).to_numpy()
        lq = bundle.load_q_mvar.reindex(columns=self.load_ids, fill_value=0.0).to_numpy()
        load_p[:, self._load_rows] = lp
        load_q[:, self._load_rows] = lq
        load_p[:, self._ev_rows] = schedule.ev_site_p_mw.to_numpy()
        load_q[:, self._ev_rows] = 0.0
        sgen_p = np.tile(net.sgen.p_mw.to_numpy(), (t, 1))
        sgen_q = np.tile(net.sgen.q_mvar.to_numpy(), (t, 1))
        sgen_p[:, self._pv_rows] = schedule.pv_p_mw.to_numpy()
        sgen_q[:, self._pv_rows] = schedule.pv_q_mvar.to_numpy()
        st_p = np.zeros((t, len(net.storage)))
        st_q = np.zeros((t, len(net.storage)))
        # registry signs are injections; pandapower storage consumes, in p (charging > 0) and
        # in q (absorbing > 0) alike, as a load does
        st_p[:, self._bess_rows] = -schedule.bess_p_mw.to_numpy()
        st_q[:, self._bess_rows] = -schedule.bess_q_mvar.to_numpy()
        return TimeSeriesInjections(
            load_p_mw=load_p,
            load_q_mvar=load_q,
            sgen_p_mw=sgen_p,
            sgen_q_mvar=sgen_q,
            storage_p_mw=st_p,
            storage_q_mvar=st_q,
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


def _rows(index: pd.Index, labels: Sequence[int]) -> np.ndarray:
    """Positions of ``labels`` in ``index``."""
    return np.asarray(index.get_indexer(list(labels)), dtype=int)
