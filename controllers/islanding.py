"""Islanding of a microgrid on loss of upstream supply: a small state machine, one call per tick.

:func:`islanding_step` takes the microgrid's description (:class:`MicrogridSpec`, from the
model), the controller's memory (:class:`MicrogridState`) and what was read this tick
(:class:`MicrogridReading`), and returns an :class:`IslandingDecision`: the next state, the
actions in order and the figures behind them. It has no side effects, so a runtime, a drill or a
test drives it the same way.

- **grid-connected**, upstream supply lost: open the microgrid breaker, shed loads so that the
  grid-forming BESS can carry the rest (power) for at least ``target_hold_h`` (energy), then the
  BESS forms the grid. Shedding order: EV charging, then the highest priority number, fewest
  customers first; critical loads only when they alone exceed the BESS's power.
- **islanded**: every tick the served set is checked again against the present SoC, load and PV
  (shed more as the battery drains, restore shed loads when PV or SoC allows, with a margin so
  loads do not flap). The hold time is how long the BESS lasts from the present SoC down to its
  minimum, with the load and PV held at present values or following a profile.
- **islanded**, upstream supply back for ``reconnect_delay_s``: synchronising check (upstream
  bus energised), close the breaker, BESS back to grid-following, restore the shed loads.

Units: MW, MWh, hours; BESS power positive when discharging; loads consume (positive). The
battery's ``island_reserve_frac`` is what dispatch keeps in reserve while grid-connected; in the
island the BESS may use everything down to ``soc_min_frac``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from network_models.errors import InputError
from network_models.model import GridModel
from network_models.registry import Bess, EvChargingSite, Load, PvSystem

__all__ = [
    "IslandAction",
    "IslandActionKind",
    "IslandProfile",
    "IslandingDecision",
    "IslandingPolicy",
    "MicrogridMode",
    "MicrogridReading",
    "MicrogridSpec",
    "MicrogridState",
    "hold_time_h",
    "islanding_step",
]


class MicrogridMode(StrEnum):
    GRID_CONNECTED = "grid_connected"
    ISLANDED = "islanded"


class IslandActionKind(StrEnum):
    OPEN_BREAKER = "open_breaker"
    CLOSE_BREAKER = "close_breaker"
    FORM_GRID = "form_grid"  # BESS becomes the voltage and frequency source
    FOLLOW_GRID = "follow_grid"  # BESS back to grid-following
    SHED_LOAD = "shed_load"
    RESTORE_LOAD = "restore_load"


@dataclass(frozen=True, kw_only=True)
class ShedableLoad:
    """A load or EV site of the microgrid and where it stands in the shedding order."""

    device: str
    kind: str  # "load" | "ev_site"
    priority: int | None
    customers: int
    critical: bool

    def shed_rank(self) -> tuple[int, int, int, str]:
        if self.kind == "ev_site":
            return (0, 0, 0, self.device)
        return (2 if self.critical else 1, -(self.priority or 0), self.customers, self.device)


@dataclass(frozen=True, kw_only=True)
class MicrogridSpec:
    """A microgrid as the model describes it: its breaker, grid-forming BESS, loads and PV."""

    name: str
    breaker: str
    bess: Bess
    loads: tuple[ShedableLoad, ...]
    pv: tuple[str, ...]

    @classmethod
    def of(cls, model: GridModel, name: str | None = None) -> MicrogridSpec:
        """The model's microgrid ``name`` (its only one when ``name`` is None)."""
        grids = [m for m in model.microgrids if name is None or m.name == name]
        if len(grids) != 1:
            known = ", ".join(m.name for m in model.microgrids) or "none"
            raise InputError(
                f"expected one microgrid named {name!r}, model {model.name!r} has: {known}",
                source="argument",
                field="microgrid",
            )
        mg = grids[0]
        registry = model.registry
        bess = registry[mg.grid_forming_bess]
        if not isinstance(bess, Bess) or not bess.grid_forming:
            raise InputError(
                f"{mg.grid_forming_bess!r} is not a grid-forming BESS",
                source=model.source,
                element=mg.name,
                field="grid_forming_bess",
            )
        buses = set(mg.buses)
        loads = [
            ShedableLoad(
                device=d.id,
                kind="load",
                priority=d.priority,
                customers=d.customers,
                critical=d.critical,
            )
            for d in registry.of_type(Load)
            if d.bus in buses
        ] + [
            ShedableLoad(device=d.id, kind="ev_site", priority=None, customers=0, critical=False)
            for d in registry.of_type(EvChargingSite)
            if d.bus in buses
        ]
        return cls(
            name=mg.name,
            breaker=mg.breaker,
            bess=bess,
            loads=tuple(sorted(loads, key=ShedableLoad.shed_rank)),
            pv=tuple(d.id for d in registry.of_type(PvSystem) if d.bus in buses),
        )


