"""How long a microgrid's grid-forming BESS carries its island: the hold time, hours.

Units: MW, MWh, hours; loads consume (positive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from controllers.islanding_records import IslandProfile, MicrogridReading, MicrogridSpec
from network_models.registry import Bess

__all__ = ["hold_time_h", "served_hold_h", "served_load_p_mw"]


def hold_time_h(
    bess: Bess,
    soc_frac: float,
    load_p_mw: float | Sequence[float],
    pv_p_mw: float | Sequence[float],
    *,
    step_h: float = 0.25,
) -> float:
    """Hours the BESS can carry load minus PV from ``soc_frac`` down to its minimum SoC.

    Constant values give the closed form; sequences (one value per step of ``step_h``) are
    integrated step by step, PV surplus charging the battery up to its maximum SoC and power.
    ``inf`` when the battery never runs out (within a given profile: its length is a lower
    bound, reported as such only if the SoC falls over it).
    """
    usable = max(soc_frac - bess.soc_min_frac, 0.0) * bess.e_mwh
    if isinstance(load_p_mw, int | float) and isinstance(pv_p_mw, int | float):
        deficit = float(load_p_mw) - float(pv_p_mw)
        if deficit <= 0:
            return math.inf
        return usable * bess.eta_discharge / deficit
    loads = _series(load_p_mw)
    pvs = _series(pv_p_mw)
    steps = max(len(loads), len(pvs))
    energy = usable
    room = max(bess.soc_max_frac - soc_frac, 0.0) * bess.e_mwh
    for k in range(steps):
        deficit = loads[min(k, len(loads) - 1)] - pvs[min(k, len(pvs) - 1)]
        if deficit > 0:
            need = deficit / bess.eta_discharge * step_h
            if need >= energy:
                return k * step_h + energy / need * step_h
            energy -= need
            room += need
        else:
            stored = min(-deficit, bess.p_mw) * bess.eta_charge * step_h
            stored = min(stored, room)
            energy += stored
            room -= stored
    return math.inf


def served_load_p_mw(reading: MicrogridReading, served: frozenset[str]) -> float:
    """The load the ``served`` devices draw now, MW."""
    return sum(p for d, p in reading.load_p_mw.items() if d in served)


def served_hold_h(
    spec: MicrogridSpec,
    reading: MicrogridReading,
    served: frozenset[str],
    profile: IslandProfile | None,
) -> float:
    """How long the BESS carries the ``served`` devices from the present SoC, hours: with the
    load and PV held at present values, or following ``profile``."""
    pv_now = sum(reading.pv_p_mw.values())
    if profile is None:
        return hold_time_h(spec.bess, reading.soc_frac, served_load_p_mw(reading, served), pv_now)
    steps = max((len(v) for v in profile.load_p_mw.values()), default=len(profile.pv_p_mw))
    load = [
        sum(
            profile.load_p_mw[d][min(k, len(profile.load_p_mw[d]) - 1)]
            for d in served
            if d in profile.load_p_mw and len(profile.load_p_mw[d])
        )
        for k in range(steps)
    ]
    return hold_time_h(
        spec.bess,
        reading.soc_frac,
        load or [0.0],
        list(profile.pv_p_mw) or [0.0],
        step_h=profile.step_h,
    )


def _series(values: float | Sequence[float]) -> list[float]:
    if isinstance(values, int | float):
        return [float(values)]
    out = [float(v) for v in values]
    return out or [0.0]
