"""The records of microgrid islanding: the microgrid, one tick's readings, the controller's memory,
the operator's policy and the decision of a tick (see :mod:`controllers.islanding`).

Units: MW, MWh, hours; BESS power positive when discharging; loads consume (positive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from network_models.errors import InputError
from network_models.model import GridModel
from network_models.registry import Bess, EvChargingSite, Load, PvSystem


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