@dataclass(frozen=True, kw_only=True)
class MicrogridReading:
    """One tick's readings: the grid side of the breaker (e.g. the PCC meter's voltage above
    0.8 pu), the breaker, the BESS's SoC, each load's and PV's present power."""

    upstream_energised: bool
    breaker_closed: bool
    soc_frac: float
    load_p_mw: Mapping[str, float]
    pv_p_mw: Mapping[str, float] = field(default_factory=dict)
    time: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "load_p_mw", MappingProxyType(dict(self.load_p_mw)))
        object.__setattr__(self, "pv_p_mw", MappingProxyType(dict(self.pv_p_mw)))


@dataclass(frozen=True, kw_only=True)
class IslandProfile:
    """Expected load (per device) and total PV from now on, in steps of ``step_h`` hours."""

    step_h: float
    load_p_mw: Mapping[str, Sequence[float]]
    pv_p_mw: Sequence[float]


@dataclass(frozen=True, kw_only=True)
class IslandingPolicy:
    """Choices of the operator (assumptions, keep them parameters).

    ``target_hold_h``: the island must last this long on the BESS (twice the hour manual
    restoration takes). ``restore_margin_frac``: a shed load comes back only with this much
    power and hold-time margin. ``reconnect_delay_s``: supply must be back this long first.
    """

    target_hold_h: float = 2.0
    restore_margin_frac: float = 0.1
    reconnect_delay_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class MicrogridState:
    """The controller's memory between ticks."""

    mode: MicrogridMode = MicrogridMode.GRID_CONNECTED
    shed: frozenset[str] = frozenset()
    supply_back_since: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class IslandAction:
    order: int
    action: IslandActionKind
    device: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class IslandingDecision:
    """What to do this tick and why; ``hold_time_h`` is ``inf`` when PV covers the load."""

    state: MicrogridState
    actions: tuple[IslandAction, ...]
    served_p_mw: float
    shed_p_mw: float
    pv_p_mw: float
    bess_p_mw: float
    soc_frac: float
    hold_time_h: float
    within_bess_power: bool
    note: str = ""


