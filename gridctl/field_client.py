"""The controller's OPC UA client of the field contract: batched reads and writes by point,
subscriptions.

Node ids are computed from the contract and the server's namespace index (looked up once per
connection), never browsed. Reads return each value with its OPC UA status, so a stale value
(communication lost: status Bad) is never mistaken for a measurement. Writes never raise for a
refused point: each point gets its own status (``BadOutOfRange``, ``BadUserAccessDenied``, ...).

It knows the field only: it works the same against real devices (or a gateway) and the
simulator. The simulator's own handles (its clock, status and fault injection) are not here but
in :mod:`hil_sim.drill_client`, which drills, benchmarks and ``gridctl sim`` lay over a
connected client's session. This module is not part of the field floor (:mod:`gridctl.field`):
the simulator never imports it.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from asyncua import Client, Node, ua
from asyncua.common.subscription import Subscription

from gridctl.field.contract import (
    NAMESPACE_PREFIX,
    FieldContract,
    FieldInputError,
    FieldPoint,
    PointKey,
)
from gridctl.field.security import ClientSecurity, configure_client

__all__ = [
    "FieldClient",
    "FieldConnectionError",
    "FieldSubscription",
    "PointReading",
    "WriteResult",
    "status_name",
]


class FieldConnectionError(FieldInputError):
    """The endpoint cannot be reached or does not serve the expected model."""


def status_name(code: int) -> str:
    """The symbolic name of a status code value, e.g. ``BadOutOfRange``."""
    return ua.StatusCode(code).name


class _PointStatus:
    """What a read and a write of a point report alike: the point's key and its status."""

    device_id: str
    point: str
    status: int

    @property
    def key(self) -> PointKey:
        return (self.device_id, self.point)

    @property
    def good(self) -> bool:
        return ua.StatusCode(self.status).is_good()

    @property
    def status_name(self) -> str:
        return status_name(self.status)


@dataclass(frozen=True, kw_only=True)
class PointReading(_PointStatus):
    """A point's value with its status; ``value`` is ``None`` when the status is Bad."""

    device_id: str
    point: str
    value: Any
    status: int
    source_time: dt.datetime | None

    @classmethod
    def of(cls, key: PointKey, value: Any, dv: ua.DataValue) -> PointReading:
        """The reading of ``key`` from an OPC UA data value (read or notified); ``value`` is
        the variant's value, dropped when the status is not Good."""
        code = dv.StatusCode.value if dv.StatusCode is not None else 0
        good = ua.StatusCode(code).is_good()
        return cls(device_id=key[0], point=key[1], value=value if good else None, status=code,
                   source_time=dv.SourceTimestamp)


@dataclass(frozen=True, kw_only=True)
class WriteResult(_PointStatus):
    device_id: str
    point: str
    status: int


Handler = Callable[[PointReading], Awaitable[None] | None]


