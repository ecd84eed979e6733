"""Command-line arguments every command reads the same way (a day to plan)."""

from __future__ import annotations

import datetime as dt

from gridctl.errors import UserInputError

__all__ = ["parse_day"]


def parse_day(text: str, *, option: str = "--date") -> dt.date:
    """A calendar day from ``YYYY-MM-DD``, within the days gridctl plans (Asia/Shanghai)."""
    from forecasts.timegrid import EARLIEST, LATEST

    try:
        day = dt.date.fromisoformat(text.strip())
    except ValueError:
        raise UserInputError(
            f"expected a date as YYYY-MM-DD (e.g. 2026-07-15), got {text!r}", source=option
        ) from None
    if not EARLIEST <= day <= LATEST:
        raise UserInputError(
            f"{day.isoformat()}: expected a day from {EARLIEST.isoformat()} to "
            f"{LATEST.isoformat()}", source=option)
    return day
