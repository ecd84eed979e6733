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

The records (spec, reading, state, policy, decision) are in :mod:`controllers.islanding_records`,
the hold time in :mod:`controllers.islanding_hold`; this module re-exports them.
"""

from __future__ import annotations

import math

from controllers.islanding_hold import hold_time_h, served_hold_h, served_load_p_mw
from controllers.islanding_records import (
    IslandAction,
    IslandActionKind,
    IslandingDecision,
    IslandingPolicy,
    IslandProfile,
    MicrogridMode,
    MicrogridReading,
    MicrogridSpec,
    MicrogridState,
)
from network_models.errors import InputError

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

_Actions = list[tuple[IslandActionKind, str, str]]  # (action, device, reason), in order


def islanding_step(
    spec: MicrogridSpec,
    state: MicrogridState,
    reading: MicrogridReading,
    *,
    policy: IslandingPolicy | None = None,
    profile: IslandProfile | None = None,
) -> IslandingDecision:
    """The decision of one tick (see the module docstring): by the mode the microgrid is in and
    whether its upstream supply is there."""
    policy = policy or IslandingPolicy()
    _check(spec, reading)
    if state.mode is MicrogridMode.GRID_CONNECTED:
        if reading.upstream_energised:
            return _step_grid_connected(spec, state, reading, profile)
        return _step_islanding(spec, reading, policy, profile)
    if reading.upstream_energised:
        since = state.supply_back_since or reading.time
        waited = (
            math.inf
            if reading.time is None or since is None
            else (reading.time - since).total_seconds()
        )
        if waited >= policy.reconnect_delay_s:
            return _step_reconnecting(spec, state, reading, profile)
        state = MicrogridState(mode=state.mode, shed=state.shed, supply_back_since=since)
    else:
        state = MicrogridState(mode=state.mode, shed=state.shed)
    return _step_islanded(spec, state, reading, policy, profile)


def _step_grid_connected(
    spec: MicrogridSpec,
    state: MicrogridState,
    reading: MicrogridReading,
    profile: IslandProfile | None,
) -> IslandingDecision:
    """Grid-connected with the supply there: every load served, nothing to do."""
    served = frozenset(ld.device for ld in spec.loads)
    return _decision(spec, state, reading, served, [], profile, "grid-connected")


def _step_islanding(
    spec: MicrogridSpec,
    reading: MicrogridReading,
    policy: IslandingPolicy,
    profile: IslandProfile | None,
) -> IslandingDecision:
    """Grid-connected, upstream supply lost: open the breaker, shed what the BESS cannot carry,
    the BESS forms the grid."""
    actions: _Actions = []
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


def _step_reconnecting(
    spec: MicrogridSpec,
    state: MicrogridState,
    reading: MicrogridReading,
    profile: IslandProfile | None,
) -> IslandingDecision:
    """Islanded, supply back for long enough: close the breaker, the BESS follows the grid
    again, the shed loads come back (last shed first)."""
    actions: _Actions = [
        (
            IslandActionKind.CLOSE_BREAKER,
            spec.breaker,
            "supply back and synchronising check passed (upstream energised)",
        ),
        (
            IslandActionKind.FOLLOW_GRID,
            spec.bess.id,
            "grid-connected again: BESS follows the grid",
        ),
    ]
    actions += [
        (IslandActionKind.RESTORE_LOAD, d, "reconnected to the grid")
        for d in reversed(_ordered(spec, state.shed))
    ]
    new = MicrogridState(mode=MicrogridMode.GRID_CONNECTED)
    served = frozenset(ld.device for ld in spec.loads)
    return _decision(spec, new, reading, served, actions, profile, "reconnected")


def _step_islanded(
    spec: MicrogridSpec,
    state: MicrogridState,
    reading: MicrogridReading,
    policy: IslandingPolicy,
    profile: IslandProfile | None,
) -> IslandingDecision:
    """Islanded (the supply away, or not back for long enough): shed more as the battery
    drains, restore shed loads when PV or SoC allows it with margin."""
    actions: _Actions = []
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


def _fits(
    spec: MicrogridSpec,
    reading: MicrogridReading,
    served: frozenset[str],
    policy: IslandingPolicy,
    profile: IslandProfile | None,
    margin: float,
) -> tuple[bool, bool]:
    """(within the BESS's power, lasting the target hold time), each with ``margin``."""
    deficit = served_load_p_mw(reading, served) - sum(reading.pv_p_mw.values())
    power_ok = deficit <= spec.bess.p_mw * (1.0 - margin)
    hold_h = served_hold_h(spec, reading, served, profile)
    energy_ok = hold_h >= policy.target_hold_h * (1.0 + margin)
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
    actions: _Actions,
    profile: IslandProfile | None,
    note: str,
) -> IslandingDecision:
    load = served_load_p_mw(reading, served)
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
        hold_time_h=served_hold_h(spec, reading, served, profile),
        within_bess_power=load - pv <= spec.bess.p_mw + 1e-9,
        note=note,
    )
