"""The simulated field as an OPC UA server: the field contract over the simulator's physics.

- Every tick the readings that changed are published (source timestamp: simulated time); the
  points of a device whose communication is lost read ``BadNoCommunication``; a stuck device
  keeps its frozen values with a Good status.
- Writes from clients pass a guard (:mod:`hil_sim.write_guard`) before anything is stored:
  only operators may write; a read point is ``BadNotWritable``; a value of the wrong type
  ``BadTypeMismatch``; outside the point's limits (registry ``min_value``/``max_value``, NaN)
  ``BadOutOfRange``; to a device that does not answer ``BadNoCommunication``. A refused write
  changes nothing; each point of a batch is judged on its own.
- The clock runs at ``speed`` simulated seconds per wall second (0: as fast as possible), or,
  in step mode, only when ``Step(n)`` is called (or :meth:`SimServer.step` in process).
- Fault injection is a set of methods of the ``Simulator`` object; a refusal returns
  ``BadInvalidArgument`` and the reason in ``Simulator.Status.last_message``.
- Security (:mod:`gridctl.field.security`): no session on a channel weaker than configured,
  passwords only where the channel protects them, failed logins slowed down and locked out.
  Every login, refused login, refused write and refused call is audited
  (:mod:`hil_sim.audit`): a line of the ``hil_sim.audit`` log and an OPC UA audit event.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import socket
from collections.abc import Callable
from typing import Any

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User

from gridctl.field.contract import PointKey, SimulatorNodes
from gridctl.field.security_modes import SecurityMode
from gridctl.field.server_security import RoleOf, ServerSecurity, configure_server
from gridctl.field.session_audit import AuditAction, AuditRecord, current_request
from gridctl.field.users import AnonymousPolicy, Role
from hil_sim.address_space import FieldAddressSpace, build_address_space, variant
from hil_sim.audit import FieldAudit
from hil_sim.config import SimConfig
from hil_sim.errors import SimulatorInputError
from hil_sim.simulator import Simulator
from hil_sim.standard_space import init_server
from hil_sim.write_guard import GuardedAttributeService, refused_write_record, write_refusal
from network_models.model import GridModel

__all__ = ["SimServer"]

_log = logging.getLogger(__name__)

_MAX_STEP = 100_000
class SimServer:
    """An asyncua server playing the field of ``model`` (see the module docstring).

    ``port=0`` picks a free port (see :attr:`endpoint` after :meth:`start`). ``security=None``
    offers only an unsecured endpoint with read-only anonymous access and no users.
    """

    def __init__(
        self,
        model: GridModel,
        *,
        host: str = "127.0.0.1",
        port: int = 4840,
        speed: float = 60.0,
        step_mode: bool = False,
        start: object = None,
        config: SimConfig | None = None,
        security: ServerSecurity | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        if speed < 0 or not math.isfinite(speed):
            raise SimulatorInputError(f"speed {speed}: expected 0 (as fast as possible) or a "
                                      "positive factor of real time", field="speed")
        if not 0 <= port <= 65535:
            raise SimulatorInputError(f"port {port}: expected 0 to 65535", field="port")
        self.simulator = Simulator(model, start=start, config=config)
        self.host = host
        self.speed = float(speed)
        self.step_mode = step_mode
        self._requested_port = port
        self._security = security or ServerSecurity(
            modes=(SecurityMode.NONE,), anonymous=AnonymousPolicy.VIEWER)
        self._on_event = on_event
        self._audit = FieldAudit()
        self._server: Server | None = None
        self._space: FieldAddressSpace | None = None
        self._role_of: RoleOf | None = None
        self._lock = asyncio.Lock()
        self._clock_task: asyncio.Task[None] | None = None
        self._published: dict[PointKey, Any] = {}
        self._targets: dict[PointKey, tuple[ua.NodeId, str]] = {}  # point -> node, data type
        self._stale: set[str] = set()
        self._last_message = ""
        self._events_seen = 0
        self.publish_seq = 0  # publications of the field's values so far (see SimulatorNodes)
        self.port: int | None = None

    # --- life cycle ----------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not started")
        return f"opc.tcp://{self.host}:{self.port}"

    @property
    def security(self) -> ServerSecurity:
        return self._security

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Build the address space, open the endpoint and start the clock (unless step mode)."""
        server = Server()
        await init_server(server)  # the standard address space: copied after the first
        server.set_server_name(f"gridctl field simulator ({self.simulator.model.name})")
        server.set_endpoint(f"opc.tcp://{self.host}:{self._requested_port}")
        application_uri = f"urn:{socket.gethostname()}:gridctl-sim:{self.simulator.model.name}"
        self._role_of = await configure_server(
            server, self._security, application_uri=application_uri,
            audit=self._audit.record, name_of_node=self._name_of_node)
        handlers = {m.name: self._method_handler(m.name) for m in SimulatorNodes.METHODS}
        sim = self.simulator
        self._space = await build_address_space(
            server, sim.contract, {**sim.readings, **self._setpoints()}, handlers)
        self._targets = {key: (node, self._space.point_of_node[node].dtype)
                         for key, node in self._space.point_nodes.items()}
        server.iserver.attribute_service = GuardedAttributeService(
            server.iserver.aspace, self._judge, self._applied, self._refused_write)
        self._server = server
        await self._publish()
        await server.start()
        await self._audit.start(server, server_uri=application_uri)
        self.port = int(server.bserver.port) if server.bserver is not None else None
        if not self.step_mode:
            self._clock_task = asyncio.create_task(self._run_clock(), name="sim-clock")

    async def stop(self) -> None:
        if self._clock_task is not None:
            self._clock_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._clock_task
            self._clock_task = None
        if self._server is not None:
            # asyncua's stop waits for its server-time task to wake from its 1 s sleep; that
            # task only refreshes ServerStatus.CurrentTime, so it is cancelled first (asyncua
            # pinned in pyproject.toml)
            iserver = self._server.iserver
            time_task = getattr(iserver, "time_task", None)
            if time_task is not None:
                time_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await time_task
                iserver.time_task = None
            await self._server.stop()
            self._server = None
        await self._audit.stop()

    async def serve_forever(self) -> None:
        """Run until cancelled (Ctrl-C in the command line)."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    def _setpoints(self) -> dict[PointKey, Any]:
        sim = self.simulator
        return {p.key: sim.setpoint(*p.key) for p in sim.contract.setpoints()}

    # --- time ----------------------------------------------------------------------------------

    async def step(self, ticks: int = 1) -> int:
        """Advance ``ticks`` ticks and publish; only in step mode. Returns the tick count."""
        if not self.step_mode:
            raise SimulatorInputError("the clock is running: Step works only in step mode "
                                      "(start the simulator with --step-mode)", field="ticks")
        if not 1 <= ticks <= _MAX_STEP:
            raise SimulatorInputError(f"{ticks} ticks: expected 1 to {_MAX_STEP}",
                                      field="ticks")
        async with self._lock:
            for _ in range(ticks):
                self.simulator.step(1)
                await asyncio.sleep(0)  # let other sessions be served between ticks
            await self._publish()
        return self.simulator.tick

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        period = self.simulator.config.tick_s / self.speed if self.speed > 0 else 0.0
        due = loop.time()
        while True:
            if period > 0:
                due += period
                delay = due - loop.time()
                if delay < -10 * period:
                    due = loop.time()  # far behind (slow physics): do not race to catch up
                await asyncio.sleep(max(delay, 0.0))
            else:
                await asyncio.sleep(0)
            async with self._lock:
                try:
                    self.simulator.step(1)
                    failed = False
                except Exception:  # the field keeps running: log, pause, go on
                    _log.exception("simulator tick %d failed", self.simulator.tick)
                    failed = True
                if not failed:
                    await self._publish()
            if failed:
                await asyncio.sleep(1.0)

    # --- publishing ----------------------------------------------------------------------------

    async def _publish(self) -> None:
        server, space, sim = self._server, self._space, self.simulator
        if server is None or space is None:
            return
        stamp = sim.time.tz_convert("UTC").to_pydatetime()
        now = dt.datetime.now(dt.UTC)
        lost = sim.faults.comm_lost
        published, write = self._published, server.write_attribute_value
        targets = self._targets
        # thousands of points a tick, most of them unchanged: the loop is kept lean
        for key, value in sim.readings.items():
            node, dtype = targets[key]
            if lost and key[0] in lost:
                if key in published or key[0] not in self._stale:
                    await write(node, ua.DataValue(
                        StatusCode=ua.StatusCode(ua.StatusCodes.BadNoCommunication),
                        ServerTimestamp=now))
                    published.pop(key, None)
                continue
            old = published.get(key, _UNPUBLISHED)
            if (old == value and type(old) is type(value)) or _both_nan(old, value):
                continue
            await write(node, ua.DataValue(
                variant(dtype, value), SourceTimestamp=stamp, ServerTimestamp=now))
            published[key] = value
        self._stale = set(lost)
        self.publish_seq += 1
        await self._publish_simulator(stamp)
        self._report_events()

    async def _publish_simulator(self, stamp: dt.datetime) -> None:
        sim, status = self.simulator, self.simulator.status
        values: dict[str, Any] = {
            SimulatorNodes.clock("sim_time"): stamp,
            SimulatorNodes.clock("sim_time_iso"): sim.time.isoformat(),
            SimulatorNodes.clock("tick"): sim.tick,
            SimulatorNodes.clock("tick_s"): sim.config.tick_s,
            SimulatorNodes.clock("speed"): self.speed,
            SimulatorNodes.clock("step_mode"): self.step_mode,
            SimulatorNodes.clock("publish_seq"): self.publish_seq,
            SimulatorNodes.status("model"): sim.model.name,
            SimulatorNodes.status("converged"): status.converged,
            SimulatorNodes.status("import_mw"): status.import_mw,
            SimulatorNodes.status("losses_mw"): status.losses_mw,
            SimulatorNodes.status("active_faults"): list(status.active_faults),
            SimulatorNodes.status("fallback_devices"): list(status.fallback_devices),
            SimulatorNodes.status("unsupplied_loads"): list(status.unsupplied_loads),
            SimulatorNodes.status("recent_events"): sim.recent_events(),
            SimulatorNodes.status("last_message"): self._last_message,
        }
        values.update({SimulatorNodes.network(k): v for k, v in sim.network_view().items()})
        assert self._server is not None and self._space is not None
        for identifier, value in values.items():
            node, dtype = self._space.sim_nodes[identifier]
            await self._server.write_attribute_value(node, ua.DataValue(
                variant(dtype, value), SourceTimestamp=stamp))

    def _report_events(self) -> None:
        count = self.simulator.event_count
        new, self._events_seen = count - self._events_seen, count
        if self._on_event is None or new <= 0:
            return
        for t, text in list(self.simulator.events)[-new:]:
            self._on_event(f"{t.isoformat()} {text}")

    # --- writes --------------------------------------------------------------------------------

    def _judge(self, item: ua.WriteValue, user: User) -> int | None:
        """None: let the write through; otherwise the status code that refuses it."""
        assert self._space is not None and self._role_of is not None
        point = self._space.point_of_node.get(item.NodeId)
        if point is None or item.AttributeId != ua.AttributeIds.Value:
            return None  # not a field point: asyncua's own access checks apply
        return write_refusal(point, item, operator=self._role_of(user) == Role.OPERATOR,
                             check=self.simulator.check_write)

    def _refused_write(self, item: ua.WriteValue, code: int) -> None:
        request = current_request()
        if request is None:
            return  # the server's own write
        self._audit.record(refused_write_record(item, code, request,
                                                what=self._name_of_node(item.NodeId)))

    def _name_of_node(self, node: ua.NodeId) -> str:
        """A node as the operator knows it: ``device.point``, ``Simulator.FaultLine``."""
        space = self._space
        point = space.point_of_node.get(node) if space is not None else None
        if point is not None:
            return f"{point.key[0]}.{point.key[1]}"
        if (space is not None and node.NamespaceIndex == space.namespace_index
                and isinstance(node.Identifier, str)):
            return node.Identifier
        return node.to_string()

    def _applied(self, item: ua.WriteValue) -> None:
        assert self._space is not None
        point = self._space.point_of_node.get(item.NodeId)
        if point is not None and item.Value is not None and item.Value.Value is not None:
            self.simulator.write(point.key, item.Value.Value.Value)

    # --- methods -------------------------------------------------------------------------------

    def _method_handler(self, name: str) -> Callable[..., Any]:
        async def handler(parent: ua.NodeId, *args: ua.Variant) -> Any:
            values = [a.Value for a in args]
            try:
                result = await self._call(name, values)
            except SimulatorInputError as exc:
                self._last_message = f"{name}: {exc}"
                self._refused_call(name, values, str(exc))
                await self._publish()
                return ua.StatusCode(ua.StatusCodes.BadInvalidArgument)
            self._last_message = f"{name}: {result}"
            await self._publish()
            if name == "Step":
                return [ua.Variant(int(result), ua.VariantType.Int64)]
            return [ua.Variant(str(result), ua.VariantType.String)]

        return handler

    def _refused_call(self, name: str, values: list[Any], reason: str) -> None:
        request = current_request()
        if request is None:
            return
        space = self._space
        node = (ua.NodeId(SimulatorNodes.method(name), space.namespace_index)
                if space is not None else None)
        self._audit.record(AuditRecord(
            action=AuditAction.CALL_REFUSED, user=request.user, peer=request.peer,
            channel=request.channel, what=SimulatorNodes.method(name),
            why=f"BadInvalidArgument: {reason}", status=ua.StatusCodes.BadInvalidArgument,
            session_id=request.session_id, node=node, value=values))

    async def _call(self, name: str, values: list[Any]) -> Any:
        sim = self.simulator
        if name == "Step":
            return await self.step(int(values[0]) if values else 1)
        if name == "ClearAll":
            async with self._lock:
                return sim.clear_all()
        if len(values) != 1 or not isinstance(values[0], str):
            raise SimulatorInputError(f"{name} takes one text argument", field="arguments")
        action = {
            "FaultLine": sim.fault_line, "LoseTransformer": sim.lose_transformer,
            "LoseSubstation": sim.lose_substation, "LoseComm": sim.lose_comm,
            "TripDevice": sim.trip_device, "StickMeter": sim.stick_meter,
            "ClearFault": sim.clear_fault,
        }[name]
        async with self._lock:
            return action(values[0])


_UNPUBLISHED = object()


def _both_nan(a: Any, b: Any) -> bool:
    return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
