"""The runtime's answer to the field's events, as they come by subscription.

Each batch of changes (:class:`~gridctl.field_watch.FieldUpdate`) is the field as of one
instant: sessions that appeared get their arrival time, sessions that ended have their final
energy recorded, every responder one of whose points changed is asked
(:mod:`gridctl.responders`: the microgrid supervisors first, then FLISR), and the sites where a
vehicle plugged in or left are split again. ``field_seq`` is then the publication answered (what
a drill waits for). An integrity read behind the subscription answers what it missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pandas as pd

from gridctl.field.contract import PointKey
from gridctl.field_client import PointReading
from gridctl.field_watch import FieldUpdate, FieldWatch
from gridctl.historian import Historian
from gridctl.responders import EvResplit, MicrogridResponder, Responder, answer
from gridctl.runtime_config import RuntimeStats
from gridctl.runtime_connection import FieldConnection
from gridctl.runtime_ev import EvSessionReader, good_values, measured_at
from gridctl.runtime_writes import FieldWriter
from network_models.registry import EvChargingSite

log = logging.getLogger("gridctl.runtime")


class FieldEvents:
    """Answers one session's subscription after another (see the module docstring)."""

    def __init__(
        self, *, timezone: str, connection: FieldConnection, sessions: EvSessionReader,
        supervisors: Sequence[MicrogridResponder], responders: Sequence[Responder],
        ev: EvResplit, session_end_points: Sequence[PointKey], writer: FieldWriter,
        historian: Historian, stats: RuntimeStats,
    ) -> None:
        self.timezone = timezone
        self.connection = connection
        self.sessions = sessions
        self.supervisors = tuple(supervisors)
        self.responders = tuple(responders)
        self.ev = ev
        self.session_end_points = tuple(session_end_points)
        self.writer = writer
        self.historian = historian
        self.stats = stats
        self.field_seq: int | None = None  # last simulator publication fully answered

    async def follow(self, watch: FieldWatch) -> None:
        """Answer the field's events as they come, until the session ends."""
        while True:
            try:
                update = await watch.next()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the subscription is gone: so is the session
                await self.connection.lost(exc)
                return
            try:
                await self.on_update(update)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if await self.connection.lost_if_connection(exc):
                    return
                # one event that could not be answered must not stop the answering of the next
                log.exception("answering the field's events at %s failed", update.time)
                self.historian.record_event(
                    pd.Timestamp(update.time).tz_convert(self.timezone),
                    "event_handling_failed",
                    error=f"{type(exc).__name__}: {exc}",
                )
                self.field_seq = update.publish_seq if update.publish_seq is not None else 0

    async def on_update(self, update: FieldUpdate) -> None:
        now = pd.Timestamp(update.time).tz_convert(self.timezone)
        changed_sites = set()
        for device, point in update.keys_of(self.ev.points):
            changed_sites.add(device)
            sid = update.changed[(device, point)].value
            if sid:  # plugged in now (or known since the first image)
                self.sessions.arrived(str(sid), now)
        watch = self.connection.watch
        assert watch is not None
        self.sessions.record_ends(now, update.keys_of(self.session_end_points), watch.value)
        for responder in self.responders:
            if update.first or update.keys_of(responder.points):
                await self.answer(responder, now)
        if changed_sites and not update.first:
            await self.resplit_sites(now, sorted(changed_sites))
        self.field_seq = update.publish_seq if update.publish_seq is not None else 0

    async def answer(self, responder: Responder, now: pd.Timestamp) -> None:
        """Ask a responder with its points' values as the subscription has them now."""
        watch = self.connection.watch
        assert watch is not None
        await answer(responder, now, lambda: watch.values(responder.points), self.writer,
                     self.historian)

    async def supervise(self, now: pd.Timestamp) -> None:
        """Let the microgrid supervisors look again (a reconnection delay runs out with
        nothing changing, and a real field reports by exception)."""
        for supervisor in self.supervisors:
            await self.answer(supervisor, now)

    async def resplit_sites(self, now: pd.Timestamp, site_ids: list[str]) -> None:
        """Split the power of sites where a vehicle plugged in or left, for the rest of the step."""
        if self.connection.client is None:
            return
        keys = self.ev.reads(now, site_ids)
        if not keys:
            return
        values = good_values(await self.connection.field().read(keys))
        await answer(self.ev, now, lambda: values, self.writer, self.historian)

    async def after_step(self, now: pd.Timestamp, step_start: pd.Timestamp,
                         readings: list[PointReading], *, late_after_s: float) -> None:
        """After a control step's setpoints went out: a vehicle that plugged in or left while
        the plan was being made has its site split again; a plan that lands late (the field
        ran on while it was made, as in fast simulation) is split again at every site, from
        the energies as they are now."""
        late = now - measured_at(readings, step_start) >= pd.Timedelta(seconds=late_after_s)
        sites = (
            [s.id for s in self.ev.model.registry.of_type(EvChargingSite)]
            if late
            else self.sites_changed_since(readings)
        )
        if sites:
            await self.resplit_sites(now, sites)

    def sites_changed_since(self, readings: list[PointReading]) -> list[str]:
        """Sites whose connectors' sessions differ now (subscription) from ``readings``."""
        watch = self.connection.watch
        if watch is None:
            return []
        by_key = {r.key: r.value for r in readings}
        return sorted({key[0] for key in self.ev.points
                       if (by_key.get(key) or "") != (watch.value(key) or "")})

    async def check_integrity(self, now: pd.Timestamp) -> None:
        """Read the watched points once, behind the subscription (one batched read)."""
        watch = self.connection.watch
        if watch is None:
            return
        since = watch.generations()
        missed = watch.reconcile(
            await self.connection.field().read(self.connection.watch_points), since)
        if missed:
            self.stats.missed_by_subscription += missed
            self.historian.record_event(now, "subscription_missed", values=missed)
