"""The runtime's connection to the field: one OPC UA session with its subscription.

A connection that fails (refused, timed out, not up yet) is tried again with exponential
backoff, up to ``max_backoff_s``; a refusal that needs the operator (security, user, password)
is said at once, once per reason. A lost session is closed with its subscription and the task
that answers its events, and the gap is recorded when the next one is made. The tick asks
:meth:`FieldConnection.connect` while not connected; every part of the runtime that talks to
the field takes the client from :meth:`FieldConnection.field`, which raises
``ConnectionError`` once the session is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pandas as pd

from gridctl.field.contract import FieldContract, PointKey
from gridctl.field_client import FieldClient
from gridctl.field_watch import FieldWatch
from gridctl.historian import Historian
from gridctl.runtime_config import RuntimeConfig, RuntimeStats

log = logging.getLogger("gridctl.runtime")

_FIRST_BACKOFF_S = 0.25


class FieldConnection:
    """One session to ``config.endpoint`` at a time, its subscription on ``watch_points``.

    ``follow(watch)`` answers a new session's events (run as a task, ended with the session);
    ``on_session()`` is told of every new session before its first event; ``field_time()``
    is the field time last seen (what a lost connection is recorded at)."""

    def __init__(
        self,
        config: RuntimeConfig,
        contract: FieldContract,
        *,
        security: Any,
        watch_points: Sequence[PointKey],
        historian: Historian,
        stats: RuntimeStats,
        follow: Callable[[FieldWatch], Awaitable[None]],
        on_session: Callable[[], None],
        field_time: Callable[[], pd.Timestamp | None],
    ) -> None:
        self.config = config
        self.contract = contract
        self.security = security
        self.watch_points = tuple(watch_points)
        self.historian = historian
        self.stats = stats
        self._follow = follow
        self._on_session = on_session
        self._field_time = field_time
        self.client: FieldClient | None = None
        self.watch: FieldWatch | None = None
        self.connected = False
        self._follower: asyncio.Task[None] | None = None
        self._disconnecting = False
        self._lost_at: float | None = None
        self._next_attempt = 0.0
        self._backoff = _FIRST_BACKOFF_S
        self._connect_refused = ""  # the reason the field last refused a connection, once told

    def field(self) -> FieldClient:
        """The connected client; ``ConnectionError`` when the session was lost meanwhile."""
        if self.client is None:
            raise ConnectionError("not connected to the field")
        return self.client

    def _back_off(self, wall: float) -> None:
        self._next_attempt = wall + self._backoff
        self._backoff = min(self._backoff * 2, self.config.max_backoff_s)

    async def connect(self) -> bool:
        """Connect and subscribe, unless the backoff says not yet; whether connected now."""
        wall = time.monotonic()
        if wall < self._next_attempt or self._disconnecting:
            return False
        client = FieldClient(self.config.endpoint, self.contract, security=self.security,
                             timeout_s=self.config.timeout_s)
        try:
            await client.connect()
        except Exception as exc:  # refused, timed out, not yet up: try again later
            self._back_off(wall)
            self._connect_failed(str(exc))
            return False
        try:
            self.watch = await FieldWatch.start(
                client,
                self.watch_points,
                simulator=self.config.follow_simulator_clock,
                period_ms=self.config.watch_period_ms,
            )
        except Exception as exc:
            with contextlib.suppress(Exception):
                await client.disconnect()
            self._back_off(wall)
            log.info("subscription on %s failed (%s)", self.config.endpoint, exc)
            return False
        self.client = client
        self.connected = True
        self._backoff = _FIRST_BACKOFF_S
        self._on_session()
        self._follower = asyncio.get_running_loop().create_task(
            self._follow(self.watch), name="field-events"
        )
        # the new session's field time is not known until its first image: wall time only
        if self._lost_at is not None:
            gap = wall - self._lost_at
            self.stats.reconnects += 1
            self.historian.record_event(
                None, "reconnected", endpoint=self.config.endpoint, gap_wall_s=round(gap, 3)
            )
            self._lost_at = None
        else:
            self.historian.record_event(None, "connected", endpoint=self.config.endpoint)
        return True

    def _connect_failed(self, reason: str) -> None:
        # a refusal (security, user, password) needs the operator: said at once, once per
        # reason; a field that is not up yet is tried again quietly
        refused = "refused the connection" in reason
        if refused and reason != self._connect_refused:
            log.warning("connect to %s refused: %s; trying again every %.0f s",
                        self.config.endpoint, reason, self.config.max_backoff_s)
            self.historian.record_event(None, "connect_refused", endpoint=self.config.endpoint,
                                        reason=reason)
        else:
            log.info("connect to %s failed (%s); next try in %.1f s", self.config.endpoint,
                     reason, self._backoff)
        self._connect_refused = reason if refused else ""

    async def lost(self, exc: BaseException) -> None:
        """The session is gone: close it, record it, and try again after the backoff."""
        if not self.connected:
            return  # the event task and the tick both noticed: record it once
        log.warning("connection lost: %s", exc)
        self.connected = False
        self._lost_at = time.monotonic()
        self._next_attempt = self._lost_at + self._backoff
        self.historian.record_event(  # the field time last seen
            self._field_time(), "connection_lost", error=f"{type(exc).__name__}: {exc}")
        await self.disconnect()

    async def lost_if_connection(self, exc: BaseException) -> bool:
        """Treat ``exc`` as a lost connection if it is one; False for any other error."""
        # a socket's own errors are ConnectionError; a file error (OSError) is not the field's
        if isinstance(exc, ConnectionError | TimeoutError) or is_connection_error(exc):
            await self.lost(exc)
            return True
        return False

    async def disconnect(self) -> None:
        self._disconnecting = True
        try:
            await self._close_session()
        finally:
            self._disconnecting = False

    async def _close_session(self) -> None:
        # take what belongs to this session first: a new one must not be closed with it
        follower, self._follower = self._follower, None
        watch, self.watch = self.watch, None
        client, self.client = self.client, None
        if follower is not None and follower is not asyncio.current_task():
            follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower
        if watch is not None:
            await watch.close()
        if client is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), timeout=2.0)
        self.connected = False


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (an OPC UA status or a transport error) means the session is gone."""
    from asyncua import ua

    if isinstance(exc, ua.UaStatusCodeError):
        return exc.code in (
            ua.StatusCodes.BadSessionClosed,
            ua.StatusCodes.BadSessionIdInvalid,
            ua.StatusCodes.BadConnectionClosed,
            ua.StatusCodes.BadTimeout,
            ua.StatusCodes.BadSecureChannelClosed,
            ua.StatusCodes.BadNotConnected,
        )
    name = type(exc).__name__
    return "Connection" in name or "Closed" in name or "Timeout" in name
