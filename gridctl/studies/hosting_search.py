"""The search for the largest value that holds on every planned day: bracket, narrow, confirm.

The search sees the days only through ``evaluate(items)``, which checks a batch of
``(value, day, complete)`` at once (in parallel where there are worker processes; each check is
run once and kept), and an optional ``candidates(lo, hi, failure, n)`` that proposes up to ``n``
values inside ``(lo, hi)``. Whatever is proposed, each value is decided by its own check: a poor
proposal costs time, never the answer.

1. **Bracket**, on every day: orderly one ``resolution`` above the floor (what uncontrolled
   held: where orderly gains nothing, that is the answer at once), then doubling, until a value
   fails on some day.
2. **Narrow** to ``resolution``, checking only the days still *in question*: a day that held at a
   value where another failed holds at every value below it, so it leaves the question; once one
   day is left, ``width`` values of it are checked a round. While several are in question, one
   value a round is checked on all of them (in parallel), or day by day, the day that failed last
   first, up to the first failure (one process).
3. **Confirm**, in one round: the failure just above in full (an orderly plan cut short while
   narrowing might hold in full: then the search goes on above it) and the value found on every
   day, the figures reported (a day that fails there is in question again, below it).

The answer ``lo`` held on every day and ``hi`` (at most ``lo + resolution``) failed completely on
one. Monotone in the value (more connectors or kWp never make a day easier) as the study builds
it: ``k + 1`` added connectors carry the sessions of ``k`` plus one, a larger PV share scales
every PV profile up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol


class Check(Protocol):
    """What the search reads of one day's check (:class:`hosting_day.DayCheck`)."""

    passed: bool
    complete: bool


Item = tuple[int, dt.date, bool]  # value, day, complete
Evaluate = Callable[[Sequence[Item]], list[Any]]
Candidates = Callable[[int, int, Any, int], list[int]]


def largest_holding(
    evaluate: Evaluate,
    days: Sequence[dt.date],
    *,
    resolution: int,
    first: int,
    cap: int,
    floor: int = 0,
    floor_holds: bool | None = None,
    width: int = 1,
    candidates: Candidates | None = None,
) -> tuple[int, int | None, Any]:
    """``(lo, hi, failure)``: ``lo`` the largest value found to hold on every day (-1: not even
    0), ``hi`` the value that failed just above (None: the cap held) and its failing check.

    ``floor``: a value that holds or is expected to (orderly starts at what uncontrolled held);
    ``floor_holds`` True takes it as held on every day without a check."""
    res = max(1, resolution)
    width = max(1, width)
    order = list(days)  # the day that failed last first

    def on_days(value: int, ds: Sequence[dt.date], complete: bool) -> dict[dt.date, Any]:
        """Checks of ``value`` on ``ds``: all at once with workers, else up to the first
        failure (which goes first next time)."""
        if width > 1:
            return dict(zip(ds, evaluate([(value, d, complete) for d in ds]), strict=True))
        out = {}
        for d in ds:
            out[d] = c = evaluate([(value, d, complete)])[0]
            if not c.passed:
                break
        return out

    def failed(checks: dict[dt.date, Any]) -> list[tuple[dt.date, Any]]:
        bad = [(d, c) for d, c in checks.items() if not c.passed]
        for d, _ in reversed(bad):
            order.remove(d)
            order.insert(0, d)
        return bad

    lo, hi, failure = _start(on_days, failed, order, floor, floor_holds)
    if lo < 0:
        return lo, hi, failure
    step_up = floor > 0 and lo == floor
    while True:
        if hi is None:
            lo, hi, failure = _bracket(on_days, failed, order, lo, first=max(first, res),
                                       cap=cap, res=res, step_up=step_up)
            if hi is None:
                return lo, None, None
        step_up = False
        lo, hi, failure = _narrow(evaluate, on_days, failed, order, lo, hi, failure, res=res,
                                  width=width, candidates=candidates)
        # confirm in one round: the failure in full, the value found on every day
        every = list(order)
        items: list[Item] = [] if failure.complete else [(hi, failure.date, True)]
        items += [(lo, d, True) for d in every]
        checks = evaluate(items)
        if not failure.complete:
            confirm = checks.pop(0)
            if confirm.passed:
                # the failure was a plan cut short; in full it held: search on above it
                lo, hi, failure = hi, None, None
                continue
            failure = confirm
        bad = failed(dict(zip(every, checks, strict=True)))
        if not bad:
            return lo, hi, failure
        # a day fails at what the others held: in question again, below that value
        hi, failure = lo, bad[0][1]
        lo = floor if floor > 0 and floor_holds else 0


