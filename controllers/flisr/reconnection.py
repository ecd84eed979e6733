"""Reconnection of shed loads: how many of them the present switch state carries again.

See :func:`controllers.flisr.plan_reconnection`. The loads still shed whose bus is supplied in
the present switch state are ordered the reverse of shedding (critical loads first, then
priority 1, 2, ..., more customers first, EV sites last). Every head of that order is solved in
one AC batch on :class:`~controllers.flisr.ac.StudyNet` (the study FLISR plans with), and the
longest head whose every step holds the limits is reconnected. Every step, not only the last:
the reconnections reach the field one write after another, so each state on the way must hold.
The first load that does not fit stops the reconnection, so a less important load never comes
back while a more important one stays off. Violations present before any reconnection
(elsewhere) may stay, no worse, as in restoration.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from controllers.flisr.ac import AcStep, StudyNet, acceptable
from controllers.flisr.context import FlisrContext
from controllers.flisr.records import (
    AcCheck,
    LoadInfo,
    OperatingValues,
    ProtectionReport,
    Reconnection,
)
from network_models.ac_checks import AcLimits
from network_models.errors import InputError

__all__ = ["reconnect"]


def reconnect(
    ctx: FlisrContext,
    report: ProtectionReport,
    shed: Sequence[str],
    operating: OperatingValues,
    limits: AcLimits,
    start: float,
) -> Reconnection:
    """The reconnection of ``shed`` in the switch state of ``report`` (see the module docstring)."""
    infos = _shed_loads(ctx, shed)
    state = ctx.state_from(report.switch_closed)
    study = StudyNet(ctx, operating, limits)
    registry = ctx.model.registry
    study.set_trafos_out(int(registry[t].element.index) for t in sorted(report.transformers_out))
    live = study.energised(state)
    candidates = sorted((i for i in infos if i.bus in live), key=LoadInfo.shed_rank, reverse=True)
    off = frozenset(i.position for i in infos)
    heads = [off - {i.position for i in candidates[:n]} for n in range(len(candidates) + 1)]
    # with nothing supplied there is nothing to decide: no power flow
    solved = study.solve(state, heads) if candidates else []
    n = 0
    baseline = solved[0].violations if solved else ()
    while n < len(candidates) and acceptable(solved[n + 1], baseline):
        n += 1
    return Reconnection(
        model=ctx.model.name,
        candidates=tuple(i.device for i in candidates),
        reconnected=tuple(i.device for i in candidates[:n]),
        kept_off=tuple(i.device for i in candidates[n:]),
        unsupplied=tuple(i.device for i in infos if i.bus not in live),
        checks=tuple(_check(step, solved[0], limits) for step in solved),
        solve_time_s=time.perf_counter() - start,
    )


def _shed_loads(ctx: FlisrContext, shed: Sequence[str]) -> list[LoadInfo]:
    by_device = {i.device: i for i in ctx.loads}
    for device in shed:
        if device not in by_device:
            raise InputError(
                f"no customer load or EV site {device!r} in model {ctx.model.name!r}: only "
                "they are shed",
                source="argument",
                element=device,
                field="shed",
            )
    return [by_device[d] for d in dict.fromkeys(shed)]


def _check(step: AcStep, baseline: AcStep, limits: AcLimits) -> AcCheck:
    # a violation already there before any reconnection is reported as pre-existing
    before = {(v.kind, v.element) for v in baseline.violations}
    return step.as_check([v for v in step.violations if (v.kind, v.element) in before], limits)
