"""Hosting capacity: how many more EV connectors, or how many more kWp of PV, a grid can take.

For every distribution feeder, distribution transformer and EV site (and the whole grid), the
largest *added* amount for which every planned day still holds every AC limit, found twice:

- **uncontrolled**: gridctl's day-ahead baseline (PV uncurtailed, batteries idle, every vehicle
  at full power from arrival within its site's limit), checked in AC; no solve;
- **orderly**: gridctl's own day-ahead dispatch (:meth:`controllers.dispatch.Dispatcher.plan`,
  what :func:`controllers.dayahead.run_dayahead` runs), which must pass its AC check, serve every
  session what it could get alone (at most :attr:`HostingSettings.ev_short_frac` of the day's EV
  energy left short by the grid or the plan) and curtail at most
  :attr:`HostingSettings.pv_curtail_frac` of the day's available PV energy. Where the plan
  breaks one of these rules and the uncontrolled schedule it started from keeps them all, that
  schedule is what gridctl has to send: orderly holds at least what uncontrolled does (see
  :mod:`gridctl.studies.hosting_day` for why the plan alone did not, on Jiuke's PV).

The amount is searched on its integer grid (connectors, kWp) by :mod:`hosting_search`: orderly
from what uncontrolled held (one step above it first, then doubling), uncontrolled from 0
(doubling), then narrowed to ``resolution`` on the days still in question, guided for EV by the
site left short (:meth:`HostingStudy.candidates`); orderly plans are cut short while the search
narrows (:attr:`HostingSettings.probe_relinearisations`) and the failure reported is always a
full plan. Every reported value passed, in AC, on every day at exactly that value (the figures
reported are those checks), and the value one ``resolution`` above failed on some day: that
day's first broken limit (largest AC breach; where AC held, the plan's binding limit with the
largest shadow price) is the **binding element**. Where a plan does not settle, orderly's
outcome is uneven in the amount (a value can fail below one that holds): the search keeps the
highest value it found to hold. The plans of one round run side by side on
:attr:`HostingSettings.workers` processes (:mod:`hosting_pool`); uncontrolled checks (no solve)
run in the calling process.

What is added, where (assumptions, said in every result's ``note``):

- EV: at an existing site, more connectors of its type, its connection limit raised by its own
  per-connector share (``p_site_max_kw / n_connectors``); where a feeder or transformer has no
  site, a new site of ``ev_type`` at each distribution transformer's LV bus, with the
  per-connector share of that type's first site in the model (else :data:`EV_TYPE_DEFAULTS`).
  Several sites share a total by Sainte-Laguë (weights: existing connectors, or transformer
  kVA), which never takes a connector away when the total grows. The added connectors' sessions
  are drawn by :mod:`forecasts.ev_generator` for one-connector sites of the same type, one per
  added connector (seeded by site and connector number), so the existing sessions stay as they
  are and ``k + 1`` added connectors carry the sessions of ``k`` plus one: the search is monotone.
- PV: new PV at a location's LV buses (a feeder: each of its distribution transformers, shared
  by kVA), facing south at 20°, with the per-kWp profile of gridctl's forecast for that bus and an
  inverter of :attr:`HostingSettings.pv_s_per_p` kVA per kWp; the whole grid: every existing PV
  system scaled together (in proportion to its kWp).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from controllers.config import DispatchConfig
from gridctl.studies.hosting_day import DayCheck, PlannedDay, orderly_faults
from gridctl.studies.hosting_locations import (
    DEFAULT_DAYS,
    EV_TYPE_DEFAULTS,
    Control,
    HostingSettings,
    Location,
    Scope,
    Target,
    What,
    hosting_locations,
    sainte_lague,
    study_model,
    type_ratings,
)
from gridctl.studies.hosting_pool import CheckPool
from gridctl.studies.hosting_results import Found, HostingResult, one_line, results_frame
from gridctl.studies.hosting_search import largest_holding
from network_models.model import GridModel

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_DAYS",
    "EV_TYPE_DEFAULTS",
    "Control",
    "DayCheck",
    "HostingResult",
    "HostingSettings",
    "HostingStudy",
    "Location",
    "Scope",
    "Target",
    "What",
    "hosting_locations",
    "results_frame",
    "run_hosting",
    "sainte_lague",
]


class HostingStudy:
    """One hosting study of a model: its days, built once, and the search per location."""

    def __init__(
        self,
        model: GridModel,
        what: What,
        *,
        scopes: Iterable[Scope] = tuple(Scope),
        days: Sequence[dt.date] = DEFAULT_DAYS,
        settings: HostingSettings | None = None,
        config: DispatchConfig | None = None,
    ) -> None:
        self.source_model = model
        self.what = what
        self.scopes = tuple(scopes)
        self.settings = settings or HostingSettings()
        self.config = config or DispatchConfig()
        self.original_ids = frozenset(d.id for d in model.registry.devices)
        self.locations = hosting_locations(model, what, self.scopes, self.settings.ev_type)
        self.model = study_model(model, self.locations, self.settings.ev_type)
        _, new_share = type_ratings(model, self.settings.ev_type)
        self.share_kw = {
            s.id: (s.p_site_max_kw / s.n_connectors if s.n_connectors else new_share)
            for s in self.model.registry.ev_sites
        }
        self.day_dates = tuple(days)
        self._days: dict[dt.date, PlannedDay] = {}
        # every check run, by (location, value, control, day): the value found is reported from
        # the checks that found it
        self._checks: dict[tuple[int, int, Control, dt.date], DayCheck] = {}
        self.evaluations = 0
        self._pool: CheckPool | None = None
        self.worker_cpu_s = 0.0  # CPU seconds of the worker processes (the fork server's not)

    @property
    def unit(self) -> str:
        return "connectors" if self.what is What.EV else "kWp"

    def day(self, date: dt.date) -> PlannedDay:
        if date not in self._days:
            self._days[date] = PlannedDay(self, date)
        return self._days[date]

    def shares(self, loc: Location, value: int) -> dict[str, float]:
        """What each target gets of ``value`` (connectors or kWp)."""
        weights = [t.weight for t in loc.targets]
        if self.what is What.EV:
            return {t.device_id: a for t, a in zip(loc.targets, sainte_lague(value, weights),
                                                    strict=True)}
        total = sum(weights)
        return {t.device_id: value * t.weight / total for t in loc.targets}

    def run(self, progress: Callable[[str], None] | None = None) -> list[HostingResult]:
        """Every location's result, in order; the checks of a round on
        :attr:`HostingSettings.workers` processes."""
        out = []
        if self.settings.workers > 1:
            self._pool = CheckPool(self, self.settings.workers)
        try:
            for loc in self.locations:
                out.append(self.locate(loc))
                if progress is not None:
                    progress(one_line(out[-1]))
        finally:
            if self._pool is not None:
                self._pool.close()
                self.worker_cpu_s += self._pool.cpu_s
                self._pool = None
        return out

    def locate(self, loc: Location) -> HostingResult:
        found: dict[Control, Found] = {}
        added: dict[Control, dict[str, float]] = {}
        floor, floor_holds = 0, None
        for control in self.settings.controls:
            f = self._search(loc, control, start=floor, start_holds=floor_holds)
            found[control] = f
            added[control] = {k: round(float(v), 3) for k, v in self.shares(loc, f.value).items()
                              if v}
            if control is Control.UNCONTROLLED and f.value > 0:
                # orderly starts from what uncontrolled held: there the uncontrolled schedule
                # is orderly's to send wherever it keeps orderly's rules too (EV served, PV
                # not curtailed beyond the allowance), which needs no plan while searching
                floor = f.value
                floor_holds = all(
                    not orderly_faults(self.settings, c.figures, solved=True, status="")
                    for c in self.evaluate(loc, Control.UNCONTROLLED,
                                           [(f.value, d, True) for d in self.day_dates]))
        return HostingResult(location=loc, what=self.what, found=found, added_at_value=added)

    # -- checks --------------------------------------------------------------------------------
    def check(
        self, loc: Location, value: int, control: Control, date: dt.date, *,
        complete: bool = True,
    ) -> DayCheck:
        """The check of ``value`` at ``loc`` on ``date`` (run once; ``complete`` False lets an
        orderly plan stop at :attr:`HostingSettings.probe_relinearisations`)."""
        return self.evaluate(loc, control, [(value, date, complete)])[0]

    def evaluate(
        self, loc: Location, control: Control, items: Sequence[tuple[int, dt.date, bool]],
    ) -> list[DayCheck]:
        """The checks of ``items`` (value, day, complete): those not run yet run together, on
        the worker processes if there are any."""
        index = self.locations.index(loc)
        keys = [(index, v, control, d) for v, d, _ in items]
        todo, seen = [], set()
        for key, (_, _, complete) in zip(keys, items, strict=True):
            c = self._checks.get(key)
            if (c is None or (complete and not c.complete)) and key not in seen:
                todo.append((key, complete))
                seen.add(key)
        if todo:
            # plans on the workers; an uncontrolled check (no solve, a tenth of a second) here,
            # while the workers start
            if self._pool is not None and control is Control.ORDERLY:
                dates = [d for (_, _, _, d), _ in todo]
                # a day stays on one worker where the round allows (one dispatcher built, not
                # two); several values of one day go side by side
                slots = ([self.day_dates.index(d) for d in dates]
                         if len(set(dates)) == len(dates) else list(range(len(todo))))
                done = self._pool.run(
                    [(i, v, ctl.value, d, complete) for (i, v, ctl, d), complete in todo],
                    [{(d, *k): ss for k, ss in self.day(d).added_sessions(loc, v).items()}
                     for (_, v, _, d), _ in todo], slots)
            else:
                done = [self.day(d).check(loc, v, ctl, relinearisations=None if complete
                                          else self.settings.probe_relinearisations)
                        for (_, v, ctl, d), complete in todo]
            for (key, _), c in zip(todo, done, strict=True):
                self._checks[key] = c
                self.evaluations += 1
                log.debug("%s %s %s +%d on %s: %s%s (%s) %.1f s", loc.kind, loc.name,
                          control.value, c.value, c.date, "held" if c.passed else "failed",
                          "" if c.complete else " (cut short)", c.schedule, c.wall_s)
        return [self._checks[key] for key in keys]

    def _search(
        self, loc: Location, control: Control, *, start: int, start_holds: bool | None = None,
    ) -> Found:
        t0 = time.perf_counter()
        n0 = self.evaluations
        s = self.settings
        cap = s.cap or (5000 if self.what is What.EV else 200_000)
        first = s.first_step or (4 if self.what is What.EV else 200)
        if loc.kind == "grid":
            first *= 8
        lo, hi, failure = largest_holding(
            functools.partial(self.evaluate, loc, control), self.day_dates,
            resolution=s.resolution, first=first, cap=cap, floor=start,
            floor_holds=start_holds if start > 0 else None,
            # side by side on the workers: plans; an uncontrolled check runs here, one by one
            width=s.workers if self._pool is not None and control is Control.ORDERLY else 1,
            candidates=functools.partial(self.candidates, loc))
        value = max(lo, 0)
        binding, worst = None, None
        if hi is not None:
            worst = failure.date.isoformat()
            binding = dict(failure.binding or {})
            if control is Control.ORDERLY:
                binding.setdefault("schedule", failure.schedule)
            if lo < 0:
                binding["note"] = ("the grid as it is already breaks this limit on that day: "
                                   "nothing more can be hosted")
        at_value = self._at_value(loc, value, control)
        return Found(value=value, unit=self.unit, capped=hi is None, worst_day=worst,
                     binding=binding, at_value=at_value, evaluations=self.evaluations - n0,
                     wall_s=time.perf_counter() - t0)

    def _at_value(self, loc: Location, value: int, control: Control) -> dict[str, Any]:
        """The AC check at the value found, on every day (the reported figures: worst of them),
        the checks the search made there (a full plan for orderly)."""
        days = {}
        checks = self.evaluate(loc, control, [(value, d, True) for d in self.day_dates])
        for date, c in zip(self.day_dates, checks, strict=True):
            days[date.isoformat()] = {"passed": c.passed, "schedule": c.schedule,
                                      **({"why": list(c.why)} if c.why else {}), **c.figures}
        rows = list(days.values())
        return {
            "passed_every_day": all(r["passed"] for r in rows),
            "v_min_pu": min(r["v_min_pu"] for r in rows),
            "v_max_pu": max(r["v_max_pu"] for r in rows),
            "max_line_loading_pct": max(r["max_line_loading_pct"] for r in rows),
            "max_trafo_loading_pct": max(r["max_trafo_loading_pct"] for r in rows),
            "days": days,
        }

    # -- the guided narrowing -----------------------------------------------------------------
    def _short_site(self, loc: Location, lo: int, hi: int, failure: DayCheck | None):
        """The location's site left shortest where ``hi`` failed on EV energy alone (no AC limit
        broken), with its added connectors at ``lo`` and ``hi``; None where that is not why."""
        if (self.what is not What.EV or failure is None or lo < 0
                or failure.figures["ac_violations"]):
            return None
        ids = {t.device_id for t in loc.targets}
        short = {k: v for k, v in failure.ev_short_kwh_by_site.items() if k in ids}
        if not short:
            return None
        x = max(short, key=short.__getitem__)
        n_lo, n_hi = int(self.shares(loc, lo)[x]), int(self.shares(loc, hi)[x])
        if n_hi <= n_lo:
            return None  # its share is the same over (lo, hi]: not its growth that failed
        return x, n_lo, n_hi, short[x]

    def _first_with(self, loc: Location, x: str, n: int, lo: int, hi: int) -> int:
        """The smallest value in (lo, hi] at which site ``x`` has ``n`` added connectors or more
        (Sainte-Laguë never takes one away as the total grows)."""
        a, b = lo, hi
        while b - a > 1:
            m = (a + b) // 2
            if self.shares(loc, m)[x] >= n:
                b = m
            else:
                a = m
        return b

    def upper(self, loc: Location, lo: int, hi: int, failure: DayCheck | None) -> int:
        """The highest value that can hold by what failed at ``hi``: where a site X was left
        short, X's short falls by at most the energy that its removed connectors ask for, so no
        value at which X has more connectors than that covers can hold; else ``hi``."""
        found = self._short_site(loc, lo, hi, failure)
        if found is None:
            return hi
        x, n_lo, n_hi, short_x = found
        site = self.model.registry[x]
        day = self.day(failure.date)
        k, removed = n_hi, 0.0
        while k > n_lo and removed < short_x - failure.ev_short_allowed_kwh:
            removed += day.added_energy_kwh(site, k)
            k -= 1
        return self._first_with(loc, x, k + 1, lo, hi) - 1 if k < n_hi else hi - 1

    def candidates(self, loc: Location, lo: int, hi: int, failure: DayCheck | None,
                   n: int) -> list[int]:
        """Up to ``n`` EV values to try in (lo, hi) when ``hi`` failed because a site X of the
        location was left short (else none: the search splits evenly). X gains a connector
        only at some values, and a failure of X's growth starts at one of them: the values just
        below those where X gains (up to :meth:`upper`) are split evenly; when none is left
        inside, the value right above ``lo`` where X gains its next connector."""
        found = self._short_site(loc, lo, hi, failure)
        if found is None:
            return []
        x, n_lo, n_hi, _ = found
        top = self.upper(loc, lo, hi, failure)
        tops = sorted({self._first_with(loc, x, k + 1, lo, hi) - 1 for k in range(n_lo, n_hi)})
        tops = [t for t in tops if lo < t < hi and t <= top] or [t for t in tops if lo < t < hi]
        out = []
        if not tops and self.shares(loc, lo + 1)[x] > n_lo and lo + 1 < hi:
            out.append(lo + 1)  # X gains its next connector right above what held
        rest = [t for t in tops if t not in out]
        picks = n - len(out)
        if rest and picks > 0:
            idx = sorted({min(len(rest) - 1, (i + 1) * len(rest) // (picks + 1))
                          for i in range(picks)})
            out += [rest[i] for i in idx]
        return out[:n]


def run_hosting(
    model: GridModel,
    what: What | str,
    *,
    scopes: Iterable[Scope | str] = tuple(Scope),
    days: Sequence[dt.date] = DEFAULT_DAYS,
    settings: HostingSettings | None = None,
    config: DispatchConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[HostingResult], HostingStudy]:
    """The hosting study of ``model``: one result per location of ``scopes``."""
    study = HostingStudy(model, What(what), scopes=[Scope(s) for s in scopes], days=days,
                         settings=settings, config=config)
    return study.run(progress), study
