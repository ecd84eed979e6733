"""Where the session gate (:mod:`gridctl.field.session_gate`) plugs into asyncua: the request
processor of every connection, replaced once per process by :class:`GatedUaProcessor`, and the
user manager that accepts a user name only as the gate judged it (a context variable carries
the verdict into asyncua's synchronous ``get_user``). The asyncua internals this relies on are
listed in :mod:`gridctl.field.session_gate`.
"""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server import binary_server_asyncio
from asyncua.server.internal_server import InternalServer
from asyncua.server.uaprocessor import UaProcessor

__all__ = ["Gate", "GateUserManager", "GatedUaProcessor", "install_gate", "judged_as"]


class Gate(Protocol):
    """What asyncua's processor needs of a gate: its check of a request and its user manager."""

    user_manager: GateUserManager

    async def process(self, processor: UaProcessor, handle: Callable[..., Awaitable[bool]],
                      typeid: ua.NodeId, requesthdr: ua.RequestHeader, seqhdr: Any,
                      body: Any) -> bool: ...


_VERDICT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "gridctl_field_login_verdict", default=None)


@contextlib.contextmanager
def judged_as(verdict: str | None) -> Iterator[None]:
    """The gate's verdict on this request's login (the user name it accepts) while the block
    runs: what :class:`GateUserManager` lets asyncua's session activation see."""
    token = _VERDICT.set(verdict)
    try:
        yield
    finally:
        _VERDICT.reset(token)


class GateUserManager:
    """asyncua's user manager behind the gate: a user name is accepted only as the gate's
    verdict for this request says; the password itself is never checked here."""

    def __init__(self, anonymous_allowed: bool) -> None:
        self._anonymous_allowed = anonymous_allowed

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None,
                 certificate: Any = None) -> User | None:
        # only anonymous and user-name tokens are offered, so no user name means anonymous
        if username is None:
            return User(role=UserRole.User, name=None) if self._anonymous_allowed else None
        verdict = _VERDICT.get()
        if verdict is None or verdict != username:
            return None  # not judged by the gate: refused
        return User(role=UserRole.User, name=verdict)


class GatedUaProcessor(UaProcessor):
    """asyncua's request processor with the gate of its server in front (if it has one)."""

    async def _process_message(self, typeid: Any, requesthdr: Any, seqhdr: Any,
                               body: Any) -> bool:
        gate = _GATES.get(self.iserver)
        if gate is None:
            return await super()._process_message(typeid, requesthdr, seqhdr, body)
        return await gate.process(self, super()._process_message, typeid, requesthdr, seqhdr,
                                  body)


_GATES: weakref.WeakKeyDictionary[InternalServer, Gate] = weakref.WeakKeyDictionary()


def install_gate(server: Server, gate: Gate) -> None:
    """Put ``gate`` in front of every connection of ``server``; call before ``start()``."""
    current = binary_server_asyncio.UaProcessor
    if current is not GatedUaProcessor:
        if current is not UaProcessor:
            raise RuntimeError(f"asyncua's request processor was replaced by {current!r}: "
                               "the session gate cannot be installed")
        binary_server_asyncio.UaProcessor = GatedUaProcessor  # type: ignore[misc]
    _GATES[server.iserver] = gate
    server.iserver.set_user_manager(gate.user_manager)  # type: ignore[arg-type]