def islanding_step(
    spec: MicrogridSpec,
    state: MicrogridState,
    reading: MicrogridReading,
    *,
    policy: IslandingPolicy | None = None,
    profile: IslandProfile | None = None,
) -> IslandingDecision:
    """The decision of one tick (see the module docstring)."""
    policy = policy or IslandingPolicy()
    _check(spec, reading)
    actions: list[tuple[IslandActionKind, str, str]] = []
    if state.mode is MicrogridMode.GRID_CONNECTED:
        if reading.upstream_energised:
            served = frozenset(ld.device for ld in spec.loads)
            return _decision(spec, state, reading, served, actions, profile, "grid-connected")
        if reading.breaker_closed:
            actions.append(
                (
                    IslandActionKind.OPEN_BREAKER,
                    spec.breaker,
                    "upstream supply lost: island the microgrid",
                )
            )
        shed = _choose_shed(spec, reading, frozenset(), policy, profile, margin=0.0)
        actions += [
            (IslandActionKind.SHED_LOAD, d, _shed_reason(spec, d)) for d in _ordered(spec, shed)
        ]
        actions.append(
            (
                IslandActionKind.FORM_GRID,
                spec.bess.id,
                "BESS forms the island's voltage and frequency",
            )
        )
        new = MicrogridState(mode=MicrogridMode.ISLANDED, shed=shed)
        return _decision(
            spec,
            new,
            reading,
            _served(spec, shed),
            actions,
            profile,
            "islanded on loss of upstream supply",
        )

    # islanded
    if reading.upstream_energised:
        since = state.supply_back_since or reading.time
        waited = (
            math.inf
            if reading.time is None or since is None
            else (reading.time - since).total_seconds()
        )
        if waited >= policy.reconnect_delay_s:
            actions.append(
                (
                    IslandActionKind.CLOSE_BREAKER,
                    spec.breaker,
                    "supply back and synchronising check passed (upstream energised)",
                )
            )
            actions.append(
                (
                    IslandActionKind.FOLLOW_GRID,
                    spec.bess.id,
                    "grid-connected again: BESS follows the grid",
                )
            )
            actions += [
                (IslandActionKind.RESTORE_LOAD, d, "reconnected to the grid")
                for d in reversed(_ordered(spec, state.shed))
            ]
            new = MicrogridState(mode=MicrogridMode.GRID_CONNECTED)
            served = frozenset(ld.device for ld in spec.loads)
            return _decision(spec, new, reading, served, actions, profile, "reconnected")
        state = MicrogridState(mode=state.mode, shed=state.shed, supply_back_since=since)
    else:
        state = MicrogridState(mode=state.mode, shed=state.shed)

    shed = _choose_shed(
        spec, reading, state.shed, policy, profile, margin=policy.restore_margin_frac
    )
    for d in _ordered(spec, shed - state.shed):
        actions.append((IslandActionKind.SHED_LOAD, d, _shed_reason(spec, d)))
    for d in reversed(_ordered(spec, state.shed - shed)):
        actions.append(
            (IslandActionKind.RESTORE_LOAD, d, "PV and state of charge allow it again, with margin")
        )
    new = MicrogridState(mode=state.mode, shed=shed, supply_back_since=state.supply_back_since)
    note = (
        "islanded, waiting for the supply to stay back"
        if reading.upstream_energised
        else "islanded"
    )
    return _decision(spec, new, reading, _served(spec, shed), actions, profile, note)


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


# ---------------------------------------------------------------------------------------------


def _check(spec: MicrogridSpec, reading: MicrogridReading) -> None:
    if not 0.0 <= reading.soc_frac <= 1.0:
        raise InputError(
            f"state of charge {reading.soc_frac}: expected a fraction in [0, 1]",
            source="MicrogridReading",
            element=spec.bess.id,
            field="soc_frac",
        )
    known = {ld.device for ld in spec.loads}
    for device in reading.load_p_mw:
        if device not in known:
            raise InputError(
                f"{device!r} is not a load of microgrid {spec.name}: expected one of "
                f"{', '.join(sorted(known))}",
                source="MicrogridReading",
                element=device,
                field="load_p_mw",
            )


def _served(spec: MicrogridSpec, shed: frozenset[str]) -> frozenset[str]:
    return frozenset(ld.device for ld in spec.loads if ld.device not in shed)


def _ordered(spec: MicrogridSpec, devices: frozenset[str]) -> list[str]:
    """Devices in shedding order."""
    return [ld.device for ld in spec.loads if ld.device in devices]


def _shed_reason(spec: MicrogridSpec, device: str) -> str:
    ld = next(x for x in spec.loads if x.device == device)
    what = (
        "EV charging"
        if ld.kind == "ev_site"
        else (f"priority {ld.priority}{', critical' if ld.critical else ''}")
    )
    return f"keep the island within the BESS's power and energy ({what})"


