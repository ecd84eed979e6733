"""A battery's measured state of charge as the controller takes it, and the powers that never
drive the battery further out of its band.

What the field reports is used as measured, whatever it is:

- inside the band [soc_min_frac, soc_max_frac]: planned from as it is;
- outside the band but physical (in [0, 1]): planned from as it is, never driven further out
  (below the band it may only charge until back in, above it only discharge), brought back in;
- outside [0, 1] by at most ``PLAUSIBLE_EXCESS_FRAC``: a measurement fault of a BMS near one
  end (a drifted gauge), taken at the nearest physical bound in the direction of safety
  (−0.1 as empty: charge only; 1.2 as full: discharge only) and flagged as a fault;
- NaN, infinite, absent, or further outside [0, 1] (e.g. a percentage sent as a fraction,
  which says nothing about which end the battery is near): unknown. A battery of unknown
  charge cannot be dispatched safely in either direction: it is held at 0 MW (its reactive
  power may still serve the voltage: it moves no energy).

Units: SoC as a fraction of ``e_mwh``, powers in MW (injection, discharge positive), hours.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from controllers.schedule import DispatchSchedule
from network_models.registry import Bess

# how far outside [0, 1] a reading is still taken as "near that end" (see the module docstring)
PLAUSIBLE_EXCESS_FRAC = 0.25
# a clip smaller than this is solver tolerance, not worth a line in the record
_NOTABLE_CLIP_MW = 1e-3


class SocStatus(StrEnum):
    IN_BAND = "in_band"
    BELOW_BAND = "below_band"
    ABOVE_BAND = "above_band"
    UNKNOWN = "unknown"


@dataclass(frozen=True, kw_only=True)
class SocReading:
    """One battery's SoC as measured and as the controller plans from it."""

    bess_id: str
    measured_frac: float  # as read (NaN when absent)
    soc_frac: float  # as planned from: in [0, 1], NaN when unknown
    status: SocStatus
    measurement_fault: bool  # outside [0, 1]: the reading itself is wrong
    band: tuple[float, float]  # (soc_min_frac, soc_max_frac)

    @property
    def dispatchable(self) -> bool:
        return self.status is not SocStatus.UNKNOWN

    @property
    def issue(self) -> str | None:
        """What was wrong with the reading and what the controller does about it, or None."""
        lo, hi = self.band
        band = f"its band [{lo:.2f}, {hi:.2f}]"
        if self.status is SocStatus.UNKNOWN:
            if self.measurement_fault:
                why = (f"measured SoC {self.measured_frac:g} is far outside [0, 1], a measurement "
                       "fault that tells neither end")
            else:
                why = "SoC unknown (not measured, Bad status or NaN)"
            return f"{why}: held at 0 MW (reactive power only)"
        fault = ""
        if self.measurement_fault:
            end = "empty" if self.soc_frac <= 0.0 else "full"
            fault = (f"measured SoC {self.measured_frac:g} is outside [0, 1], a measurement "
                     f"fault: taken as {self.soc_frac:g} ({end}); ")
        if self.status is SocStatus.BELOW_BAND:
            return (f"{fault}SoC {self.soc_frac:.3f} below {band}: charged back into it, "
                    "never discharged while below")
        if self.status is SocStatus.ABOVE_BAND:
            return (f"{fault}SoC {self.soc_frac:.3f} above {band}: discharged back into it, "
                    "never charged while above")
        return fault.removesuffix("; ") or None


def read_soc(bess: Bess, measured: float | None) -> SocReading:
    """The controller's reading of one battery's measured SoC (see the module docstring)."""
    band = (bess.soc_min_frac, bess.soc_max_frac)
    value = float("nan") if measured is None else float(measured)
    fault = math.isfinite(value) and not 0.0 <= value <= 1.0
    if not math.isfinite(value) or not (
        -PLAUSIBLE_EXCESS_FRAC <= value <= 1.0 + PLAUSIBLE_EXCESS_FRAC
    ):
        return SocReading(bess_id=bess.id, measured_frac=value, soc_frac=float("nan"),
                          status=SocStatus.UNKNOWN, measurement_fault=fault, band=band)
    soc = min(max(value, 0.0), 1.0)
    if soc < bess.soc_min_frac:
        status = SocStatus.BELOW_BAND
    elif soc > bess.soc_max_frac:
        status = SocStatus.ABOVE_BAND
    else:
        status = SocStatus.IN_BAND
    return SocReading(bess_id=bess.id, measured_frac=value, soc_frac=soc, status=status,
                      measurement_fault=fault, band=band)


