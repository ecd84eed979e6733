"""The field side of self-healing: the protection points it reads, the trips they report, and
the writes of a plan with the timeline entry of each (see :mod:`gridctl.self_healing`).

A plan's switching is written as ``close_cmd`` (open = ``False``, close = ``True``), shedding as
``connect_cmd = False`` of a customer load or ``p_site_limit_kw = 0`` of an EV site, a fault
indicator's reset as ``reset_cmd = True``; a shed load or site comes back as ``connect_cmd =
True`` or its site limit at its rating.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from controllers.flisr import (
    AcCheck,
    FlisrContext,
    ProtectionReport,
    RestorationPlan,
    StepAction,
)
from gridctl.self_healing_records import PointKey, SwitchCommand, TimelineEntry
from network_models.model import GridModel
from network_models.registry import (
    DeviceRegistry,
    EvChargingSite,
    FaultIndicator,
    Load,
    SubstationTransformer,
    SwitchDevice,
    SwitchKind,
)

Write = tuple[SwitchCommand, TimelineEntry]  # a write and what the timeline says of it


def protection_points(model: GridModel) -> tuple[PointKey, ...]:
    """The points FLISR reads: breaker trips and their counters, switch positions,
    indicators, transformers."""
    keys: list[PointKey] = []
    for device in model.registry:
        if isinstance(device, SwitchDevice):
            keys.append((device.id, "closed"))
            if device.switch_kind == SwitchKind.BREAKER:
                keys.append((device.id, "tripped"))
                keys.append((device.id, "trip_count"))
        elif isinstance(device, FaultIndicator):
            keys.append((device.id, "fault_detected"))
        elif isinstance(device, SubstationTransformer):
            keys.append((device.id, "in_service"))
    return tuple(keys)


def trip_ids(report: ProtectionReport, values: Mapping[PointKey, Any]) -> set[str]:
    """Each trip reported, as ``breaker#count`` (a trip of its own), ``breaker`` where the field
    gives no counter, and ``out:<transformer>`` for a transformer out of service."""
    ids = set()
    for breaker in report.tripped_breakers:
        count = values.get((breaker, "trip_count"))
        ids.add(f"{breaker}#{int(count)}" if isinstance(count, int | float) and
                not isinstance(count, bool) and count == count else breaker)
    return ids | {f"out:{t}" for t in report.transformers_out}


def supply_command(device: Load | EvChargingSite, *, on: bool, reason: str) -> SwitchCommand:
    """The write that sheds a customer load or an EV site (``on`` False) or brings it back:
    a load's ``connect_cmd``; an EV site's ``p_site_limit_kw``, 0 or its rating (the runtime
    holds a site at 0 kW until a write that is not a shed releases it)."""
    if isinstance(device, EvChargingSite):
        point, value = "p_site_limit_kw", float(device.p_site_max_kw) if on else 0.0
    else:
        point, value = "connect_cmd", on
    return SwitchCommand(device=device.id, point=point, value=value,
                         action="restore" if on else "shed", reason=reason)


def detection_entry(now: pd.Timestamp, plan: RestorationPlan,
                    report: ProtectionReport) -> TimelineEntry:
    """The timeline entry of a plan made for a trip: where the fault is, what tripped, the
    plan's status and AC check."""
    return TimelineEntry(
        time=now, kind="detection",
        text=(f"{plan.location.kind.value} located: sections "
              f"{', '.join(plan.location.sections) or '-'}; lines "
              f"{', '.join(plan.location.lines) or '-'}; trips "
              f"{', '.join(sorted(report.tripped_breakers)) or '-'}; plan {plan.status}, "
              f"{plan.switch_operations} switching operation(s), AC check "
              f"{'ok' if plan.check.ok else 'FAILED'}"),
    )


def plan_step_write(now: pd.Timestamp, registry: DeviceRegistry, action: StepAction,
                    device: str, reason: str) -> Write:
    """The write of one step of a plan: open or close a switch, or shed a load or EV site."""
    if action is StepAction.OPEN:
        return (SwitchCommand(device=device, point="close_cmd", value=False, action="open",
                              reason=reason),
                TimelineEntry(time=now, kind="isolation", text=f"open {device}: {reason}",
                              device=device))
    if action is StepAction.CLOSE:
        return (SwitchCommand(device=device, point="close_cmd", value=True, action="close",
                              reason=reason),
                TimelineEntry(time=now, kind="restoration_step",
                              text=f"close {device}: {reason}", device=device))
    spec = registry[device]
    if not isinstance(spec, EvChargingSite | Load):
        # FLISR sheds only loads and EV sites: anything else is a planner bug
        raise ValueError(
            f"plan sheds {device}, a {spec.kind.value}: expected a customer load or an EV "
            "site"
        )
    # a load's intake opens and stays open until someone reconnects it
    verb = "curtail {} to 0 kW" if isinstance(spec, EvChargingSite) else "disconnect {}"
    return (supply_command(spec, on=False, reason=reason),
            TimelineEntry(time=now, kind="shed", text=f"{verb.format(device)}: {reason}",
                          device=device))


def reconnection_write(now: pd.Timestamp, registry: DeviceRegistry, device: str,
                       check: AcCheck) -> Write:
    """The write that brings a shed load or EV site back on, with the AC check that allows it."""
    spec = registry[device]
    why = (f"supply restored and the AC check holds (min V {check.v_min_pu:.3f} pu, max "
           f"loading {max(check.max_line_loading_pct, check.max_trafo_loading_pct):.1f} %)")
    command = supply_command(spec, on=True, reason=why)
    text = f"reconnect {device}: {why}"
    if isinstance(spec, EvChargingSite):
        text = f"reconnect {device} (site limit {spec.p_site_max_kw:g} kW): {why}"
    return command, TimelineEntry(time=now, kind="load_on", text=text, device=device)


def indicator_resets(now: pd.Timestamp, context: FlisrContext, registry: DeviceRegistry,
                     report: ProtectionReport, held_sections: set[str]) -> list[Write]:
    """Reset the indications the plan has read, but those on the sections ``held_sections``
    (isolated: the crew's record of where the fault is, and dead until repaired)."""
    kept_lines = {ln for s in context.sections if s.name in held_sections for ln in s.lines}
    kept_buses = {b for s in context.sections if s.name in held_sections for b in s.buses}
    out = []
    for fi in sorted(report.fault_indicators):
        spec = registry[fi]
        if spec.line in kept_lines or spec.bus in kept_buses:
            continue
        why = "its indication has been used to locate the fault"
        out.append((
            SwitchCommand(device=fi, point="reset_cmd", value=True, action="reset",
                          reason=why),
            TimelineEntry(time=now, kind="indicator_reset", text=f"reset {fi}: {why}",
                          device=fi),
        ))
    return out
