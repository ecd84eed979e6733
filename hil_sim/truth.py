"""What really happens in the simulated field: load, available PV and EV sessions over time.

Taken from the forecasts package's "truth" (:func:`forecasts.build`, or the operator's files
where they cover the day: a measured day replayed), built one day at a time as the clock reaches
it (a day's values do not depend on the horizon they are built in, so the
days join seamlessly). The bundle holds means over 15-minute steps; a value at any instant is
interpolated linearly between step midpoints, across day boundaries.
"""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasts import EvSession
from forecasts.operator_inputs import OperatorInputs
from network_models.model import GridModel

_STEP = "15min"
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TruthSample:
    """Load and available PV at one instant, in the order of the registry's loads and PV."""

    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    pv_avail_mw: np.ndarray


@dataclass(frozen=True)
class _Day:
    start_ns: int
    step_ns: int
    load_p_mw: np.ndarray  # (steps, loads)
    load_q_mvar: np.ndarray
    pv_avail_mw: np.ndarray  # (steps, pv)


class FieldTruth:
    """Load, PV and EV sessions of a model for any simulated time (days built on demand)."""

    def __init__(
        self, model: GridModel, *, seed: int = 0, inputs: OperatorInputs | None = None
    ) -> None:
        self._model = model
        self._seed = seed
        self._inputs = inputs or OperatorInputs()
        self._tz = model.site.timezone
        self._load_ids = [d.id for d in model.registry.loads]
        self._pv_ids = [d.id for d in model.registry.pv]
        self._days: dict[pd.Timestamp, _Day] = {}
        self._known_sessions: set[str] = set()
        self._pending: list[tuple[int, str, EvSession]] = []  # sorted by arrival (ns)

    @property
    def load_ids(self) -> list[str]:
        return list(self._load_ids)

    @property
    def pv_ids(self) -> list[str]:
        return list(self._pv_ids)

    def at(self, t: pd.Timestamp) -> TruthSample:
        """Load and available PV at instant ``t`` (timezone-aware)."""
        day_start = self._day_start(t)
        day = self._day(day_start)
        pos = (t.value - day.start_ns) / day.step_ns - 0.5
        k0 = int(np.floor(pos))
        frac = pos - k0
        rows = [self._row(day_start, k0), self._row(day_start, k0 + 1)]
        mix = [
            (1.0 - frac) * a + frac * b for a, b in zip(rows[0], rows[1], strict=True)
        ]
        return TruthSample(load_p_mw=mix[0], load_q_mvar=mix[1], pv_avail_mw=mix[2])

    def arrivals_until(self, t: pd.Timestamp) -> list[EvSession]:
        """Sessions arrived by ``t`` not handed out before, by arrival; the day after ``t`` is
        built first so that no session arriving by ``t`` is missed."""
        self._day(self._day_start(t))
        self._day(self._day_start(t) + pd.Timedelta(days=1))
        cut = bisect.bisect_right(self._pending, (t.value, "\uffff"))
        taken = [s for _, _, s in self._pending[:cut]]
        del self._pending[:cut]
        return taken

    def _row(self, day_start: pd.Timestamp, k: int) -> tuple[np.ndarray, ...]:
        day = self._day(day_start)
        n = len(day.load_p_mw)
        while k < 0:
            day_start -= pd.Timedelta(days=1)
            day = self._day(day_start)
            k += len(day.load_p_mw)
        while k >= n:
            k -= n
            day_start += pd.Timedelta(days=1)
            day = self._day(day_start)
            n = len(day.load_p_mw)
        return day.load_p_mw[k], day.load_q_mvar[k], day.pv_avail_mw[k]

    def _day_start(self, t: pd.Timestamp) -> pd.Timestamp:
        return t.tz_convert(self._tz).normalize()

    def _day(self, day_start: pd.Timestamp) -> _Day:
        cached = self._days.get(day_start)
        if cached is not None:
            return cached
        bundle, modelled = self._inputs.days(self._model, day_start.date(), 1, _STEP,
                                             seed=self._seed)
        if modelled and self._inputs.given():
            _log.warning("the operator's files hold no data for %s: the simulator's truth of "
                         "that day comes from gridctl's own models", day_start.date())
        day = _Day(
            start_ns=day_start.value,
            step_ns=int(bundle.step.value),
            load_p_mw=bundle.load_p_mw.reindex(columns=self._load_ids, fill_value=0.0)
            .to_numpy(dtype=float),
            load_q_mvar=bundle.load_q_mvar.reindex(columns=self._load_ids, fill_value=0.0)
            .to_numpy(dtype=float),
            pv_avail_mw=bundle.pv_p_mw.reindex(columns=self._pv_ids, fill_value=0.0)
            .to_numpy(dtype=float),
        )
        self._days[day_start] = day
        new = [s for s in bundle.ev_sessions if s.id not in self._known_sessions]
        self._known_sessions.update(s.id for s in new)
        self._pending.extend((s.arrival.value, s.id, s) for s in new)
        self._pending.sort(key=lambda item: (item[0], item[1]))
        return day