def read_fleet(bess: Sequence[Bess], soc_frac: Mapping[str, float]) -> dict[str, SocReading]:
    """Every battery's reading by id; one absent from ``soc_frac`` was not measured."""
    return {b.id: read_soc(b, soc_frac.get(b.id)) for b in bess}


def soc_issues(readings: Mapping[str, SocReading]) -> dict[str, str]:
    """Battery id -> what was wrong with its SoC and what was done, for the decision record."""
    return {k: r.issue for k, r in readings.items() if r.issue is not None}


def floor_frac(bess: Bess, *, use_island_reserve: bool) -> float:
    """The lowest SoC the controller plans to: the band's floor, or the islanding reserve."""
    return max(bess.soc_min_frac, bess.island_reserve_frac) if use_island_reserve else (
        bess.soc_min_frac
    )


def p_limits_mw(bess: Bess, soc_frac: float, step_h: float, floor: float) -> tuple[float, float]:
    """(most charging, most discharging) injection over ``step_h`` that keeps the rating and
    never drives the SoC further out of [floor, soc_max_frac]: below the floor no discharge,
    above soc_max no charge, inside never out; charging is negative; (0, 0) when unknown."""
    if not math.isfinite(soc_frac):
        return 0.0, 0.0
    room_mwh = max(bess.soc_max_frac - soc_frac, 0.0) * bess.e_mwh
    stored_mwh = max(soc_frac - floor, 0.0) * bess.e_mwh
    charge = min(bess.p_mw, room_mwh / (bess.eta_charge * step_h))
    discharge = min(bess.p_mw, stored_mwh * bess.eta_discharge / step_h)
    return -charge, discharge


def soc_after(bess: Bess, soc_frac: float, p_mw: float, step_h: float) -> float:
    """SoC after injecting ``p_mw`` for ``step_h``: charging stores ``eta_charge`` of the energy
    drawn, discharging draws ``1 / eta_discharge`` of the energy delivered."""
    stored = -p_mw * step_h * (bess.eta_charge if p_mw < 0 else 1.0 / bess.eta_discharge)
    return soc_frac + stored / bess.e_mwh


def guard_schedule(
    schedule: DispatchSchedule,
    bess: Sequence[Bess],
    readings: Mapping[str, SocReading],
    *,
    use_island_reserve: bool,
) -> tuple[DispatchSchedule, tuple[str, ...]]:
    """The schedule with every battery's power clipped, step by step from its measured SoC, so
    that the projected SoC never goes further out of its band (nor the power beyond its rating),
    the SoC column replaced by that projection (NaN when unknown), and a note per clip."""
    p = schedule.bess_p_mw.copy()
    soc = schedule.bess_soc_frac.copy()
    notes = []
    h = schedule.step_h
    for b in bess:
        if b.id not in p.columns:
            continue
        r = readings[b.id]
        floor = floor_frac(b, use_island_reserve=use_island_reserve)
        wanted = p[b.id].to_numpy(dtype=float)
        wanted = np.where(np.isfinite(wanted), wanted, 0.0)
        sent = np.zeros_like(wanted)
        path = np.full_like(wanted, np.nan)
        s = r.soc_frac
        for k, w in enumerate(wanted):
            lo, hi = p_limits_mw(b, s, h, floor)
            sent[k] = min(max(w, lo), hi)
            if math.isfinite(s):
                s = soc_after(b, s, sent[k], h)
            path[k] = s
        clipped = np.flatnonzero(np.abs(sent - wanted) > _NOTABLE_CLIP_MW)
        if len(clipped):
            k = int(clipped[0])
            why = (f"SoC {r.soc_frac:.3f}" if r.dispatchable else "SoC unknown") + (
                f", band [{floor:.2f}, {b.soc_max_frac:.2f}]")
            notes.append(
                f"{b.id}: power clipped at {len(clipped)} step(s) so as never to drive it further "
                f"out of its band ({why}); first at {schedule.index[k].isoformat()}: "
                f"{wanted[k]:.3f} MW -> {sent[k]:.3f} MW"
            )
        p[b.id] = sent
        soc[b.id] = path
    return replace(schedule, bess_p_mw=p, bess_soc_frac=soc), tuple(notes)
