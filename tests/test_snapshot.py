"""The snapshot a controller decides from: what it accepts as measured and what it refuses."""

from __future__ import annotations

import pandas as pd
import pytest

from controllers.ev_charging import SessionState
from controllers.snapshot import GridSnapshot
from forecasts.ev import EvSession

T0 = pd.Timestamp("2026-07-15 09:00", tz="Asia/Shanghai")


def _session(sid: str, site: str, connector: str) -> SessionState:
    return SessionState(session=EvSession(
        id=sid, site=site, connector=connector, arrival=T0,
        departure=T0 + pd.Timedelta(hours=2), energy_kwh=10.0, max_kw=7.0))


def test_two_sessions_with_one_id_are_refused_naming_the_id_and_both_connectors():
    with pytest.raises(ValueError, match=r"'S-42'.*EV_L1_1 connector c3.*EV_L2_1 connector c7"):
        GridSnapshot(time=T0, bess_soc_frac={}, ev_sessions=(
            _session("S-42", "EV_L1_1", "c3"), _session("S-42", "EV_L2_1", "c7")))


def test_one_session_given_twice_is_refused_too():
    st = _session("S-7", "EV_L1_1", "c1")
    with pytest.raises(ValueError, match=r"'S-7' is given twice"):
        GridSnapshot(time=T0, bess_soc_frac={}, ev_sessions=(st, st))


def test_sessions_with_distinct_ids_are_kept_each_as_given():
    states = (_session("a", "EV_L1_1", "c1"), _session("b", "EV_L1_1", "c2"))
    snap = GridSnapshot(time=T0, bess_soc_frac={}, ev_sessions=states)
    assert snap.ev_sessions == states
