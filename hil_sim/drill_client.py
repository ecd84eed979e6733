"""The simulator's handles over OPC UA: its clock, status and network views, and its methods
(stepping, fault injection). Drills, benchmarks, tests and ``gridctl sim`` use them.

A real field has no ``Simulator`` object, so the controller's client
(:class:`gridctl.field_client.FieldClient`) knows nothing of these: a :class:`DrillClient` is
laid over a session that is already connected (any object with the asyncua client, the
namespace index and the endpoint, as a ``FieldClient`` has them), so one session can both play
the controller and drive the simulator. Node ids come from the field floor
(:class:`gridctl.field.contract.SimulatorNodes`), the same definition the server serves.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from asyncua import Client, Node, ua
from asyncua.common.subscription import Subscription

from gridctl.field.contract import FieldInputError, SimulatorNodes

__all__ = ["ClockSubscription", "DrillClient", "OpcUaSession", "SimulatorCallError",
           "SimulatorClock"]

_VARIANT = {
    "float": ua.VariantType.Double,
    "bool": ua.VariantType.Boolean,
    "int": ua.VariantType.Int64,
    "str": ua.VariantType.String,
}


class SimulatorCallError(FieldInputError):
    """The simulator refused a method call; the message says why."""


class OpcUaSession(Protocol):
    """A connected OPC UA session of the field contract (a ``FieldClient`` is one)."""

    endpoint: str

    @property
    def ua_client(self) -> Client: ...

    @property
    def namespace_index(self) -> int: ...


@dataclass(frozen=True, kw_only=True)
class SimulatorClock:
    """The simulator's clock: ``sim_time`` is timezone-aware (UTC as sent; convert as needed)."""

    sim_time: dt.datetime
    sim_time_iso: str
    tick: int
    tick_s: float
    speed: float
    step_mode: bool


class ClockSubscription:
    """A live subscription to the simulator's clock; ``await close()`` ends it."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    async def close(self) -> None:
        await self._subscription.delete()


class DrillClient:
    """The simulator's clock, status, network views and methods over ``session`` (see the
    module docstring); nothing is sent until a method is awaited."""

    def __init__(self, session: OpcUaSession) -> None:
        self.session = session

    def _node(self, identifier: str) -> Node:
        client = self.session.ua_client
        return client.get_node(ua.NodeId(identifier, self.session.namespace_index))

    async def _read(self, identifiers: list[str]) -> list[Any]:
        return await self.session.ua_client.read_values([self._node(i) for i in identifiers])

    async def subscribe_clock(self, handler: Callable[[dt.datetime], Awaitable[None] | None],
                              *, period_ms: float = 100.0) -> ClockSubscription:
        """Call ``handler`` with the simulated time (timezone-aware, UTC) at every tick, so that
        jobs can follow the simulator's clock instead of the wall clock."""

        class _Clock:
            async def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
                if isinstance(val, dt.datetime):
                    stamp = val if val.tzinfo is not None else val.replace(tzinfo=dt.UTC)
                    result = handler(stamp)
                    if inspect.isawaitable(result):
                        await result

            async def status_change_notification(self, status: Any) -> None:
                pass

        subscription = await self.session.ua_client.create_subscription(period_ms, _Clock())
        await subscription.subscribe_data_change(self._node(SimulatorNodes.clock("sim_time")),
                                                 sampling_interval=0.0)
        return ClockSubscription(subscription)

    async def time(self) -> dt.datetime:
        """The simulator's time alone (timezone-aware): one node, for a loop that polls it."""
        (sim_time,) = await self._read([SimulatorNodes.clock("sim_time")])
        return sim_time if sim_time.tzinfo is not None else sim_time.replace(tzinfo=dt.UTC)

    async def clock(self) -> SimulatorClock:
        """The simulator's clock."""
        names = [name for name, _ in SimulatorNodes.CLOCK_VARIABLES]
        values = dict(zip(names, await self._read([SimulatorNodes.clock(n) for n in names]),
                          strict=True))
        sim_time = values["sim_time"]
        if sim_time.tzinfo is None:
            sim_time = sim_time.replace(tzinfo=dt.UTC)
        return SimulatorClock(sim_time=sim_time, sim_time_iso=values["sim_time_iso"],
                              tick=int(values["tick"]), tick_s=float(values["tick_s"]),
                              speed=float(values["speed"]), step_mode=bool(values["step_mode"]))

    async def status(self) -> dict[str, Any]:
        """The simulator's status variables by name."""
        names = [name for name, _ in SimulatorNodes.STATUS_VARIABLES]
        return dict(zip(names, await self._read([SimulatorNodes.status(n) for n in names]),
                        strict=True))

    async def network(self) -> dict[str, list[Any]]:
        """Bus voltages and line/transformer loadings as the simulator computed them."""
        names = [name for name, _ in SimulatorNodes.NETWORK_VARIABLES]
        return dict(zip(names, await self._read([SimulatorNodes.network(n) for n in names]),
                        strict=True))

    async def call(self, method: str, *args: Any) -> Any:
        """Call a ``Simulator`` method; a refusal raises :class:`SimulatorCallError` with the
        simulator's reason."""
        spec = next((m for m in SimulatorNodes.METHODS if m.name == method), None)
        if spec is None:
            known = ", ".join(m.name for m in SimulatorNodes.METHODS)
            raise SimulatorCallError(f"unknown simulator method {method!r}: expected one of "
                                     f"{known}", field="method")
        variants = [ua.Variant(_as_dtype(v, dtype), _VARIANT[dtype])
                    for v, (_, dtype) in zip(args, spec.inputs, strict=True)]
        ns = self.session.namespace_index
        request = ua.CallMethodRequest(
            ObjectId=ua.NodeId(SimulatorNodes.OBJECT, ns),
            MethodId=ua.NodeId(SimulatorNodes.method(method), ns),
            InputArguments=variants)
        try:
            result = (await self.session.ua_client.uaclient.call([request]))[0]
        except ua.UaStatusCodeError as exc:
            raise SimulatorCallError(f"{method} refused ({ua.StatusCode(exc.code).name}): only an "
                                     "operator may call the simulator's methods",
                                     source=self.session.endpoint) from None
        if not result.StatusCode.is_good():
            (reason,) = await self._read([SimulatorNodes.status("last_message")])
            raise SimulatorCallError(f"{method} refused ({result.StatusCode.name}): {reason}",
                                     source=self.session.endpoint)
        outputs = [v.Value for v in result.OutputArguments or []]
        return outputs[0] if len(outputs) == 1 else outputs


def _as_dtype(value: Any, dtype: str) -> Any:
    return {"float": float, "int": int, "bool": bool, "str": str}[dtype](value)
