"""What the session gate tells about a request: audit records of logins and refusals, the
request being served (for checks deeper in the server), and names for a channel, a peer, a user
and a service in those records."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from asyncua import ua
from asyncua.server.uaprocessor import UaProcessor

__all__ = [
    "AuditAction",
    "AuditRecord",
    "AuditSink",
    "RequestContext",
    "channel_name",
    "current_request",
    "host_of",
    "password_protected",
    "peer_of",
    "service_name",
    "serving",
    "user_name_of",
]


class AuditAction(StrEnum):
    LOGIN = "login"
    LOGIN_REFUSED = "login refused"
    SESSION_REFUSED = "session refused"
    CERTIFICATE_REFUSED = "certificate refused"
    WRITE_REFUSED = "write refused"
    CALL_REFUSED = "call refused"
    SERVICE_REFUSED = "service refused"


@dataclass(frozen=True, kw_only=True)
class AuditRecord:
    """Who did what from where, and why it was refused (or that a login passed)."""

    action: AuditAction
    user: str | None  # None: an anonymous session (or no session yet)
    peer: str  # the client's address, host:port
    channel: str  # the secure channel's policy/mode, e.g. Basic256Sha256/SignAndEncrypt
    what: str  # the service, the point(s) written or the method called
    why: str  # the status and the reason, e.g. "BadUserAccessDenied: account locked"
    status: int  # the OPC UA status code answered (Good for a login)
    session_id: ua.NodeId | None = None
    node: ua.NodeId | None = None  # the (first) node written or method called
    value: Any = None  # the value refused, or a call's arguments
    certificate: bytes | None = None  # a refused certificate (DER)

    @property
    def refused(self) -> bool:
        return self.action != AuditAction.LOGIN

    def line(self) -> str:
        """The record as one log line."""
        who = self.user if self.user is not None else "anonymous"
        return (f"{self.action} user={who} from={self.peer} channel={self.channel} "
                f"what={self.what} why={self.why}")


AuditSink = Callable[[AuditRecord], None]


@dataclass(frozen=True)
class RequestContext:
    """The client request being served: for checks deeper in the server that audit refusals."""

    peer: str
    user: str | None
    channel: str
    session_id: ua.NodeId | None


_REQUEST: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "gridctl_field_request", default=None)


@contextlib.contextmanager
def serving(request: RequestContext) -> Iterator[None]:
    """The request this task serves while the block runs (see :func:`current_request`)."""
    token = _REQUEST.set(request)
    try:
        yield
    finally:
        _REQUEST.reset(token)


def current_request() -> RequestContext | None:
    """The client request this task is serving (None for the server's own writes)."""
    return _REQUEST.get()


def channel_name(policy_uri: str, mode: ua.MessageSecurityMode) -> str:
    """A secure channel's policy and mode in a few words: ``Basic256Sha256/Sign``, ``None``."""
    policy = policy_uri.rsplit("#", 1)[-1] or "None"
    if mode == ua.MessageSecurityMode.None_ or policy == "None":
        return "None"
    return f"{policy}/{mode.name}"


def password_protected(mode: ua.MessageSecurityMode, token_encrypted: bool) -> bool:
    """True if a password sent this way can be read by nobody but the server and opens a
    session nobody else can use: on a SignAndEncrypt channel, or encrypted for the server on a
    Sign channel (a None channel protects neither the password nor the session)."""
    if mode == ua.MessageSecurityMode.SignAndEncrypt:
        return True
    return mode == ua.MessageSecurityMode.Sign and token_encrypted


def peer_of(processor: UaProcessor) -> str:
    """The client's address as host:port (an IPv6 host in brackets)."""
    name = processor.name
    if isinstance(name, tuple) and len(name) >= 2:
        host, port = name[0], name[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(name)


def host_of(processor: UaProcessor) -> str:
    """The client's host, without the port."""
    name = processor.name
    return str(name[0]) if isinstance(name, tuple) and name else str(name)


def user_name_of(session: Any) -> str | None:
    """The user of a session (None: anonymous, or no session)."""
    user = getattr(session, "user", None)
    return getattr(user, "name", None)


def service_name(typeid: ua.NodeId) -> str:
    """A request's service in a word: ``Write``, ``Call``, ``CreateSession``."""
    name = ua.ObjectIdNames.get(typeid.Identifier, str(typeid)) if typeid.NamespaceIndex == 0 \
        else str(typeid)
    return name.removesuffix("_Encoding_DefaultBinary").removesuffix("Request")
