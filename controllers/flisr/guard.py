"""The last check before FLISR closes a switch: never onto a fault.

A plan is made from the protection points of one moment; its closes go out after that. Before
each close the runtime reads the points again, and :func:`close_refusal` says why the close
must not happen (or None):

- it would energise a section isolated for a fault that is still in force (not repaired);
- a fault passage indicator in the part it would energise has shown fault current since the
  switch opened (the fault is in that part, or a new one is: fault current can only reach a
  dead part from another side, so it saw a fault there).

What a close energises is worked out from the topology of the present switch states and the
transformers out of service (the buses newly joined to a source and the cables newly live,
including a cable charged from one end only).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from controllers.flisr.context import FlisrContext
from controllers.flisr.records import ProtectionReport
from network_models.errors import InputError
from network_models.topology import energised_buses

__all__ = ["LivePart", "close_refusal", "energised_by_closing", "live_part"]


@dataclass(frozen=True)
class LivePart:
    """What has supply: buses and cables (net indices)."""

    buses: frozenset[int]
    lines: frozenset[int]


def live_part(
    ctx: FlisrContext, state: np.ndarray, transformers_out: Iterable[str] = ()
) -> LivePart:
    """Buses and cables with supply in switch state ``state`` (positions in ``net.switch``),
    with the substation transformers ``transformers_out`` (device ids) out of service."""
    net = ctx.reset_study_net()
    net.switch["closed"] = state
    registry = ctx.model.registry
    for device_id in transformers_out:
        net.trafo.at[registry[device_id].element.index, "in_service"] = False
    buses = frozenset(energised_buses(net))
    lines = frozenset(
        line
        for line, ends in ctx.line_ends.items()
        if bool(net.line.at[line, "in_service"])
        and any(end in buses and all(state[k] for k in ctx.switches_at.get(("l", line, end), ()))
                for end in ends)
    )
    return LivePart(buses=buses, lines=lines)


def energised_by_closing(ctx: FlisrContext, report: ProtectionReport, switch: str) -> LivePart:
    """What closing ``switch`` would newly energise, from the switch states of ``report``."""
    if switch not in ctx.device_position:
        raise InputError(f"no switch {switch!r} in model {ctx.model.name!r}",
                         source="argument", element=switch, field="switch")
    state = ctx.state_from(report.switch_closed)
    before = live_part(ctx, state, report.transformers_out)
    state[ctx.device_position[switch]] = True
    after = live_part(ctx, state, report.transformers_out)
    return LivePart(buses=after.buses - before.buses, lines=after.lines - before.lines)


def close_refusal(
    ctx: FlisrContext,
    report: ProtectionReport,
    switch: str,
    *,
    isolated: Collection[str] = (),
    indicated_since_open: Collection[str] = (),
) -> str | None:
    """Why ``switch`` must not be closed now (None: it may be).

    ``report``: the protection points read just now; ``isolated``: sections isolated for
    faults still in force; ``indicated_since_open``: indicators whose fault indication came
    up after ``switch`` opened.
    """
    part = energised_by_closing(ctx, report, switch)
    bus_names = {ctx.bus_names[b] for b in part.buses}
    line_names = {ctx.line_names[ln] for ln in part.lines}
    for section in ctx.sections:
        if section.name in isolated and (set(section.buses) & bus_names
                                         or set(section.lines) & line_names):
            return (f"closing {switch} would energise section {section.name}, isolated for a "
                    "fault that is not repaired")
    seen = sorted(
        fi for fi, line, bus in ctx.indicators
        if fi in indicated_since_open and (line in part.lines or bus in part.buses)
    )
    if seen:
        return (f"{', '.join(seen)} showed fault current after {switch} opened: the part it "
                "would energise holds a fault")
    return None
