"""The field's clock as the runtime follows it: the simulator's time, or the wall's, and its
jumps.

Against the simulator the field's time is the one its subscription last delivered (none before
its first image of a session); against a real field it is the wall clock. A clock that moves
back (beyond a second), or ahead by more than ``clock_jump_s`` between two ticks, jumped: a
simulator restarted at another time, a device clock set. The jump is recorded; one back begins
a new run of the historian (its records would mix with the earlier ones). The first reading
after a start is compared with the historian's last record.
"""

from __future__ import annotations

import logging

import pandas as pd

from gridctl.field_watch import FieldWatch
from gridctl.historian import Historian

log = logging.getLogger("gridctl.runtime")

_ONE_SECOND = pd.Timedelta(seconds=1)


def field_time(watch: FieldWatch | None, timezone: str, *, follow_simulator: bool,
               answered: bool) -> pd.Timestamp | None:
    """The field's time now; None while a simulator's session has not delivered (and the
    runtime ``answered``) its first image."""
    if follow_simulator:
        if watch is None or watch.time is None or not answered:
            return None
        return pd.Timestamp(watch.time).tz_convert(timezone)
    return pd.Timestamp.now(tz=timezone)


def resumed_back(historian: Historian, resumed: pd.Timestamp | None,
                 now: pd.Timestamp) -> None:
    """The first field time after a start, before the historian's last: recorded as a jump
    back (due work starts from now anyway)."""
    if resumed is not None and now < resumed - _ONE_SECOND:
        historian.begin_run("clock_jumped_back", before=resumed.isoformat(),
                            after=now.isoformat())
        historian.record_event(now, "clock_jumped", direction="back",
                               before=resumed.isoformat(), after=now.isoformat(),
                               by_s=(now - resumed).total_seconds())


def jumped(historian: Historian, last: pd.Timestamp, now: pd.Timestamp, *,
           clock_jump_s: float) -> pd.Timedelta | None:
    """The jump from ``last`` to ``now``, recorded; None when the clock ran as it should."""
    jump = now - last
    if -_ONE_SECOND <= jump <= pd.Timedelta(seconds=clock_jump_s):
        return None
    direction = "back" if jump < pd.Timedelta(0) else "ahead"
    log.warning("the field's clock jumped %s by %s (%s -> %s): due work rescheduled",
                direction, abs(jump), last, now)
    if direction == "back":
        historian.begin_run("clock_jumped_back", before=last.isoformat(),
                            after=now.isoformat())
    historian.record_event(now, "clock_jumped", direction=direction,
                           before=last.isoformat(), after=now.isoformat(),
                           by_s=jump.total_seconds())
    return jump
