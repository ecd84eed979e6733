"""The immutable snapshot a controller decides from: grid state at the start of a step."""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import pandas as pd

from controllers.ev_charging import SessionState
from network_models.model import GridModel


@dataclass(frozen=True, kw_only=True)
class GridSnapshot:
    """What was measured at ``time``: BESS state of charge, EV sessions (with energy delivered so
    far) and switch positions. Sessions not yet arrived may be included as known or forecast.

    ``bess_soc_frac`` is each battery's SoC as measured: NaN when unknown (not measured, Bad
    status), possibly outside its band or outside [0, 1] (a faulty BMS reading); the controller
    plans from it as ``controllers.bess_soc`` says. A battery absent from it was not measured.
    Session ids are unique: two sessions with one id are refused, never merged."""

    time: pd.Timestamp
    bess_soc_frac: Mapping[str, float]
    ev_sessions: tuple[SessionState, ...] = ()
    switch_closed: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("GridSnapshot.time must be timezone-aware")
        for k, soc in self.bess_soc_frac.items():
            if isinstance(soc, bool) or not isinstance(soc, numbers.Real):
                raise ValueError(f"BESS {k!r}: soc_frac must be a number (NaN if unknown), "
                                 f"got {soc!r}")
        seen: dict[str, SessionState] = {}
        for st in self.ev_sessions:
            s = st.session
            if s.id in seen:
                first = seen[s.id].session
                raise ValueError(
                    f"EV session id {s.id!r} is given twice: at {first.site} connector "
                    f"{first.connector} and at {s.site} connector {s.connector}; one id is "
                    "one vehicle's session, never merged"
                )
            seen[s.id] = st

    @classmethod
    def initial(
        cls, model: GridModel, time: pd.Timestamp, sessions: tuple[SessionState, ...] = ()
    ) -> GridSnapshot:
        """The state at the start of a plan: every BESS at its configured initial SoC."""
        return cls(
            time=time,
            bess_soc_frac={b.id: b.soc_init_frac for b in model.registry.bess},
            ev_sessions=sessions,
        )
