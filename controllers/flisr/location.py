"""Fault location: the faulted section from protection trips and fault indicators.

The inverse of the forward rule (:mod:`controllers.flisr.response`): every section the tripped
breaker supplied before the trip is a candidate, and the one whose expected indicator response
matches the report (fewest disagreeing indicators) is the faulted one. A backbone cable is
located by its differential protection (breakers at both ends), a transformer by its breaker or
its ``in_service`` point.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandapower as pp

from controllers.flisr.context import FlisrContext
from controllers.flisr.records import FaultKind, FaultLocation, FaultZone, ProtectionReport
from controllers.flisr.response import (
    FaultPoint,
    SupplyTree,
    bus_index_of,
    fault_response,
    indicators_by_end,
    line_index_of,
)
from network_models.errors import InputError
from network_models.registry import SwitchRole
from network_models.topology import Section

__all__ = ["locate", "zones_location"]


def locate(
    ctx: FlisrContext, report: ProtectionReport, state: np.ndarray, work: pp.pandapowerNet
) -> tuple[list[FaultZone], list[int]]:
    """The faulted zones of ``report`` (``state``: switch states after the trip).

    ``work`` is a study copy of the net; its switch states are changed. Returns the zones and the
    tripped breakers that located nothing (not to be re-closed).
    """
    tripped = [_position(ctx, d, "tripped_breakers") for d in sorted(report.tripped_breakers)]
    zones: list[FaultZone] = []
    unlocated: list[int] = []
    backbone: dict[int, list[int]] = {}
    trafos: dict[str, list[int]] = {}
    feeder: list[int] = []
    for k in tripped:
        role = ctx.role(k)
        if role == SwitchRole.BACKBONE_BREAKER and ctx.switch_et[k] == "l":
            backbone.setdefault(int(ctx.switch_element[k]), []).append(k)
        elif role == SwitchRole.TRANSFORMER_BREAKER and ctx.switch_et[k] == "t":
            trafos.setdefault(ctx.trafo_names[int(ctx.switch_element[k])], []).append(k)
        else:
            feeder.append(k)
    for device_id in sorted(report.transformers_out):
        name = _transformer_name(ctx, device_id)
        trafos.setdefault(name, [])

    for line, breakers in sorted(backbone.items()):
        section = ctx.section_of_line[ctx.line_names[line]]
        zones.append(_section_zone(ctx, FaultKind.BACKBONE_CABLE, (section,), tuple(breakers)))
    if trafos:
        zones.append(_trafo_zone(ctx, trafos))
    if feeder:
        pre = state.copy()
        pre[tripped] = True  # as it was when the fault struck
        work.switch["closed"] = pre
        tree = SupplyTree.of(ctx.adjacency_of(work, pre), ctx.sources)
        indicators_at = indicators_by_end(ctx)
        for k in feeder:
            zone = _locate_below(ctx, report, pre, work, tree, k, indicators_at)
            if zone is None:
                unlocated.append(k)
            else:
                zones.append(zone)
    return zones, unlocated


def _locate_below(
    ctx: FlisrContext,
    report: ProtectionReport,
    pre: np.ndarray,
    work: pp.pandapowerNet,
    tree: SupplyTree,
    breaker: int,
    indicators_at: Mapping[tuple[int, int], tuple[str, ...]],
) -> FaultZone | None:
    """Among the sections ``breaker`` supplied, the one the indicators point at."""
    candidates = _sections_below(ctx, pre, work, tree, breaker)
    if not candidates:
        return None
    area_lines = {ln for s in candidates for ln in s.lines}
    relevant = {fi for fi, line, _ in ctx.indicators if ctx.line_names[line] in area_lines}
    reported = set(report.fault_indicators) & relevant
    scored = []
    for section in candidates:
        trips, seeing = fault_response(ctx, pre, tree, _section_point(ctx, section), indicators_at)
        if breaker not in trips:
            continue  # a fault there would have tripped another breaker first
        judged = relevant - _internal_indicators(ctx, section)
        mismatch = (reported ^ set(seeing)) & judged
        scored.append((len(mismatch), section, seeing, mismatch))
    if not scored:
        return None
    best = min(s[0] for s in scored)
    chosen = [s for s in scored if s[0] == best]
    seen_near_fault = [fi for fi in chosen[0][2] if fi in reported]
    boundary = {
        fi
        for fi, line, bus in ctx.indicators
        for s in (c[1] for c in chosen)
        if ctx.line_names[line] in s.lines or ctx.bus_names[bus] in s.buses
    }
    note = ""
    if len(chosen) > 1:
        note = "the indicators cannot tell these sections apart: all are isolated"
    return _section_zone(
        ctx,
        FaultKind.FEEDER_SECTION,
        tuple(c[1] for c in chosen),
        (breaker,),
        last_indicator_with_fault=seen_near_fault[0] if seen_near_fault else None,
        first_indicators_without_fault=tuple(sorted(boundary - set(report.fault_indicators))),
        indicator_mismatches=tuple(sorted(set().union(*(c[3] for c in chosen)))),
        note=note,
    )


def _sections_below(
    ctx: FlisrContext, pre: np.ndarray, work: pp.pandapowerNet, tree: SupplyTree, breaker: int
) -> list[Section]:
    """Sections energised through ``breaker`` before the trip (buses, or charged cables)."""
    opened = pre.copy()
    opened[breaker] = False
    work.switch["closed"] = opened
    without = ctx.energised_in(work, opened)  # what SupplyTree.of(...).reached would be
    work.switch["closed"] = pre
    below = tree.reached - without
    found: dict[str, Section] = {}
    for bus in sorted(below):
        section = ctx.section_of_bus.get(ctx.bus_names[bus])
        if section is not None:
            found.setdefault(section.name, section)
    lines = [
        line
        for line, ends in ctx.line_ends.items()
        for end in ends
        if end in below and all(pre[k] for k in ctx.switches_at.get(("l", line, end), ()))
    ]
    if ctx.switch_et[breaker] == "l":
        lines.append(int(ctx.switch_element[breaker]))
    for line in lines:
        section = ctx.section_of_line.get(ctx.line_names[line])
        if section is not None:
            found.setdefault(section.name, section)
    return list(found.values())


def _section_point(ctx: FlisrContext, section: Section) -> FaultPoint:
    if section.buses:
        return ("bus", bus_index_of(ctx, section.buses[0]))
    return ("line", line_index_of(ctx, section.lines[0]))


def _internal_indicators(ctx: FlisrContext, section: Section) -> set[str]:
    """Indicators inside a section (on its line, at an end without a switch): their answer
    depends on where in the section the fault is."""
    return {
        fi
        for fi, line, bus in ctx.indicators
        if ctx.line_names[line] in section.lines and not ctx.switches_at.get(("l", line, bus))
    }


def _section_zone(
    ctx: FlisrContext,
    kind: FaultKind,
    chosen: tuple[Section, ...],
    tripped: tuple[int, ...],
    **details: object,
) -> FaultZone:
    counts: dict[int, int] = {}
    for section in chosen:
        for k in ctx.positions_of(section.bounding_switches):
            counts[k] = counts.get(k, 0) + 1
    return FaultZone(
        kind=kind,
        sections=chosen,
        tripped=tripped,
        bounding=tuple(sorted(counts)),
        isolating=tuple(sorted(k for k, n in counts.items() if n == 1)),
        **details,  # type: ignore[arg-type]
    )


def _trafo_zone(ctx: FlisrContext, trafos: Mapping[str, list[int]]) -> FaultZone:
    names = tuple(sorted(trafos))
    bounding = sorted(
        k
        for name in names
        for (et, element, _), positions in ctx.switches_at.items()
        if et == "t" and element == ctx.trafo_index[name]
        for k in positions
    )
    lost_whole = [
        s.name
        for s in ctx.model.substations
        if s.transformers and set(s.transformers) <= set(names)
    ]
    return FaultZone(
        kind=FaultKind.SUBSTATION if lost_whole else FaultKind.SUBSTATION_TRANSFORMER,
        trafos=names,
        tripped=tuple(k for name in names for k in trafos[name]),
        bounding=tuple(bounding),
        isolating=tuple(bounding),
        note=f"substation {', '.join(lost_whole)} lost" if lost_whole else "",
    )


def zones_location(ctx: FlisrContext, zones: list[FaultZone]) -> FaultLocation:
    """One location record for all zones."""
    if not zones:
        return FaultLocation(kind=FaultKind.NOT_LOCATED)
    sections = [s for z in zones for s in z.sections]
    notes = [z.note for z in zones if z.note]
    first = zones[0]
    return FaultLocation(
        kind=first.kind,
        sections=tuple(s.name for s in sections),
        lines=tuple(ln for s in sections for ln in s.lines),
        buses=tuple(b for s in sections for b in s.buses),
        trafos=tuple(
            t for z in zones for t in (*z.trafos, *(t for s in z.sections for t in s.trafos))
        ),
        tripped_breakers=tuple(ctx.switch_id(k) for z in zones for k in z.tripped),
        last_indicator_with_fault=first.last_indicator_with_fault,
        first_indicators_without_fault=tuple(
            fi for z in zones for fi in z.first_indicators_without_fault
        ),
        indicator_mismatches=tuple(fi for z in zones for fi in z.indicator_mismatches),
        bounding_switches=tuple(ctx.switch_id(k) for z in zones for k in z.bounding),
        note="; ".join(notes),
    )


# ---------------------------------------------------------------------------------------------
# lookups


def _position(ctx: FlisrContext, device_id: str, field_name: str) -> int:
    if device_id not in ctx.device_position:
        raise InputError(
            f"no switch {device_id!r} in model {ctx.model.name!r}: expected a breaker id",
            source="ProtectionReport",
            element=device_id,
            field=field_name,
        )
    return ctx.device_position[device_id]


def _transformer_name(ctx: FlisrContext, device_id: str) -> str:
    registry = ctx.model.registry
    if device_id not in registry or registry[device_id].kind.value != "substation_transformer":
        raise InputError(
            f"no substation transformer {device_id!r} in model {ctx.model.name!r}",
            source="ProtectionReport",
            element=device_id,
            field="transformers_out",
        )
    return str(ctx.net.trafo.at[registry[device_id].element.index, "name"])