def _start(on_days, failed, order, floor: int, floor_holds: bool | None):
    """``(lo, hi, failure)`` before the bracket: the floor (taken as held, or checked), else 0
    checked; ``lo`` -1 when not even 0 holds (``hi`` 0 then, with its failing check)."""
    hi: int | None = None
    failure = None
    if floor > 0 and floor_holds:
        return floor, None, None
    if floor > 0:
        bad = failed(on_days(floor, order, True))
        if not bad:
            return floor, None, None
        hi, failure = floor, bad[0][1]
    bad = failed(on_days(0, order, True))
    if bad:
        return -1, 0, bad[0][1]
    return 0, hi, failure


def _bracket(on_days, failed, order, lo: int, *, first: int, cap: int, res: int,
             step_up: bool):
    """``(lo, hi, failure)``: the last value that held on every day and the first above it
    that failed on some day (None: the cap held): one step above a floor first, then doubling."""
    if step_up:
        v = lo + res
        if v > cap:
            return lo, None, None
        bad = failed(on_days(v, order, True))
        if bad:
            return lo, v, bad[0][1]
        lo = v
    v = max(lo * 2, first) if lo > 0 else first
    while v <= cap:
        bad = failed(on_days(v, order, False))
        if bad:
            return lo, v, bad[0][1]
        lo, v = v, v * 2
    if lo < cap:
        bad = failed(on_days(cap, order, False))
        if bad:
            return lo, cap, bad[0][1]
        lo = cap
    return lo, None, None


def _narrow(evaluate, on_days, failed, order, lo: int, hi: int, failure, *, res: int,
            width: int, candidates):
    """Narrow ``(lo, hi)`` to ``res`` on the days in question (those not known to hold at
    every value below ``hi``). A value one ``resolution`` above ``lo`` is likely the failure
    reported: it is checked in full at once, and a worker left free in that round checks
    ``lo`` on the other days, which the answer is reported from."""
    asked = list(order)  # in question: a day leaves when it holds where another fails
    while hi - lo > res:
        n = max(1, width // len(asked)) if width > 1 else 1
        values = candidates(lo, hi, failure, n) if candidates is not None else []
        values = sorted({v for v in values if lo < v < hi})[:n]
        # the one value left, or the one the guide points at: likely the failure reported
        final = values == [lo + res] or hi - lo == 2 * res
        if final:
            values = [lo + res]
        elif len(values) < n:
            values = sorted(set(values) | set(_even(lo, hi, res, n - len(values), values)))
        if not values:
            break
        if len(values) == 1 and width == 1:
            results = {values[0]: on_days(values[0], [d for d in order if d in asked], final)}
        else:
            days = [d for d in order if d in asked] if len(values) == 1 else asked[:1]
            items = [(v, d, final and v == lo + res) for v in values for d in days]
            spare = width - len(items)
            if final and spare > 0:
                items += [(lo, d, True) for d in order if d not in days][:spare]
            checks = evaluate(items)
            results = {v: {} for v in values}
            for (v, d, _), c in zip(items, checks, strict=True):
                if v in results:
                    results[v][d] = c
        # the highest value that held wins over a lower one that failed: a plan that does not
        # settle makes orderly's outcome uneven in the amount (on Jiuke's feeder L1_0 PV held
        # at +5,520 kWp and failed at +5,120), and the search reports the largest it found
        lo = max([lo] + [v for v in values if all(c.passed for c in results[v].values())])
        above = [v for v in values if lo < v < hi and not all(c.passed
                                                             for c in results[v].values())]
        if above:
            v = min(above)
            bad = [(d, c) for d, c in results[v].items() if not c.passed]
            failed(results[v])
            hi, failure = v, bad[0][1]
            held = [d for d, c in results[v].items() if c.passed]
            asked = [d for d in asked if d not in held]
    return lo, hi, failure


def _even(lo: int, hi: int, res: int, n: int, taken: Sequence[int]) -> list[int]:
    """Up to ``n`` values splitting (lo, hi) evenly on the resolution's grid from ``lo``."""
    steps = (hi - lo) // res  # grid points lo + k·res below hi
    out: list[int] = []
    for k in range(1, n + 1):
        v = lo + max(1, round(k * steps / (n + 1))) * res
        if lo < v < hi and v not in taken and v not in out:
            out.append(v)
    return out
