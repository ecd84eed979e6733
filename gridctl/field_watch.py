"""A live image of chosen field points, kept by an OPC UA subscription (report by exception).

``FieldWatch`` subscribes to some points (protection, EV connectors, ...) and, against the
simulator, to its clock and publication counter. Changes arrive in batches
(:class:`FieldUpdate`), each a consistent image: a batch holds whole publications of the
server, never half of one, so a breaker trip is never seen without the fault indicators that
the same protection operation set.

Why a batch is whole: asyncua hands a publish response to the client's queue in one go, and
the consumer here empties the queue before it looks at anything; on the server side the
simulator writes all values of one publication without yielding to the event loop, so no
publish response can fall between them. That holds for a publishing interval above zero (at
zero asyncua publishes from inside each write), hence the lower bound on ``period_ms``.

Against a real field there is no ``Simulator`` object: batches are stamped with the wall clock
and ``publish_seq`` stays ``None``. A periodic integrity read (``FieldWatch.reconcile``) puts
any value the subscription missed into the same stream, as a control system's integrity poll
does behind its event reporting.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from asyncua import ua
from asyncua.common.subscription import DataChangeEvent, StatusChangeEvent, Subscription

from gridctl.field.contract import PointKey, SimulatorNodes
from gridctl.field_client import FieldClient, PointReading

__all__ = ["MIN_PERIOD_MS", "FieldUpdate", "FieldWatch"]

MIN_PERIOD_MS = 1.0
_CLOCK = SimulatorNodes.clock("sim_time")
_SEQ = SimulatorNodes.clock("publish_seq")


@dataclass(frozen=True, kw_only=True)
class FieldUpdate:
    """Points that changed, as of ``time`` (the simulator's clock, or the wall clock).

    ``publish_seq`` is the simulator's publication counter after this batch (``None`` against a
    real field); ``first`` marks the initial image a new subscription sends of every point.
    """

    time: dt.datetime
    changed: Mapping[PointKey, PointReading]
    publish_seq: int | None = None
    first: bool = False

    def keys_of(self, points: Iterable[PointKey]) -> set[PointKey]:
        """Which of ``points`` changed in this batch."""
        return set(points) & self.changed.keys()


@dataclass
class FieldWatch:
    """A subscription to ``points`` (see the module docstring); ``await close()`` ends it."""

    client: FieldClient
    points: tuple[PointKey, ...]
    simulator: bool
    _subscription: Subscription | None = None
    _by_node: dict[ua.NodeId, PointKey] = field(default_factory=dict)
    _clock_node: ua.NodeId | None = None
    _seq_node: ua.NodeId | None = None
    _values: dict[PointKey, PointReading] = field(default_factory=dict)
    _injected: asyncio.Queue[list[PointReading]] = field(default_factory=asyncio.Queue)
    _time: dt.datetime | None = None
    _seq: int | None = None
    _held: list[tuple[bool, Any]] = field(default_factory=list)  # (is a data change, item)
    _pending: dict[PointKey, PointReading] = field(default_factory=dict)  # not yet returned
    _generation: dict[PointKey, int] = field(default_factory=dict)  # changes by subscription
    _first_sent: bool = False  # the first (whole) image has been returned
    closed_because: str | None = None

    @classmethod
    async def start(
        cls,
        client: FieldClient,
        points: Sequence[PointKey],
        *,
        simulator: bool,
        period_ms: float = 50.0,
    ) -> FieldWatch:
        """Subscribe to ``points`` (and, with ``simulator``, to its clock and counter)."""
        if not period_ms >= MIN_PERIOD_MS:
            raise ValueError(f"publishing interval {period_ms} ms: expected at least "
                             f"{MIN_PERIOD_MS} ms (see gridctl.field_watch)")
        watch = cls(client=client, points=tuple(dict.fromkeys(points)), simulator=simulator)
        ua_client = client.ua_client
        # unbounded queue: the first image alone holds every watched point
        subscription = await ua_client.create_subscription(period_ms, None, queue_maxsize=0)
        watch._subscription = subscription
        nodes = []
        for key in watch.points:
            node_id = client.node_id(*key)
            watch._by_node[node_id] = key
            nodes.append(ua_client.get_node(node_id))
        if simulator:
            ns = client.namespace_index
            watch._clock_node = ua.NodeId(_CLOCK, ns)
            watch._seq_node = ua.NodeId(_SEQ, ns)
            nodes += [ua_client.get_node(watch._clock_node), ua_client.get_node(watch._seq_node)]
        results = await subscription.subscribe_data_change(nodes, sampling_interval=0.0)
        results = results if isinstance(results, list) else [results]
        refused = [n for n, r in zip(nodes, results, strict=True) if isinstance(r, ua.StatusCode)]
        if refused:
            await subscription.delete()
            raise RuntimeError(f"the server refused to monitor {len(refused)} node(s), "
                               f"first {refused[0].nodeid.to_string()}")
        return watch

    @property
    def time(self) -> dt.datetime | None:
        """The field's time as of the last batch returned."""
        return self._time

    @property
    def publish_seq(self) -> int | None:
        return self._seq

    def value(self, key: PointKey, default: Any = None) -> Any:
        """The last good value of a watched point (``default`` when unknown or Bad)."""
        r = self._values.get(key)
        return r.value if r is not None and r.good else default

    def values(self, keys: Iterable[PointKey]) -> dict[PointKey, Any]:
        """Good values of ``keys`` (points not known or Bad are left out)."""
        out = {}
        for k in keys:
            r = self._values.get(k)
            if r is not None and r.good:
                out[k] = r.value
        return out

    def generations(self) -> dict[PointKey, int]:
        """How many times each point has changed so far (take it before an integrity read)."""
        return dict(self._generation)

    def reconcile(self, readings: Iterable[PointReading],
                  since: Mapping[PointKey, int] | None = None) -> int:
        """Feed an integrity read into the stream; returns how many values it corrects. With
        ``since`` (the generations taken before the read), a point the subscription changed
        while the read was under way is left alone: the read's value is the older one."""
        watched = set(self.points)
        wrong = [r for r in readings
                 if r.key in watched and not _same(self._values.get(r.key), r)
                 and (since is None or self._generation.get(r.key, 0) == since.get(r.key, 0))]
        if wrong:
            self._injected.put_nowait(wrong)
        return len(wrong)

    async def next(self, *, quiet_s: float = 5.0) -> FieldUpdate:
        """The next batch of changes (waits for one). After ``quiet_s`` of wall time without
        any, the server is asked for its state: a subscription does not notice a connection
        that died. Raises ``ConnectionError`` when the subscription or the session is gone."""
        if self._subscription is None:
            raise ConnectionError("the watch is closed")
        # asyncua's iterator queue (pinned in pyproject.toml): the public next_event() cannot
        # tell "nothing more queued" from "closed" without waiting, and a batch must be whole
        queue = getattr(self._subscription, "_event_queue", None)
        if not isinstance(queue, asyncio.Queue):
            raise RuntimeError("this asyncua version keeps no subscription event queue: "
                               "gridctl.field_watch needs the one it was written for")
        while True:
            await self._wait(queue, quiet_s)
            events: list[Any] = [item for is_event, item in self._held if is_event]
            injected: list[PointReading] = [
                r for is_event, item in self._held if not is_event for r in item
            ]
            self._held.clear()
            # a whole publish response sits in the queue at once: take all of it
            while not queue.empty():
                events.append(queue.get_nowait())
            while not self._injected.empty():
                injected += self._injected.get_nowait()
            update = self._apply(events, injected)
            if update is not None:
                return update

    async def _wait(self, queue: asyncio.Queue[Any], quiet_s: float) -> None:
        """Until something arrives; probe the session after every ``quiet_s`` of silence.
        What a waiter took out of a queue is held for the batch, never dropped."""
        while not self._held and queue.empty() and self._injected.empty():
            getter = asyncio.ensure_future(queue.get())
            other = asyncio.ensure_future(self._injected.get())
            try:
                done, _ = await asyncio.wait((getter, other), timeout=quiet_s,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (getter, other):
                    if not waiter.done():
                        waiter.cancel()  # a cancelled get takes nothing from its queue
            for waiter in (getter, other):
                if waiter.done() and not waiter.cancelled():
                    self._held.append((waiter is getter, waiter.result()))
            if not done:
                await self._probe()

    async def _probe(self) -> None:
        try:
            await self.client.ua_client.nodes.server_state.read_value()
        except Exception as exc:
            self.closed_because = f"{type(exc).__name__}: {exc}"
            raise ConnectionError(f"the server does not answer: {self.closed_because}") from None

    def _apply(self, events: list[Any], injected: list[PointReading]) -> FieldUpdate | None:
        changed: dict[PointKey, PointReading] = {}
        for event in events:
            if event is None:  # the subscription was deleted under us
                self.closed_because = "subscription closed"
                raise ConnectionError("the subscription was closed")
            if isinstance(event, StatusChangeEvent):
                status = event.notification.Status
                if status is not None and status.is_bad():
                    self.closed_because = status.name
                    raise ConnectionError(f"subscription status {status.name}")
                continue
            if not isinstance(event, DataChangeEvent):
                continue
            node_id = event.node.nodeid
            if node_id == self._clock_node:
                if isinstance(event.value, dt.datetime):
                    stamp = event.value
                    self._time = stamp if stamp.tzinfo is not None else stamp.replace(
                        tzinfo=dt.UTC)
                continue
            if node_id == self._seq_node:
                if isinstance(event.value, int):
                    self._seq = event.value
                continue
            key = self._by_node.get(node_id)
            if key is None:
                continue
            changed[key] = PointReading.of(key, event.value, event.data.monitored_item.Value)
        for key in changed:
            self._generation[key] = self._generation.get(key, 0) + 1
        for reading in injected:
            changed[reading.key] = reading
        for key, reading in changed.items():
            self._values[key] = reading
        # what changed before a batch could be returned is returned with it, not lost
        self._pending.update(changed)
        if not self.simulator:
            self._time = dt.datetime.now(dt.UTC)
        if self._time is None:
            return None  # against the simulator, nothing is usable before its clock is known
        first = not self._first_sent
        if first and len(self._values) < len(self.points):
            return None  # the first image comes whole, or a trip could be seen without its cause
        if not changed and not first and not events:
            return None
        self._first_sent = True
        changed, self._pending = self._pending, {}
        return FieldUpdate(time=self._time, changed=MappingProxyType(changed),
                           publish_seq=self._seq, first=first)

    async def close(self) -> None:
        if self._subscription is not None:
            subscription, self._subscription = self._subscription, None
            # the session may already be gone: then there is nothing left to delete
            with contextlib.suppress(Exception):
                await asyncio.wait_for(subscription.delete(), timeout=2.0)


def _same(known: PointReading | None, new: PointReading) -> bool:
    if known is None:
        return False
    return known.status == new.status and known.value == new.value