def _load_now(reading: MicrogridReading, served: frozenset[str]) -> float:
    return sum(p for d, p in reading.load_p_mw.items() if d in served)


def _hold(
    spec: MicrogridSpec,
    reading: MicrogridReading,
    served: frozenset[str],
    profile: IslandProfile | None,
) -> float:
    pv_now = sum(reading.pv_p_mw.values())
    if profile is None:
        return hold_time_h(spec.bess, reading.soc_frac, _load_now(reading, served), pv_now)
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


def _fits(
    spec: MicrogridSpec,
    reading: MicrogridReading,
    served: frozenset[str],
    policy: IslandingPolicy,
    profile: IslandProfile | None,
    margin: float,
) -> tuple[bool, bool]:
    """(within the BESS's power, lasting the target hold time), each with ``margin``."""
    deficit = _load_now(reading, served) - sum(reading.pv_p_mw.values())
    power_ok = deficit <= spec.bess.p_mw * (1.0 - margin)
    energy_ok = _hold(spec, reading, served, profile) >= policy.target_hold_h * (1.0 + margin)
    return power_ok, energy_ok


def _choose_shed(
    spec: MicrogridSpec,
    reading: MicrogridReading,
    shed_now: frozenset[str],
    policy: IslandingPolicy,
    profile: IslandProfile | None,
    margin: float,
) -> frozenset[str]:
    """The loads to keep off: the shortest prefix of the shedding order that fits.

    Energy sheds non-critical loads only; power sheds critical ones too when nothing else helps.
    A load already off comes back only if it fits with ``margin``; one on stays with none.
    """
    order = [ld.device for ld in spec.loads]
    critical = {ld.device for ld in spec.loads if ld.critical}
    for n in range(len(order) + 1):
        shed = frozenset(order[:n])
        served = _served(spec, shed)
        comes_back = bool(shed_now - shed)
        power_ok, energy_ok = _fits(
            spec, reading, served, policy, profile, margin if comes_back else 0.0
        )
        only_critical_left = served <= critical
        if power_ok and (energy_ok or only_critical_left):
            return shed
    return frozenset(order)


def _decision(
    spec: MicrogridSpec,
    state: MicrogridState,
    reading: MicrogridReading,
    served: frozenset[str],
    actions: list[tuple[IslandActionKind, str, str]],
    profile: IslandProfile | None,
    note: str,
) -> IslandingDecision:
    load = _load_now(reading, served)
    pv = sum(reading.pv_p_mw.values())
    bess_p = min(load - pv, spec.bess.p_mw) if state.mode is MicrogridMode.ISLANDED else 0.0
    full = reading.soc_frac >= spec.bess.soc_max_frac
    if state.mode is MicrogridMode.ISLANDED and (
        pv - load > spec.bess.p_mw or (full and pv > load)
    ):
        absorb = 0.0 if full else spec.bess.p_mw
        note += f"; PV must be curtailed to {load + absorb:.3f} MW"
    return IslandingDecision(
        state=state,
        actions=tuple(
            IslandAction(order=k, action=a, device=d, reason=r)
            for k, (a, d, r) in enumerate(actions, start=1)
        ),
        served_p_mw=load,
        shed_p_mw=sum(p for d, p in reading.load_p_mw.items() if d not in served),
        pv_p_mw=pv,
        bess_p_mw=max(bess_p, -spec.bess.p_mw),
        soc_frac=reading.soc_frac,
        hold_time_h=_hold(spec, reading, served, profile),
        within_bess_power=load - pv <= spec.bess.p_mw + 1e-9,
        note=note,
    )


def _series(values: float | Sequence[float]) -> list[float]:
    if isinstance(values, int | float):
        return [float(values)]
    out = [float(v) for v in values]
    return out or [0.0]
