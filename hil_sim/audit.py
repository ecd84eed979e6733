"""The simulator's audit trail: every login, refused login, refused write and refused call as one
line of the ``hil_sim.audit`` log and as an OPC UA audit event of the Server object.

The event types are the standard Audit* ones (OPC UA Part 5 §6.4): AuditActivateSessionEventType
for logins, AuditSessionEventType for sessions refused on a channel weaker than configured,
AuditCertificateUntrustedEventType / AuditCertificateInvalidEventType for refused certificates,
AuditWriteUpdateEventType for refused writes, AuditUpdateMethodEventType for refused calls and
AuditSecurityEventType for other refused services. ``Status`` is False for a refusal,
``ClientUserId`` names the user ("anonymous" when there is none), ``SourceName`` what was refused
and ``Message`` is the log line (with the client's address, which no Audit field carries).
An operator's client subscribed to the Server object's events (of AuditEventType and its
subtypes) sees them; events are sent in order from one task, so a flood of refusals never
delays the requests themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from typing import Any

from asyncua import Server, ua

from gridctl.field.session_audit import AuditAction, AuditRecord

__all__ = ["AUDIT_LOGGER", "FieldAudit"]

AUDIT_LOGGER = "hil_sim.audit"
_log = logging.getLogger(AUDIT_LOGGER)

_Ids = ua.ObjectIds
_EVENT_TYPES = (
    _Ids.AuditActivateSessionEventType, _Ids.AuditSessionEventType,
    _Ids.AuditCertificateUntrustedEventType, _Ids.AuditCertificateInvalidEventType,
    _Ids.AuditWriteUpdateEventType, _Ids.AuditUpdateMethodEventType, _Ids.AuditSecurityEventType,
)
_QUEUED_AT_MOST = 10_000  # records waiting for their event; beyond, events (not lines) are dropped


def _event_type(record: AuditRecord) -> int:
    action = record.action
    if action in (AuditAction.LOGIN, AuditAction.LOGIN_REFUSED):
        return _Ids.AuditActivateSessionEventType
    if action == AuditAction.SESSION_REFUSED:
        return _Ids.AuditSessionEventType
    if action == AuditAction.CERTIFICATE_REFUSED:
        return (_Ids.AuditCertificateUntrustedEventType
                if record.status == ua.StatusCodes.BadCertificateUntrusted
                else _Ids.AuditCertificateInvalidEventType)
    if action == AuditAction.WRITE_REFUSED:
        return _Ids.AuditWriteUpdateEventType
    if action == AuditAction.CALL_REFUSED:
        return _Ids.AuditUpdateMethodEventType
    return _Ids.AuditSecurityEventType


class FieldAudit:
    """The audit sink of one simulator (:meth:`record` is the session gate's ``audit``)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[AuditRecord] | None = None
        self._task: asyncio.Task[None] | None = None
        self._generators: dict[int, Any] = {}
        self._server_uri = ""
        self.dropped_events = 0

    def record(self, record: AuditRecord) -> None:
        """Log ``record`` now and send its event soon."""
        _log.log(logging.WARNING if record.refused else logging.INFO, "%s", record.line())
        if self._queue is None:
            return
        if self._queue.qsize() >= _QUEUED_AT_MOST:
            self.dropped_events += 1  # the line above is the record; the event is a copy
            return
        self._queue.put_nowait(record)

    async def start(self, server: Server, *, server_uri: str) -> None:
        """Make the event generators (the address space must exist) and start sending."""
        self._server_uri = server_uri
        for type_id in _EVENT_TYPES:
            generator = await server.get_event_generator(type_id, ua.ObjectIds.Server)
            # asyncua types these fields by their data type node (UtcTime, ...), not as a
            # variant type, so they are typed here
            generator.event.data_types["ActionTimeStamp"] = ua.VariantType.DateTime
            self._generators[type_id] = generator
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._send_events(), name="sim-audit-events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._queue = None

    async def _send_events(self) -> None:
        assert self._queue is not None
        while True:
            record = await self._queue.get()
            try:
                await self._send(record)
            except Exception:  # an event that cannot be built must not end the audit trail
                _log.exception("audit event for %r could not be sent", record.line())

    async def _send(self, record: AuditRecord) -> None:
        type_id = _event_type(record)
        generator = self._generators[type_id]
        event = generator.event
        now = dt.datetime.now(dt.UTC)
        event.ActionTimeStamp = now
        event.Status = not record.refused
        event.ServerId = self._server_uri
        event.ClientUserId = record.user if record.user is not None else "anonymous"
        event.Severity = 700 if record.refused else 100
        event.SourceNode = record.node if record.node is not None else ua.NodeId(
            ua.ObjectIds.Server)
        event.SourceName = record.what
        if hasattr(event, "StatusCodeId"):
            event.StatusCodeId = ua.StatusCode(record.status)
        if hasattr(event, "SessionId"):
            event.SessionId = record.session_id
        if type_id == _Ids.AuditWriteUpdateEventType:
            event.AttributeId = ua.AttributeIds.Value
            event.NewValue = _variant(record.value)
        elif type_id == _Ids.AuditUpdateMethodEventType:
            event.MethodId = record.node
            event.InputArguments = _variant(record.value)
        elif hasattr(event, "Certificate"):
            event.Certificate = record.certificate
        await generator.trigger(time_attr=now, message=record.line())


def _variant(value: Any) -> ua.Variant:
    try:
        return ua.Variant(value)
    except Exception:  # a value asyncua cannot type: its text is what the audit can keep
        return ua.Variant(repr(value))
