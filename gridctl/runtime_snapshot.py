"""What the controller is given of the field: the snapshot of a control step, and what the
runtime records between steps.

A snapshot holds the batteries' state of charge as measured (NaN when not read or Bad, never
clamped: :mod:`controllers.bess_soc` decides what an out-of-band reading means), the switches
out of their normal position, and the EV sessions plugged in (:mod:`gridctl.runtime_ev`), each
present from when its energy was read.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pandas as pd

from controllers.snapshot import GridSnapshot
from gridctl.field.contract import FieldContract, PointKey
from gridctl.field_client import PointReading
from gridctl.historian import StoredSession
from gridctl.runtime_ev import EvSessionReader, good_values, measured_at
from network_models.model import GridModel
from network_models.registry import (
    Bess,
    EvChargingSite,
    Meter,
    PvSystem,
    SubstationTransformer,
    SwitchDevice,
)


def snapshot_of(
    model: GridModel, now: pd.Timestamp, readings: list[PointReading], *,
    sessions: EvSessionReader, held: Collection[str], latest: pd.Timestamp,
) -> tuple[GridSnapshot, list[StoredSession]]:
    """The snapshot of the step beginning at ``now`` from its ``readings``, with the sessions
    as the historian keeps them; the EV sites in ``held`` (at 0 kW) are left out, and no
    session is taken as read later than ``latest``."""
    by_key = {r.key: r for r in readings}
    reg = model.registry

    def value(device: str, point: str, default: Any = None) -> Any:
        r = by_key.get((device, point))
        return r.value if r is not None and r.good else default

    soc = {}
    for b in reg.of_type(Bess):
        v = value(b.id, "soc_frac")
        soc[b.id] = float(v) if number(v) is not None and not isinstance(v, bool) else (
            float("nan"))
    sites = [site for site in reg.of_type(EvChargingSite) if site.id not in held]
    states, stored = sessions.sessions(
        now, good_values(readings), sites, measured_at=min(measured_at(readings, now), latest))
    switches = {}
    for sw in reg.of_type(SwitchDevice):
        v = value(sw.id, "closed")
        if v is not None and bool(v) != sw.normally_closed:
            switches[sw.id] = bool(v)
    snap = GridSnapshot(
        time=now, bess_soc_frac=soc, ev_sessions=tuple(states), switch_closed=switches
    )
    return snap, stored


def polled_points(contract: FieldContract, model: GridModel) -> list[PointKey]:
    """Meters, substation transformers, batteries, PV and EV site totals: what the report plots."""
    reg = model.registry
    keep = {d.id for d in reg.of_type(Meter)} | {d.id for d in reg.of_type(SubstationTransformer)}
    keep |= {d.id for d in reg.of_type(Bess)} | {d.id for d in reg.of_type(PvSystem)}
    sites = {d.id for d in reg.of_type(EvChargingSite)}
    out = []
    for p in contract.measurements():
        device, point = p.key
        if device in keep or (device in sites and point == "p_charge_kw"):
            out.append(p.key)
    return out


def number(v: Any) -> float | None:
    """A reading as a number (a flag as 0 or 1), None when it is none."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, int | float):
        return float(v)
    return None
