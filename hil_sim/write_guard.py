"""The guard every client write to the simulated field passes before anything is stored.

Only operators may write; a read point is ``BadNotWritable``; a value of the wrong variant type
``BadTypeMismatch``; outside the point's limits (registry ``min_value``/``max_value``, NaN)
``BadOutOfRange``; to a device that does not answer ``BadNoCommunication``. A refused write
changes nothing; each point of a batch is judged on its own, and each refusal is audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.address_space import AddressSpace, AttributeService

from gridctl.field.contract import FieldPoint, PointKey
from gridctl.field.server_security import is_internal
from gridctl.field.session_audit import AuditAction, AuditRecord, RequestContext
from hil_sim.setpoints import WriteCheck

__all__ = ["GuardedAttributeService", "refused_write_record", "write_refusal"]

_REFUSAL = {
    WriteCheck.UNKNOWN_POINT: ua.StatusCodes.BadNodeIdUnknown,
    WriteCheck.NOT_WRITABLE: ua.StatusCodes.BadNotWritable,
    WriteCheck.TYPE_MISMATCH: ua.StatusCodes.BadTypeMismatch,
    WriteCheck.OUT_OF_RANGE: ua.StatusCodes.BadOutOfRange,
    WriteCheck.NO_COMMUNICATION: ua.StatusCodes.BadNoCommunication,
}
_EXPECTED_VARIANT = {
    "float": (ua.VariantType.Double,),
    "bool": (ua.VariantType.Boolean,),
    "int": (ua.VariantType.Int64, ua.VariantType.Int32, ua.VariantType.Int16),
    "str": (ua.VariantType.String,),
}
_WRITE_REFUSALS = {
    ua.StatusCodes.BadUserAccessDenied: "only an operator may write",
    ua.StatusCodes.BadNotWritable: "a measurement, not a setpoint",
    ua.StatusCodes.BadTypeMismatch: "a value of the wrong type",
    ua.StatusCodes.BadOutOfRange: "outside the point's limits",
    ua.StatusCodes.BadNoCommunication: "the device does not answer",
    ua.StatusCodes.BadNodeIdUnknown: "no such node",
}



def write_refusal(
    point: FieldPoint,
    item: ua.WriteValue,
    *,
    operator: bool,
    check: Callable[[PointKey, Any], WriteCheck],
) -> int | None:
    """None: a write of ``item`` to the field point ``point`` passes; otherwise the status code
    that refuses it. ``check`` is the field's own verdict on the value (the simulator's)."""
    if not operator:
        return ua.StatusCodes.BadUserAccessDenied
    if not point.writable:
        return ua.StatusCodes.BadNotWritable
    value_variant = item.Value.Value if item.Value is not None else None
    if value_variant is None or value_variant.VariantType not in _EXPECTED_VARIANT[
            point.dtype]:
        return ua.StatusCodes.BadTypeMismatch
    verdict = check(point.key, value_variant.Value)
    return None if verdict == WriteCheck.OK else _REFUSAL[verdict]


def refused_write_record(
    item: ua.WriteValue, code: int, request: RequestContext, *, what: str
) -> AuditRecord:
    """The audit record of a client's write refused with ``code`` (``what``: the point)."""
    value = item.Value.Value.Value if item.Value is not None and item.Value.Value else None
    return AuditRecord(
        action=AuditAction.WRITE_REFUSED, user=request.user, peer=request.peer,
        channel=request.channel, what=what,
        why=f"{ua.StatusCode(code).name}: {_WRITE_REFUSALS.get(code, 'refused')} "
        f"(value {value!r})",
        status=code, session_id=request.session_id, node=item.NodeId, value=value)


class GuardedAttributeService(AttributeService):
    """asyncua's attribute service with a per-item check before any write is stored.

    asyncua has no write hook that can refuse one item of a batch with a status code (a value
    setter's result is ignored), so the service is subclassed: refused items get their status,
    the rest go to asyncua as usual and, when stored, to the simulator.
    """

    def __init__(self, aspace: AddressSpace,
                 judge: Callable[[ua.WriteValue, User], int | None],
                 applied: Callable[[ua.WriteValue], None],
                 refused: Callable[[ua.WriteValue, int], None]) -> None:
        super().__init__(aspace)
        self._judge = judge
        self._applied = applied
        self._refused = refused

    async def write(self, params: ua.WriteParameters,
                    user: User = User(role=UserRole.Admin)) -> list[ua.StatusCode]:  # noqa: B008
        if is_internal(user):
            return await super().write(params, user)
        items = list(params.NodesToWrite)
        results: list[ua.StatusCode | None] = [None] * len(items)
        passed = []
        for i, item in enumerate(items):
            code = self._judge(item, user)
            if code is None:
                passed.append(i)
            else:
                results[i] = ua.StatusCode(code)
                self._refused(item, code)
        if passed:
            forwarded = await super().write(
                ua.WriteParameters(NodesToWrite=[items[i] for i in passed]), user)
            for i, status in zip(passed, forwarded, strict=True):
                results[i] = status
                if status.is_good():
                    self._applied(items[i])
                else:
                    self._refused(items[i], status.value)
        return [r if r is not None else ua.StatusCode(ua.StatusCodes.BadInternalError)
                for r in results]
