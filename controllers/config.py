"""Dispatch settings: limits, margins, objective weights and solver, as data."""

from __future__ import annotations

from dataclasses import dataclass, field

from network_models.ac_checks import AcLimits

DEFAULT_HORIZON_STEPS = 16  # the MPC's window: 4 h of 15-min steps
DEFAULT_STEP_MINUTES = 15


@dataclass(frozen=True, kw_only=True)
class ObjectiveWeights:
    """Weights of the objective terms, all in CNY so terms add up to a cost.

    Figures marked assumption are modelling choices, not tariffs.
    """

    energy: float = 1.0  # multiplier on the TOU energy cost of grid import
    carbon_cny_per_t: float = 80.0  # assumption: near the national carbon market price
    peak_cny_per_mw: float = 1300.0  # assumption: demand charge ~39 CNY/kW-month over 30 days
    losses_cny_per_mwh: float = 0.0  # losses are already priced through import; extra weight
    curtailment_cny_per_mwh: float = 50.0  # assumption: lost subsidy / green value of PV energy
    degradation: float = 1.0  # multiplier on each BESS's degradation_cny_per_mwh throughput cost
    reactive_cny_per_mvarh: float = 10.0  # reactive power for limits, not for pennies of losses
    ev_shortfall_cny_per_mwh: float = 20_000.0  # energy owed to a driver at departure
    # per MWh a vehicle that should not wait (little slack, or a busy site: see
    # DispatchConfig.ev_wait_slack_min) could take in the coming step and is not given: a soft
    # floor, below the shortfall price (a risk, not a certain loss), above any price spread
    ev_deferral_cny_per_mwh: float = 10_000.0
    bess_terminal_cny_per_mwh: float = 1_500.0  # end-of-horizon SoC below its target
    # per MWh outside a battery's SoC band, in every step: above any price spread or demand
    # charge a discharge below the band (or a charge above it) could earn, so it comes back first
    bess_out_of_band_cny_per_mwh: float = 20_000.0
    voltage_violation_cny_per_pu: float = 2_000_000.0
    loading_violation_cny_per_mva: float = 200_000.0


@dataclass(frozen=True, kw_only=True)
class DispatchConfig:
    """Everything the optimiser needs besides the model and the forecast."""

    v_min_pu: float = 0.93  # GB/T 12325, 10 kV and below
    v_max_pu: float = 1.07
    max_loading_frac: float = 1.0  # lines and transformers
    voltage_margin_pu: float = 0.008  # inside the band: linearisation and forecast error
    loading_margin_frac: float = 0.03
    weights: ObjectiveWeights = field(default_factory=ObjectiveWeights)
    solver: str = "CLARABEL"  # an LP; HiGHS solves it too but was 4x slower here
    solver_time_limit_s: float | None = None  # a solve cut short here is no plan: fallback
    max_relinearisations: int = 4
    bess_terminal_soc_frac: float | None = None  # None: each BESS ends where it started
    use_island_reserve: bool = True
    # a preference, never a deadline: of two splits that deliver as much, the one that gives
    # each vehicle its energy before the last minutes of its stay
    ev_finish_margin_min: float = 15.0
    # an online plan does not defer the charging of a vehicle with less slack than this, nor of
    # any vehicle at a site whose plugged-in vehicles need this share of its rating until they
    # leave, nor at a site whose connectors can draw this many times its rating: what it defers,
    # a vehicle arriving meanwhile may take (ev_deferral_cny_per_mwh; assumptions, see
    # controllers.ev_charging.sessions_that_should_not_wait)
    ev_wait_slack_min: float = 60.0
    ev_site_busy_frac: float = 0.5
    ev_site_oversubscribed_ratio: float = 2.0

    @property
    def ac_limits(self) -> AcLimits:
        """The limits the AC check of a schedule holds it to (no margins)."""
        pct = 100.0 * self.max_loading_frac
        return AcLimits(
            v_min_pu=self.v_min_pu,
            v_max_pu=self.v_max_pu,
            max_line_loading_pct=pct,
            max_trafo_loading_pct=pct,
        )

    def __post_init__(self) -> None:
        if not 0.5 < self.v_min_pu < self.v_max_pu < 1.5:
            raise ValueError("expected 0.5 < v_min_pu < v_max_pu < 1.5")
        if not 0 < self.max_loading_frac <= 2:
            raise ValueError("max_loading_frac must be in (0, 2]")
        if self.voltage_margin_pu < 0 or self.loading_margin_frac < 0:
            raise ValueError("margins must be >= 0")
        if self.solver_time_limit_s is not None and not self.solver_time_limit_s > 0:
            raise ValueError("solver_time_limit_s must be > 0 seconds (or None: no limit)")