class FieldSubscription:
    """A live subscription to some points; ``await close()`` ends it."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    async def close(self) -> None:
        await self._subscription.delete()


class _DataChangeHandler:
    def __init__(self, keys: Mapping[ua.NodeId, PointKey], handler: Handler) -> None:
        self._keys = keys
        self._handler = handler

    async def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        key = self._keys.get(node.nodeid)
        if key is None:
            return
        result = self._handler(PointReading.of(key, val, data.monitored_item.Value))
        if inspect.isawaitable(result):
            await result

    async def status_change_notification(self, status: Any) -> None:
        pass


class FieldClient:
    """A client of one model's field devices (see the module docstring).

    ``security=None`` connects without message security and anonymously. Without a contract
    no point can be read or written: the session serves a drill client alone
    (:mod:`hil_sim.drill_client`), and the namespace is the first ``urn:gridctl:`` one the
    server has.
    """

    def __init__(
        self,
        endpoint: str,
        contract: FieldContract | None = None,
        *,
        security: ClientSecurity | None = None,
        timeout_s: float = 4.0,
        auto_reconnect: bool = False,
    ) -> None:
        if not endpoint.startswith("opc.tcp://"):
            raise FieldConnectionError(f"endpoint {endpoint!r}: expected opc.tcp://HOST:PORT",
                                       field="endpoint")
        self.endpoint = endpoint
        self._contract = contract
        self._security = security
        # asyncua's own watchdog probes the server every ``watchdog_intervall`` seconds and
        # gives up after as long: 1 s by default, which a loaded machine (or a busy simulator in
        # the same process) misses now and then; the request timeout is the right patience
        self._client = Client(endpoint, timeout=timeout_s, auto_reconnect=auto_reconnect,
                              watchdog_intervall=max(timeout_s, 1.0))
        self._ns: int | None = None
        self._node_ids: dict[PointKey, ua.NodeId] = {}

    @property
    def ua_client(self) -> Client:
        """The underlying asyncua client (for what this class does not wrap)."""
        return self._client

    async def __aenter__(self) -> FieldClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    async def connect(self) -> None:
        """Connect, open a session and look up the contract's namespace index."""
        try:
            if self._security is not None:
                await configure_client(self._client, self._security)
            await self._client.connect()
        except (OSError, TimeoutError) as exc:
            raise FieldConnectionError(f"cannot connect: {exc or type(exc).__name__}",
                                       source=self.endpoint) from None
        except ua.UaError as exc:
            code = getattr(exc, "code", None)
            reason = status_name(code) if isinstance(code, int) else str(exc)
            raise FieldConnectionError(f"the server refused the connection: {reason}",
                                       source=self.endpoint) from None
        namespaces = await self._client.get_namespace_array()
        if self._contract is None:
            ours = [n for n in namespaces if n.startswith(NAMESPACE_PREFIX)]
            wanted = ours[0] if ours else f"{NAMESPACE_PREFIX}<model>"
        else:
            wanted = self._contract.namespace_uri
        if wanted not in namespaces:
            await self._client.disconnect()
            raise FieldConnectionError(
                f"the server does not serve {wanted!r}: expected a gridctl field server"
                + (f" of model {self._contract.model_name!r}" if self._contract else ""),
                source=self.endpoint)
        self._ns = namespaces.index(wanted)
        if self._contract is not None:
            self._node_ids = {
                p.key: ua.NodeId(p.node_identifier, self._ns) for p in self._contract
            }

    @property
    def contract(self) -> FieldContract:
        if self._contract is None:
            raise RuntimeError("this client was made without a field contract")
        return self._contract

    async def disconnect(self) -> None:
        await self._client.disconnect()

    @property
    def namespace_index(self) -> int:
        if self._ns is None:
            raise RuntimeError("not connected")
        return self._ns

    def node_id(self, device_id: str, point: str) -> ua.NodeId:
        """The node id of a point (after ``connect``)."""
        try:
            return self._node_ids[(device_id, point)]
        except KeyError:
            self.contract.point(device_id, point)  # raises a KeyError that names the problem
            raise RuntimeError("not connected") from None

    def _node(self, identifier: str) -> Node:
        return self._client.get_node(ua.NodeId(identifier, self.namespace_index))

    async def read(self, points: Iterable[PointKey] | None = None) -> list[PointReading]:
        """Values and statuses of ``points`` (default: every measurement) in one request."""
        keys = [p.key for p in self.contract.measurements()] if points is None else list(points)
        node_ids = [self.node_id(*k) for k in keys]
        if not node_ids:
            return []
        values = await self._client.uaclient.read_attributes(node_ids, ua.AttributeIds.Value)
        return [PointReading.of(key, dv.Value.Value if dv.Value is not None else None, dv)
                for key, dv in zip(keys, values, strict=True)]

    async def read_values(self, points: Iterable[PointKey]) -> dict[PointKey, Any]:
        """Values by point; ``None`` where the status is not Good."""
        return {r.key: r.value if r.good else None for r in await self.read(points)}

    async def write(self, values: Mapping[PointKey, Any]) -> list[WriteResult]:
        """Write setpoints and commands in one request; one status per point, never raises for a
        refused point. Values are sent in the point's data type (ints as floats for float
        points); a value of another kind is sent as it is and refused by the server."""
        keys = list(values)
        if not keys:
            return []
        points = [self.contract.point(*k) for k in keys]
        node_ids = [self.node_id(*k) for k in keys]
        dvs = [ua.DataValue(_variant(p, values[k])) for p, k in zip(points, keys, strict=True)]
        try:
            codes = await self._client.uaclient.write_attributes(node_ids, dvs,
                                                                 ua.AttributeIds.Value)
        except ua.UaStatusCodeError as exc:
            # the whole request was refused (e.g. a viewer's session): every point gets that
            codes = [ua.StatusCode(exc.code)] * len(keys)
        return [WriteResult(device_id=k[0], point=k[1], status=c.value)
                for k, c in zip(keys, codes, strict=True)]

    async def write_values(self, values: Mapping[PointKey, Any]) -> dict[PointKey, WriteResult]:
        """As :meth:`write`, keyed by point."""
        return {r.key: r for r in await self.write(values)}

    async def subscribe(self, points: Sequence[PointKey], handler: Handler, *,
                        period_ms: float = 500.0) -> FieldSubscription:
        """Call ``handler`` with a :class:`PointReading` whenever one of ``points`` changes."""
        node_ids = {self.node_id(*k): k for k in points}
        subscription = await self._client.create_subscription(
            period_ms, _DataChangeHandler(node_ids, handler))
        await subscription.subscribe_data_change(
            [self._client.get_node(n) for n in node_ids], sampling_interval=0.0)
        return FieldSubscription(subscription)


def _variant(point: FieldPoint, value: Any) -> ua.Variant:
    dtype = point.dtype
    is_bool = isinstance(value, bool | np.bool_)
    if dtype == "bool" and is_bool:
        return ua.Variant(bool(value), ua.VariantType.Boolean)
    if dtype == "float" and not is_bool and isinstance(value, int | float | np.number):
        return ua.Variant(float(value), ua.VariantType.Double)
    if dtype == "int" and not is_bool and isinstance(value, int | np.integer):
        return ua.Variant(int(value), ua.VariantType.Int64)
    if dtype == "str" and isinstance(value, str):
        return ua.Variant(value, ua.VariantType.String)
    # sent as it is: the server refuses it with BadTypeMismatch
    return ua.Variant(bool(value) if is_bool else value)
