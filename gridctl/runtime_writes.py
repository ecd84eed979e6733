"""The runtime's writes to the field: batches of setpoints, ordered switching sequences, and
the EV sites held at 0 kW.

One writer at a time (``lock``): a switching sequence is not interleaved with setpoint batches.
Every batch is recorded in the historian with its reason, a refused point also as an event.
``last_setpoints`` are what the heartbeat sends again; a curtailment is among them. An EV site
shed by FLISR or a microgrid supervisor is held at 0 kW (``held``) until whoever shed it
releases it, through later control steps and across a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import pandas as pd

from gridctl.field.contract import PointKey
from gridctl.field_client import FieldClient, WriteResult
from gridctl.historian import Historian
from gridctl.runtime_config import RuntimeStats
from gridctl.self_healing import SwitchCommand

log = logging.getLogger("gridctl.runtime")


class CloseGuard(Protocol):
    """What may refuse a close just before it is written (FLISR: never close onto a fault)."""

    points: tuple[PointKey, ...]

    def close_refusal(self, now: pd.Timestamp, command: SwitchCommand,
                      values: Mapping[PointKey, Any],
                      before: Sequence[SwitchCommand]) -> str | None: ...

    def confirm(self, now: pd.Timestamp, command: SwitchCommand) -> None: ...


class FieldWriter:
    """Writes to the field through ``field()`` (the connected client) and records them."""

    def __init__(self, field: Callable[[], FieldClient], historian: Historian,
                 stats: RuntimeStats) -> None:
        self.field = field
        self.historian = historian
        self.stats = stats
        self.lock = asyncio.Lock()
        self.last_setpoints: dict[PointKey, Any] = {}
        self.curtailed: dict[str, str] = {}  # EV site -> who holds it at 0 kW

    def resume(self) -> None:
        """The curtailments an earlier run left in force (from the historian's events)."""
        for event in self.historian.events("curtailed"):
            if event["by"]:
                self.curtailed[event["site"]] = event["by"]
            else:
                self.curtailed.pop(event["site"], None)

    def held(self) -> set[str]:
        """EV sites held at 0 kW now, by FLISR or a microgrid supervisor: every curtailment
        goes through :meth:`write_sequence`, which records it here (and in the historian)."""
        return set(self.curtailed)

    async def write(
        self, now: pd.Timestamp, values: Mapping[PointKey, Any], *, reason: str
    ) -> list[WriteResult]:
        """One batch; the caller holds ``lock``."""
        if not values:
            return []
        results = await self.field().write(values)
        bad = [r for r in results if not r.good]
        self.stats.write_errors += len(bad)
        # every batch counted; a heartbeat's points stored only where refused
        self.historian.record_commands(
            now, [(r.device_id, r.point, values[r.key], r.status_name) for r in results],
            reason=reason)
        if bad:
            self.historian.record_event(
                now,
                "write_refused",
                reason=reason,
                points=[f"{r.device_id}.{r.point}" for r in bad][:20],
            )
        return results

    async def write_sequence(
        self, now: pd.Timestamp, commands: Sequence[SwitchCommand], *, reason: str,
        holder: str, guard: CloseGuard | None = None,
    ) -> str:
        """Write ``commands`` one after another, in their order, and stop at the first the field
        refuses (the next step may rely on it: never close a tie onto an isolation that did not
        happen). With ``guard``, the protection points are read again before every close and
        the guard may refuse it (never close onto a fault). An indicator reset the field
        refuses is recorded and does not stop the sequence. An EV site shed by ``holder`` is
        held at 0 kW before its write goes out, so no other write in between can lift it.
        Returns "done", "refused" (by the field) or "unsafe" (by the guard)."""
        async with self.lock:
            for k, command in enumerate(commands):
                if guard is not None and command.action == "close":
                    values = {r.key: r.value for r in await self.field().read(guard.points)
                              if r.good}
                    why = await asyncio.to_thread(guard.close_refusal, now, command, values,
                                                  commands[:k])
                    if why is not None:
                        self._aborted(now, reason, commands[k:], refused=command,
                                      status="refused by FLISR's check", why=why)
                        return "unsafe"
                if command.point == "p_site_limit_kw":
                    self._curtail(now, command.device, holder if command.action == "shed" else "")
                    self._keep_in_heartbeat(command.device, float(command.value))
                results = await self.write(now, {command.key: command.value}, reason=reason)
                if results and not results[0].good:
                    if command.action == "reset":
                        continue  # a stale indication is a risk the guard covers; go on
                    self._aborted(now, reason, commands[k:], refused=command,
                                  status=results[0].status_name)
                    return "refused"
                if guard is not None:
                    guard.confirm(now, command)
        return "done"

    def _aborted(self, now: pd.Timestamp, reason: str, rest: Sequence[SwitchCommand], *,
                 refused: SwitchCommand, status: str, why: str = "") -> None:
        self.historian.record_event(
            now, f"{reason}_aborted", refused=f"{refused.device}.{refused.point}",
            status=status, why=why, not_sent=[f"{c.action} {c.device}" for c in rest[1:]],
        )
        log.error("%s: %s.%s refused (%s%s), %d command(s) not sent", reason, refused.device,
                  refused.point, status, f": {why}" if why else "", len(rest) - 1)

    def _curtail(self, now: pd.Timestamp, site_id: str, by: str) -> None:
        """Hold an EV site at 0 kW for ``by`` (empty: release it), surviving a restart."""
        if by:
            self.curtailed[site_id] = by
        else:
            self.curtailed.pop(site_id, None)
        self.historian.record_event(now, "curtailed", site=site_id, by=by)

    def _keep_in_heartbeat(self, site_id: str, limit_kw: float) -> None:
        """The heartbeat re-sends the last setpoints: a curtailment must be among them."""
        if (site_id, "p_site_limit_kw") in self.last_setpoints or limit_kw == 0.0:
            self.last_setpoints[(site_id, "p_site_limit_kw")] = limit_kw
