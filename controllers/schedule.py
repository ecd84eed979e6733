"""What the controller decides and why: the dispatch schedule, its AC check and the decision record.

Sign conventions: ``pv_p_mw``/``bess_p_mw`` are injections (BESS discharge positive), EV powers
are consumption (kW per session, MW per site). Times are step starts, Asia/Shanghai.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True, kw_only=True, eq=False)
class DispatchSchedule:
    """Setpoints per device per step (DataFrames indexed by step start, one column per device)."""

    index: pd.DatetimeIndex
    step_h: float
    pv_p_mw: pd.DataFrame  # what each PV system may inject (available minus curtailment)
    pv_q_mvar: pd.DataFrame
    bess_p_mw: pd.DataFrame
    bess_q_mvar: pd.DataFrame
    bess_soc_frac: pd.DataFrame  # at the END of each step
    ev_site_p_mw: pd.DataFrame
    ev_session_p_kw: pd.DataFrame  # one column per session id

    def shifted(self, steps: int = 1) -> DispatchSchedule:
        """The schedule moved ``steps`` forward, the last step held (for the fallback chain)."""

        def shift(df: pd.DataFrame) -> pd.DataFrame:
            if df.empty or steps <= 0:
                return df
            values = df.to_numpy()
            if len(values) > steps:
                values = np.vstack([values[steps:], np.repeat(values[-1:], steps, axis=0)])
            else:
                values = np.repeat(values[-1:], len(values), axis=0)
            idx = self.index + pd.Timedelta(hours=self.step_h * steps)
            return pd.DataFrame(values, index=idx, columns=df.columns)

        return DispatchSchedule(
            index=self.index + pd.Timedelta(hours=self.step_h * steps),
            step_h=self.step_h,
            pv_p_mw=shift(self.pv_p_mw),
            pv_q_mvar=shift(self.pv_q_mvar),
            bess_p_mw=shift(self.bess_p_mw),
            bess_q_mvar=shift(self.bess_q_mvar),
            bess_soc_frac=shift(self.bess_soc_frac),
            ev_site_p_mw=shift(self.ev_site_p_mw),
            ev_session_p_kw=shift(self.ev_session_p_kw),
        )

    def setpoint_table(self) -> pd.DataFrame:
        """One row per step, one column per device setpoint (``<device>.<point>``)."""
        parts = [
            self.pv_p_mw.add_suffix(".p_limit_mw"),
            self.pv_q_mvar.add_suffix(".q_set_mvar"),
            self.bess_p_mw.add_suffix(".p_set_mw"),
            self.bess_q_mvar.add_suffix(".q_set_mvar"),
            (self.ev_site_p_mw * 1000.0).add_suffix(".p_site_limit_kw"),
        ]
        table = pd.concat(parts, axis=1)
        table.index.name = "step_start"
        return table


@dataclass(frozen=True, kw_only=True)
class AcViolation:
    step: int
    kind: str  # voltage_low, voltage_high, line_loading, trafo_loading, not_converged
    element: str
    value: float
    limit: float


@dataclass(frozen=True, kw_only=True, eq=False)
class AcCheck:
    """Full AC power flow of a schedule, every step."""

    engine: str
    converged: bool
    v_min_pu: float
    v_max_pu: float
    max_line_loading_pct: float
    max_trafo_loading_pct: float
    import_mw: np.ndarray
    losses_mw: np.ndarray
    violations: tuple[AcViolation, ...]
    wall_s: float
    result: Any = field(default=None, repr=False)  # the TimeSeriesResult behind the check

    @property
    def passed(self) -> bool:
        return self.converged and not self.violations

    def extremes(self) -> dict[str, float]:
        """The voltage band and the highest loadings, rounded as the reports print them."""
        return {
            "v_min_pu": round(self.v_min_pu, 5),
            "v_max_pu": round(self.v_max_pu, 5),
            "max_line_loading_pct": round(self.max_line_loading_pct, 3),
            "max_trafo_loading_pct": round(self.max_trafo_loading_pct, 3),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "converged": self.converged,
            "passed": self.passed,
            **self.extremes(),
            "violations": [asdict(v) for v in self.violations[:50]],
            "violation_count": len(self.violations),
            "wall_s": round(self.wall_s, 4),
        }


@dataclass(frozen=True, kw_only=True)
class DecisionRecord:
    """Why the controller decided what it did: one per plan or MPC step."""

    time: str  # ISO, Asia/Shanghai, start of the first step decided
    status: str  # solver status of the accepted solve, or the fallback's name
    fallback: str | None  # None, "last_schedule_shifted" or "rule_based_safe_dispatch"
    objective_cny: float
    terms_cny: Mapping[str, float]
    solve_s: float  # solver time, summed over re-linearisations
    total_s: float  # wall time of the whole decision
    relinearisations: int
    ac_check: Mapping[str, Any]
    ev_shortfall_kwh: Mapping[str, float]  # per session id, energy owed at departure
    # per BESS id whose measured SoC was out of its band, faulty or unknown: what and what was done
    bess_soc_issues: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    # the network limits that bound the accepted plan: element, kind (voltage_low,
    # voltage_high, line_loading, trafo_loading), the steps' start times, the shadow price of
    # each (CNY per pu or per MVA of that step's limit, ``unit``) and the limit kept to
    binding_constraints: tuple[Mapping[str, Any], ...] = ()
    limits_readded: int = 0  # limits the screen had left out, added back after an AC check
    ev_envelopes_raised: int = 0  # sessions whose site envelope was raised after the split

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["terms_cny"] = dict(self.terms_cny)
        d["ev_shortfall_kwh"] = dict(self.ev_shortfall_kwh)
        d["bess_soc_issues"] = dict(self.bess_soc_issues)
        d["ac_check"] = dict(self.ac_check)
        d["notes"] = list(self.notes)
        d["binding_constraints"] = [dict(b) for b in self.binding_constraints]
        return d
