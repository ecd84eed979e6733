"""One planned day of a hosting study: its forecast and dispatcher, built once, and the check of
one value at one location under one control.

A check keeps only what the search and the report need (the figures, the binding element, the
EV energy short by site), so a search can keep every check it made and report the value found
from the very checks that found it.

**Orderly holds at least what uncontrolled does.** The orderly plan starts from the uncontrolled
schedule (PV uncurtailed, batteries idle, every vehicle at full power from arrival). Where the
plan breaks a rule of orderly dispatch (no plan, its AC check, EV energy short, PV curtailed
beyond the allowance) and that uncontrolled schedule keeps every one of them, the uncontrolled
schedule is what gridctl has in hand to send: the check holds as ``uncontrolled kept`` and says
why the plan did not. Without this, orderly PV hosting of the whole Jiuke grid came out below
uncontrolled (13,590 against 13,610 kWp). Why the plan failed there: uncontrolled loads
TR_CAMPUS to 99.9 % at the Sunday noon; the plan holds its 3 % loading margin, and its thermal
limit is the tangent of |S| at the base flow's direction, which reactive power moved along the
tangent never raises. Reactive power (10 CNY/Mvarh) is cheaper than curtailing (50 CNY/MWh), so
the plan sets PV_CAMPUS's inverter to absorb or inject up to 0.4 Mvar instead of curtailing, AC
finds the transformer at 100.1-104.9 %, and the five solves do not settle. On the one-transformer
grid of the tests the same plan injects 1.37 Mvar at 2,000 kWp of PV (transformer at 163 % in
AC) where, with reactive power priced at 1,000 CNY/Mvarh, it curtails 1.2 MWh and holds 97.7 %.
A thermal limit that bounds |S| on both sides of Q (or a trust region on Q) is the controller's
to add; the study reports what gridctl does, and orderly PV hosting gains little over
uncontrolled until then.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from controllers.config import DispatchConfig
from controllers.dayahead import sessions_at_start
from controllers.dispatch import Dispatcher
from controllers.ev_charging import SessionState, servable_owed_kwh
from controllers.schedule import AcCheck, DispatchSchedule
from controllers.snapshot import GridSnapshot
from forecasts.bundle import ForecastBundle, build
from forecasts.ev import EvSession
from forecasts.ev_generator import generate_sessions
from forecasts.timegrid import local_days
from gridctl.studies.hosting_binding import binding_of
from gridctl.studies.hosting_locations import Control, HostingSettings, Location, What
from network_models.model import GridModel
from network_models.registry import DeviceRegistry, EvChargingSite, PvSystem


class StudyOfDays(Protocol):
    """What a day reads of its study (:class:`gridctl.studies.hosting.HostingStudy`): the study
    model, what is hosted, its settings and dispatch config, and how a value is shared."""

    model: GridModel
    what: What
    settings: HostingSettings
    config: DispatchConfig
    original_ids: frozenset[str]
    share_kw: dict[str, float]

    def shares(self, loc: Location, value: int) -> dict[str, float]: ...

UNCONTROLLED = "uncontrolled"
PLAN = "plan"
UNCONTROLLED_KEPT = "uncontrolled kept"


@dataclass(frozen=True, kw_only=True)
class DayCheck:
    """Whether ``value`` added at a location held on one day under one control.

    ``complete`` is False only for an orderly plan cut short while the search narrows
    (:attr:`HostingSettings.probe_relinearisations`) that failed: a full plan might pass (or,
    where the uncontrolled schedule was kept, be what orderly sends).
    ``schedule``: what held or failed: ``uncontrolled``, ``plan``, or ``uncontrolled kept`` (the
    plan failed a rule of orderly dispatch, the uncontrolled schedule it started from meets them
    all). ``binding``: for a failure, what broke first (largest AC breach, else the plan's
    binding limit with the largest shadow price, else the element nearest its limit)."""

    date: dt.date
    value: int
    control: Control
    passed: bool
    complete: bool
    schedule: str
    why: tuple[str, ...]
    figures: dict[str, Any]
    binding: dict[str, Any] | None
    ev_short_kwh_by_site: dict[str, float]
    ev_short_allowed_kwh: float
    wall_s: float


class PlannedDay:
    """One local day of the study model: its forecast and its dispatcher, built once; a value
    changes ratings and sessions only, which the dispatcher reads from the model it is given."""

    def __init__(self, study: StudyOfDays, date: dt.date) -> None:
        m = study.model
        start, horizon = local_days(date, 1, m.site.timezone)
        self.date = date
        self.study = study
        self.bundle: ForecastBundle = build(m, start, horizon, "15min", seed=study.settings.seed)
        self._dispatcher: Dispatcher | None = None
        self._added_sessions: dict[tuple[str, int], tuple[EvSession, ...]] = {}
        self._added_kwh: dict[tuple[str, int], float] = {}
        self._servable_kwh: dict[str, float] = {}  # by session id: the same at every value

    @property
    def dispatcher(self) -> Dispatcher:
        """The day's dispatcher, built at its first check (a search that only reads the day's
        sessions, as the parent of worker processes does, never builds it)."""
        if self._dispatcher is None:
            m = self.study.model
            self._dispatcher = Dispatcher(m, steps=len(self.bundle.index),
                                          step_h=self.bundle.step_h, config=self.study.config)
        return self._dispatcher

    # -- what a value is on this day -----------------------------------------------------------
    def sessions_of_added(self, site: EvChargingSite, j: int) -> tuple[EvSession, ...]:
        """Sessions of added connector ``j`` (1-based) of ``site``: a one-connector site of its
        type, seeded by site and number, put on connector ``n + j``."""
        key = (site.id, j)
        if key not in self._added_sessions:
            b = self.bundle
            probe = replace(site, id=f"{site.id}+{j}", n_connectors=1)
            drawn = generate_sessions([probe], b.start, b.end, self.study.settings.seed)
            c = f"c{site.n_connectors + j}"
            self._added_sessions[key] = tuple(
                replace(s, id=f"{site.id}/added{j}/{s.id.split('/', 1)[1]}", site=site.id,
                        connector=c)
                for s in drawn)
        return self._added_sessions[key]

    def added_sessions(self, loc: Location, value: int) -> dict[tuple[str, int],
                                                                tuple[EvSession, ...]]:
        """Every added connector's sessions that ``value`` at ``loc`` needs, by (site, number):
        drawn once, here, and sent to the worker processes with their checks (drawing them is
        a few ms a connector, every worker would draw them again)."""
        if self.study.what is not What.EV:
            return {}
        reg = self.study.model.registry
        out = {}
        for dev_id, n in self.study.shares(loc, value).items():
            site = reg[dev_id]
            for j in range(1, int(n) + 1):
                out[(dev_id, j)] = self.sessions_of_added(site, j)
        return out

    def preload(self, sessions: dict[tuple[str, int], tuple[EvSession, ...]]) -> None:
        """Take added connectors' sessions drawn elsewhere (:meth:`added_sessions`)."""
        self._added_sessions.update(sessions)

    def added_energy_kwh(self, site: EvChargingSite, j: int) -> float:
        """Energy the sessions of added connector ``j`` of ``site`` ask for on this day, kWh."""
        key = (site.id, j)
        if key not in self._added_kwh:
            b = self.bundle
            self._added_kwh[key] = float(sum(
                s.energy_kwh for s in self.sessions_of_added(site, j)
                if s.departure > b.start and s.arrival < b.end))
        return self._added_kwh[key]

    def case(self, loc: Location, value: int) -> tuple[GridModel, ForecastBundle, dict]:
        """The study model and the day's bundle with ``value`` added at ``loc``."""
        st = self.study
        base = st.model
        shares = st.shares(loc, value)
        devices = {d.id: d for d in base.registry.devices}
        bundle = self.bundle
        if st.what is What.EV:
            sessions = list(bundle.ev_sessions)
            for dev_id, n in shares.items():
                site = devices[dev_id]
                assert isinstance(site, EvChargingSite)
                share = st.share_kw[dev_id]
                for j in range(1, int(n) + 1):
                    sessions.extend(self.sessions_of_added(site, j))
                devices[dev_id] = replace(site, n_connectors=site.n_connectors + int(n),
                                          p_site_max_kw=site.p_site_max_kw + share * n)
            sessions.sort(key=lambda s: (s.arrival.value, s.id))
            bundle = replace(bundle, ev_sessions=tuple(sessions))
        else:
            pv = bundle.pv_p_mw.copy()
            for dev_id, kwp in shares.items():
                sys = devices[dev_id]
                assert isinstance(sys, PvSystem)
                per_kwp = self.bundle.pv_p_mw[dev_id] / (sys.p_mwp * 1000.0)
                added = dev_id not in st.original_ids
                kwp_now = (0.0 if added else sys.p_mwp * 1000.0) + kwp
                pv[dev_id] = per_kwp * kwp_now
                ratio = st.settings.pv_s_per_p if added else sys.s_mva / sys.p_mwp
                devices[dev_id] = replace(sys, p_mwp=max(kwp_now, 1e-6) / 1000.0,
                                          s_mva=max(kwp_now, 1e-6) * ratio / 1000.0)
            bundle = replace(bundle, pv_p_mw=pv)
        model = replace(base, registry=DeviceRegistry(tuple(devices[d.id]
                                                            for d in base.registry.devices)))
        return model, bundle, shares

    # -- the check -----------------------------------------------------------------------------
    def check(
        self, loc: Location, value: int, control: Control, *,
        relinearisations: int | None = None,
    ) -> DayCheck:
        """Whether ``value`` at ``loc`` holds on this day under ``control``. ``relinearisations``
        caps an orderly plan's re-linearisations (a failure so is not ``complete``)."""
        t0 = time.perf_counter()
        model, bundle, _ = self.case(loc, value)
        d = self.dispatcher
        d.model, d.ev_sites = model, model.registry.ev_sites
        states = sessions_at_start(bundle)
        snapshot = GridSnapshot.initial(model, bundle.start, states)
        if control is Control.UNCONTROLLED:
            schedule = d.baseline(bundle, snapshot, states=states)
            ac = d.evaluate(bundle, schedule)
            figures, short, allowed = self.figures(bundle, schedule, ac, states)
            why = () if ac.passed else ("AC limits",)
            return self._result(loc, value, control, passed=ac.passed, complete=True,
                                schedule=UNCONTROLLED, why=why, figures=figures, short=short,
                                allowed=allowed, ac=ac, plan_binding=(), t0=t0)
        config = d.config
        capped = relinearisations is not None and relinearisations < config.max_relinearisations
        if capped:
            d.config = replace(config, max_relinearisations=relinearisations)
        try:
            plan = d.plan(bundle, snapshot)
        finally:
            d.config = config
        figures, short, allowed = self.figures(bundle, plan.schedule, plan.ac, states)
        solved = plan.solution is not None and plan.solution.ok
        why = orderly_faults(self.study.settings, figures, solved=solved,
                             status=plan.record.status)
        if not why:
            return self._result(loc, value, control, passed=True, complete=True, schedule=PLAN,
                                why=(), figures=figures, short=short, allowed=allowed,
                                ac=plan.ac, plan_binding=plan.record.binding_constraints, t0=t0)
        # a plan cut short that used every solve it was allowed might pass in full
        complete = not capped or plan.record.relinearisations < int(relinearisations or 0)
        base_figures, base_short, _ = self.figures(bundle, plan.baseline, plan.baseline_ac,
                                                   states)
        if not orderly_faults(self.study.settings, base_figures, solved=True, status=""):
            # held either way; reported (complete) only from a full plan's verdict
            return self._result(
                loc, value, control, passed=True, complete=complete, schedule=UNCONTROLLED_KEPT,
                why=tuple(f"the plan: {w}" for w in why), figures=base_figures,
                short=base_short, allowed=allowed, ac=plan.baseline_ac, plan_binding=(), t0=t0)
        return self._result(loc, value, control, passed=False, complete=complete, schedule=PLAN,
                            why=tuple(why), figures=figures, short=short, allowed=allowed,
                            ac=plan.ac, plan_binding=plan.record.binding_constraints, t0=t0)

    def figures(
        self, bundle: ForecastBundle, schedule: DispatchSchedule, ac: AcCheck,
        states: tuple[SessionState, ...],
    ) -> tuple[dict[str, Any], dict[str, float], float]:
        """The figures of one schedule, as :func:`controllers.dayahead.schedule_kpis` gives
        them (same rounding), the EV energy short by the grid or the plan by site (kWh) and
        the short the rules of orderly allow (kWh). Each session's servable energy is the same
        at every value, so it is computed once per day."""
        h = bundle.step_h
        start, end = bundle.start, bundle.end
        present = [st for st in states
                   if st.session.departure > start and st.session.arrival < end]
        new = [st for st in present if st.session.id not in self._servable_kwh]
        if new:
            kwh = servable_owed_kwh(None, new, bundle.index, h)
            self._servable_kwh.update({st.session.id: float(k)
                                       for st, k in zip(new, kwh, strict=True)})
        delivered = (schedule.ev_session_p_kw.sum(axis=0) * h).to_dict()
        requested = 0.0
        short_by_site: dict[str, float] = {}
        for st in present:
            s = st.session
            requested += st.energy_owed_kwh
            if s.departure <= end:
                short = max(0.0, self._servable_kwh[s.id] - float(delivered.get(s.id, 0.0)))
                if short > 0.0:
                    short_by_site[s.site] = short_by_site.get(s.site, 0.0) + short
        avail = bundle.pv_p_mw.reindex(columns=schedule.pv_p_mw.columns, fill_value=0.0)
        curtailed = float(np.clip(avail.to_numpy() - schedule.pv_p_mw.to_numpy(), 0, None).sum()
                          * h)
        short_kwh = sum(short_by_site.values())
        figures = {
            **ac.extremes(),
            "ac_validated": ac.passed,
            "ac_violations": len(ac.violations),
            "ev_sessions": len(present),
            "ev_energy_requested_mwh": round(requested / 1000.0, 4),
            "ev_energy_short_by_grid_or_plan_mwh": round(short_kwh / 1000.0, 6),
            "pv_available_mwh": round(float(bundle.pv_p_mw.to_numpy().sum() * h), 6),
            "pv_curtailed_mwh": round(curtailed, 4),
            "peak_import_mw": round(float(np.asarray(ac.import_mw, dtype=float).max()), 4),
        }
        allowed = (self.study.settings.ev_short_frac * requested / 1000.0 + 1e-4) * 1000.0
        return figures, short_by_site, allowed

    def _result(
        self, loc: Location, value: int, control: Control, *, passed: bool, complete: bool,
        schedule: str, why: tuple[str, ...], figures: dict[str, Any], short: dict[str, float],
        allowed: float, ac: AcCheck, plan_binding, t0: float,
    ) -> DayCheck:
        binding = None
        if not passed:
            binding = binding_of(ac, self.bundle.index, self.dispatcher.net, self.study.config,
                                 plan_binding, short)
            binding["why"] = "; ".join(why)
        return DayCheck(date=self.date, value=value, control=control, passed=passed,
                        complete=complete, schedule=schedule, why=why, figures=figures,
                        binding=binding, ev_short_kwh_by_site=short, ev_short_allowed_kwh=allowed,
                        wall_s=time.perf_counter() - t0)


def orderly_faults(
    settings: HostingSettings, figures: dict[str, Any], *, solved: bool, status: str
) -> list[str]:
    """The rules of orderly dispatch a schedule breaks (none: it holds): a plan that solved,
    its AC check passed, at most ``ev_short_frac`` of the day's EV energy short by the grid or
    the plan, at most ``pv_curtail_frac`` of its available PV energy curtailed."""
    s = settings
    why = []
    if not solved:
        why.append(f"no plan: {status}")
    elif not figures["ac_validated"]:
        why.append("AC limits")
    short = figures["ev_energy_short_by_grid_or_plan_mwh"]
    if short > s.ev_short_frac * max(figures["ev_energy_requested_mwh"], 1e-9) + 1e-4:
        why.append(f"EV energy short by the grid or the plan: {short * 1000:.1f} kWh")
    pv_mwh = figures["pv_available_mwh"]
    if figures["pv_curtailed_mwh"] > s.pv_curtail_frac * pv_mwh + 1e-4:
        why.append(f"PV curtailed {figures['pv_curtailed_mwh']:.3f} of {pv_mwh:.3f} MWh")
    return why
