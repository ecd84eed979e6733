"""The runtime's day-ahead plans: today's at start-up, tomorrow's from the configured hour.

Each is made in the background, in a process of its own
(:class:`~gridctl.planner_dayahead.DayAheadProcess`: the plan of a day is seconds of work; the
tick and the MPC's steps go on), and recorded in the historian with its KPIs. The MPC follows
the plans' battery state of charge as its windows' targets (:attr:`DayAheadPlans.plan`); a plan
that is a fallback is no plan to steer by: it is recorded, not followed, and the day is tried
again after ``dayahead_retry_wall_s`` of wall time, as is a day whose planning failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from controllers.schedule import DispatchSchedule
from gridctl.historian import Historian
from gridctl.runtime_config import RuntimeConfig

log = logging.getLogger("gridctl.runtime")


class DayAheadPlans:
    """The day plans made so far and the days being planned; ``plan_of(day)`` makes one (a
    :func:`~controllers.dayahead.run_dayahead` result, called in a thread)."""

    def __init__(self, config: RuntimeConfig, historian: Historian,
                 plan_of: Callable[[dt.date], Any]) -> None:
        self.config = config
        self.historian = historian
        self._plan_of = plan_of
        self.plan: DispatchSchedule | None = None  # what the MPC's windows end on
        self.plans: dict[dt.date, DispatchSchedule] = {}
        self.planning: set[dt.date] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._retry: dict[dt.date, float] = {}  # a day that failed: not again before (wall)

    def due(self, now: pd.Timestamp) -> None:
        """Start the plan of today (at start-up) and of tomorrow (at the configured hour) in
        the background, unless made, being made or not to be tried again yet."""
        hour = self.config.dayahead_hour
        if hour is None:
            return
        wanted = [now.date()]
        if now.hour >= hour:
            wanted.append((now + pd.Timedelta(days=1)).date())
        for day in wanted:
            retry_at = self._retry.get(day, 0.0)
            if (day not in self.plans and day not in self.planning
                    and time.monotonic() >= retry_at):
                self.planning.add(day)
                task = asyncio.get_running_loop().create_task(self.plan_day(day, now))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)

    async def plan_day(self, day: dt.date, issued: pd.Timestamp) -> None:
        """Plan ``day`` (issued at field time ``issued``) and record it."""
        try:
            result = await asyncio.to_thread(self._plan_of, day)
        except asyncio.CancelledError:
            raise  # stopped while planning: the plan is abandoned, nothing is recorded
        except Exception as exc:
            self._retry[day] = time.monotonic() + self.config.dayahead_retry_wall_s
            self.historian.record_event(
                issued, "dayahead_failed", day=str(day), error=f"{type(exc).__name__}: {exc}"
            )
            return
        finally:
            self.planning.discard(day)
        fallback = result.plan.record.fallback
        if fallback is None:
            self.plans[day] = result.plan.schedule
            soc = pd.concat([p.bess_soc_frac for _, p in sorted(self.plans.items())])
            self.plan = replace(result.plan.schedule, bess_soc_frac=soc)
        else:
            # a fallback is no plan to steer by: the MPC's windows end at their configured
            # state of charge for that day instead, and the operator is told
            self._retry[day] = time.monotonic() + self.config.dayahead_retry_wall_s
            log.warning("day-ahead plan of %s is a fallback (%s, the optimiser: %s): not "
                        "followed", day, fallback, result.plan.record.status)
            self.historian.record_event(issued, "dayahead_fallback", day=str(day),
                                        fallback=fallback, status=result.plan.record.status)
        self.historian.record_schedule(issued, "dayahead", result.plan.schedule.setpoint_table())
        record = result.plan.record.to_dict()
        record["kpis"] = result.kpis
        record["day"] = str(day)
        self.historian.record_decision(issued, "dayahead", record)
