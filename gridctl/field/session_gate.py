"""The field server's session gate: what a secure channel and a login must be before a session
is activated or a service passes, and an audit record of every login and refusal.

asyncua lets any client open a secure channel with the None policy (its discovery needs one) and
does not check that a session's channel matches the endpoints the server offers, so a client
that opens a None channel by hand could log in with a password sent in clear and write on a
server configured for SignAndEncrypt. The gate sits where every request of a connection passes,
before asyncua handles it:

- On a channel whose (policy, mode) is not one the server is configured for, only discovery
  (GetEndpoints, FindServers) passes; CreateSession, ActivateSession and every service are
  refused with ``BadSecurityModeInsufficient``.
- The peer's channel certificate is checked against the trust list as the directory is now, at
  the channel's first session request (asyncua checks only a certificate the client chooses to
  put in CreateSession); a refused one is audited in one line.
- A session is activated again on another channel (a reconnect) only if that channel carries
  the certificate the session was created with; sessions created on None channels, which carry
  none, only on their own connection.
- A user name and password is accepted only where the wire protects it: on a SignAndEncrypt
  channel, or encrypted for the server on a Sign channel; elsewhere only if
  ``allow_insecure_passwords`` (loopback drills and tests). Login attempts are paced and locked
  out by a :class:`~gridctl.field.login_guard.LoginGuard`; the PBKDF2 check runs in one worker
  thread, never on the event loop, and only when the guard lets an attempt be judged.
- Writes and method calls of a session that is not an operator's are refused with
  ``BadUserAccessDenied``; every login, refused login and refused request becomes an
  :class:`AuditRecord` for the server's audit sink. The request being served is available to
  the server's own checks (:func:`current_request`) so that they can audit what they refuse.

asyncua internals relied on (asyncua is pinned to 2.1.x in ``pyproject.toml``;
``tests/test_sim_security_gate.py`` fails if one of them changes):

- ``asyncua.server.binary_server_asyncio.UaProcessor``: the class each new connection's
  ``OPCUAProtocol`` instantiates, replaced (once per process) by :class:`GatedUaProcessor`,
  which behaves as asyncua's for a server without a gate;
- ``UaProcessor._process_message(typeid, requesthdr, seqhdr, body)``, which handles one request
  and raises ``ServiceError`` or a ``UaStatusCodeError`` to refuse it, and its ``name`` (the
  peer address), ``session``, ``iserver``, ``send_response`` and
  ``_connection.security_policy`` (``URI``, ``Mode``, ``peer_certificate``);
- ``InternalSession.activate_session`` calling the user manager's ``get_user`` synchronously,
  in the task that handles the request (the gate's verdict reaches it through a context
  variable), and ``InternalServer.decrypt_user_token`` / ``lookup_external_session``.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import User
from asyncua.server.uaprocessor import UaProcessor
from asyncua.ua.ua_binary import struct_from_binary
from cryptography import x509

from gridctl.field.asyncua_gate import GatedUaProcessor, GateUserManager, install_gate, judged_as
from gridctl.field.login_guard import LoginGuard
from gridctl.field.session_audit import (
    AuditAction,
    AuditRecord,
    AuditSink,
    RequestContext,
    channel_name,
    current_request,
    host_of,
    password_protected,
    peer_of,
    service_name,
    serving,
    user_name_of,
)
from gridctl.field.trust_list import CertificateCheck, describe_certificate, thumbprint

__all__ = [
    "AuditAction",
    "AuditRecord",
    "AuditSink",
    "GatedUaProcessor",
    "RequestContext",
    "SessionGate",
    "channel_name",
    "current_request",
    "install_gate",
    "password_protected",
]

_Request = ua.ObjectIds
_DISCOVERY = frozenset(ua.NodeId(i) for i in (
    _Request.GetEndpointsRequest_Encoding_DefaultBinary,
    _Request.FindServersRequest_Encoding_DefaultBinary,
    _Request.FindServersOnNetworkRequest_Encoding_DefaultBinary,
    _Request.CloseSecureChannelRequest_Encoding_DefaultBinary,
))
_CREATE = ua.NodeId(_Request.CreateSessionRequest_Encoding_DefaultBinary)
_ACTIVATE = ua.NodeId(_Request.ActivateSessionRequest_Encoding_DefaultBinary)
_WRITE = ua.NodeId(_Request.WriteRequest_Encoding_DefaultBinary)
_CALL = ua.NodeId(_Request.CallRequest_Encoding_DefaultBinary)
_NAMED_IN_AUDIT = 8  # nodes named in one audit record; the rest are counted


_hashing: ThreadPoolExecutor | None = None


def _hashing_pool() -> ThreadPoolExecutor:
    # one thread for every password check of the process: a flood of logins costs one core
    # at most, and never the event loop
    global _hashing
    if _hashing is None:
        _hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridctl-password")
    return _hashing


@dataclass(frozen=True)
class _Binding:
    """The channel a session was created on."""

    certificate: str | None  # thumbprint of the channel's peer certificate, None on None
    processor: weakref.ref[UaProcessor]


@dataclass(frozen=True)
class _Exchange:
    """One request of one connection, to be answered."""

    processor: UaProcessor
    requesthdr: ua.RequestHeader
    seqhdr: Any
    peer: str  # host:port
    channel: str  # policy/mode

    def answer(self, code: int) -> bool:
        """Answer the request with a service fault of ``code``; the connection stays open."""
        response = ua.ServiceFault()
        response.ResponseHeader.ServiceResult = ua.StatusCode(code)
        self.processor.send_response(self.requesthdr.RequestHandle, self.seqhdr, response)
        return True


class SessionGate:
    """The checks of the module docstring for one server (see :func:`install_gate`)."""

    def __init__(
        self,
        *,
        channels: frozenset[tuple[str, ua.MessageSecurityMode]],
        authenticate: Callable[[str, str], str | None],
        is_operator: Callable[[User | None], bool],
        anonymous_allowed: bool,
        guard: LoginGuard,
        certificates: CertificateCheck | None,
        allow_insecure_passwords: bool = False,
        audit: AuditSink | None = None,
        name_of_node: Callable[[ua.NodeId], str] | None = None,
    ) -> None:
        self._channels = channels
        self._authenticate = authenticate
        self._is_operator = is_operator
        self.guard = guard
        self._certificates = certificates
        self._allow_insecure_passwords = allow_insecure_passwords
        self._audit = audit or (lambda record: None)
        self._name_of_node = name_of_node or (lambda node: node.to_string())
        self.user_manager = GateUserManager(anonymous_allowed)
        self._configured = ", ".join(sorted(channel_name(u, m) for u, m in channels))
        self._checked: weakref.WeakKeyDictionary[UaProcessor, bool] = (
            weakref.WeakKeyDictionary())
        self._bindings: weakref.WeakKeyDictionary[Any, _Binding] = weakref.WeakKeyDictionary()

    # --- the gate ------------------------------------------------------------------------------

    async def process(self, processor: UaProcessor, handle: Callable[..., Awaitable[bool]],
                      typeid: ua.NodeId, requesthdr: ua.RequestHeader, seqhdr: Any,
                      body: Any) -> bool:
        """Pass one request to asyncua's ``handle`` or refuse it (see the module docstring)."""
        if typeid in _DISCOVERY:
            return await handle(typeid, requesthdr, seqhdr, body)
        policy = processor._connection.security_policy
        ex = _Exchange(processor, requesthdr, seqhdr, peer_of(processor),
                       channel_name(policy.URI, policy.Mode))
        session = processor.session
        user = user_name_of(session)
        if (policy.URI, policy.Mode) not in self._channels:
            activate = typeid == _ACTIVATE
            return self._refuse(
                ex, AuditAction.LOGIN_REFUSED if activate else AuditAction.SESSION_REFUSED,
                ua.StatusCodes.BadSecurityModeInsufficient,
                user=self._claimed_user(body) if activate else user, what=service_name(typeid),
                why=f"a {ex.channel} channel, the server is configured for {self._configured}")
        if self._checked.get(processor) is not True:
            refused = await self._check_certificate(ex, typeid, body)
            if refused is not None:
                return ex.answer(refused)
        if typeid == _CREATE:
            result = await handle(typeid, requesthdr, seqhdr, body)
            if processor.session is not None:
                self._bindings[processor.session] = _Binding(
                    _thumbprint_of(policy.peer_certificate), weakref.ref(processor))
            return result
        if typeid == _ACTIVATE:
            return await self._activate(ex, handle, typeid, body)
        if session is None or not session.is_activated():
            return await handle(typeid, requesthdr, seqhdr, body)  # asyncua refuses it
        if typeid in (_WRITE, _CALL) and not self._is_operator(session.user):
            action, what, node, value = self._describe_request(typeid, body)
            verb = "write" if typeid == _WRITE else "call methods"
            whose = "a viewer's" if user is not None else "an anonymous"
            return self._refuse(ex, action, ua.StatusCodes.BadUserAccessDenied, user=user,
                                what=what, why=f"only an operator may {verb} ({whose} session)",
                                session_id=session.session_id, node=node, value=value)
        with serving(RequestContext(ex.peer, user, ex.channel, session.session_id)):
            try:
                return await handle(typeid, requesthdr, seqhdr, body)
            except ua.uaerrors.BadUserAccessDenied:
                # asyncua's permission rules refused it (a change of the address space, ...)
                self._audit(AuditRecord(
                    action=AuditAction.SERVICE_REFUSED, user=user, peer=ex.peer,
                    channel=ex.channel, what=service_name(typeid),
                    why="BadUserAccessDenied: not allowed to external users",
                    status=ua.StatusCodes.BadUserAccessDenied, session_id=session.session_id))
                raise

    async def _activate(self, ex: _Exchange, handle: Callable[..., Awaitable[bool]],
                        typeid: ua.NodeId, body: Any) -> bool:
        processor = ex.processor
        token = struct_from_binary(ua.ActivateSessionParameters, body.copy()).UserIdentityToken
        name = token.UserName if isinstance(token, ua.UserNameIdentityToken) else None
        policy = processor._connection.security_policy
        session = processor.session
        if session is None:  # activated again on a new channel (a reconnect)
            session = processor.iserver.lookup_external_session(
                ex.requesthdr.AuthenticationToken)
            if session is not None and not self._same_channel(session, processor):
                return self._refuse(ex, AuditAction.LOGIN_REFUSED,
                                    ua.StatusCodes.BadSessionIdInvalid, user=name,
                                    what="ActivateSession", session_id=session.session_id,
                                    why="the session was created on another channel")
        if session is None:
            return await handle(typeid, ex.requesthdr, ex.seqhdr, body)  # asyncua refuses it
        refused = self._login_refusal(ex, session, name)
        verdict = None
        if isinstance(token, ua.UserNameIdentityToken):
            if not self._allow_insecure_passwords and not password_protected(
                    policy.Mode, bool(token.EncryptionAlgorithm)):
                how = "encrypted" if token.EncryptionAlgorithm else "in clear"
                return refused(ua.StatusCodes.BadSecurityModeInsufficient,
                               f"a password sent {how} on a {ex.channel} channel (the password "
                               "was not checked; use SignAndEncrypt)")
            try:
                _, password = processor.iserver.decrypt_user_token(session, token)
            except Exception:  # a token the server cannot read: nothing to judge
                return refused(ua.StatusCodes.BadIdentityTokenInvalid,
                               "the password cannot be decrypted")
            outcome = await self.guard.attempt(
                name or "", host_of(processor),
                lambda: self._check_password(name or "", password or ""))
            if not outcome.accepted:
                # audited now, answered after the slow-down: this connection waits, the event
                # loop does not
                self._record(ex, AuditAction.LOGIN_REFUSED, ua.StatusCodes.BadUserAccessDenied,
                             user=name, what="ActivateSession", why=outcome.describe(),
                             session_id=session.session_id)
                await asyncio.sleep(outcome.wait_s)
                return ex.answer(ua.StatusCodes.BadUserAccessDenied)
            verdict = outcome.account
        with judged_as(verdict):
            try:
                result = await handle(typeid, ex.requesthdr, ex.seqhdr, body)
            except (ServiceError, ua.UaStatusCodeError) as exc:
                return refused(exc.code, ua.StatusCode(exc.code).doc)
        role = "operator" if self._is_operator(
            processor.session.user if processor.session is not None else None) else "viewer"
        self._audit(AuditRecord(action=AuditAction.LOGIN, user=name, peer=ex.peer,
                                channel=ex.channel, what="ActivateSession", why=f"Good: {role}",
                                status=ua.StatusCodes.Good, session_id=session.session_id))
        return result

    def _same_channel(self, session: Any, processor: UaProcessor) -> bool:
        """True if ``processor``'s channel may activate ``session`` again: it carries the
        certificate the session was created with (on None channels: it is the same one)."""
        bound = self._bindings.get(session)
        if bound is None:
            return False
        if bound.certificate is None:
            return bound.processor() is processor
        here = processor._connection.security_policy.peer_certificate
        return _thumbprint_of(here) == bound.certificate

    def _login_refusal(self, ex: _Exchange, session: Any,
                       name: str | None) -> Callable[[int, str], bool]:
        def refused(code: int, why: str) -> bool:
            return self._refuse(ex, AuditAction.LOGIN_REFUSED, code, user=name,
                                what="ActivateSession", why=why, session_id=session.session_id)
        return refused

    async def _check_password(self, name: str, password: str) -> str | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_hashing_pool(), self._authenticate, name, password)

    async def _check_certificate(self, ex: _Exchange, typeid: ua.NodeId,
                                 body: Any) -> int | None:
        """None if the channel's certificate is trusted (or there is none), otherwise the
        status that refuses it; the first refusal on a channel is audited."""
        processor = ex.processor
        der = processor._connection.security_policy.peer_certificate
        if not der or self._certificates is None:
            self._checked[processor] = True
            return None
        if processor in self._checked:  # refused before on this channel: not audited again
            return ua.StatusCodes.BadCertificateUntrusted
        self._checked[processor] = False
        try:
            cert = x509.load_der_x509_certificate(der)
        except ValueError:
            self._record(ex, AuditAction.CERTIFICATE_REFUSED, ua.StatusCodes.BadCertificateInvalid,
                         user=None, what="certificate", why="not an X.509 certificate",
                         certificate=der)
            return ua.StatusCodes.BadCertificateInvalid
        app = None
        if typeid == _CREATE:
            app = struct_from_binary(ua.CreateSessionParameters, body.copy()).ClientDescription
        refusal = await self._certificates.refusal(cert, app)
        if refusal is None:
            self._checked[processor] = True
            return None
        self._record(ex, AuditAction.CERTIFICATE_REFUSED, refusal.status, user=None,
                     what=describe_certificate(cert),
                     why=f"sha256 {refusal.thumbprint}: {refusal.reason}", certificate=der)
        return refusal.status

    # --- helpers -------------------------------------------------------------------------------

    def _refuse(self, ex: _Exchange, action: AuditAction, code: int, **record: Any) -> bool:
        """Audit a refusal and answer ``code`` (a service fault); the connection stays."""
        self._record(ex, action, code, **record)
        return ex.answer(code)

    def _record(self, ex: _Exchange, action: AuditAction, code: int, *, user: str | None,
                what: str, why: str, session_id: ua.NodeId | None = None,
                node: ua.NodeId | None = None, value: Any = None,
                certificate: bytes | None = None) -> None:
        self._audit(AuditRecord(
            action=action, user=user, peer=ex.peer, channel=ex.channel, what=what,
            why=f"{ua.StatusCode(code).name}: {why}", status=code, session_id=session_id,
            node=node, value=value, certificate=certificate))

    def _claimed_user(self, body: Any) -> str | None:
        try:
            token = struct_from_binary(ua.ActivateSessionParameters, body.copy()).UserIdentityToken
        except Exception:  # only for the audit: a request that does not parse names no one
            return None
        return token.UserName if isinstance(token, ua.UserNameIdentityToken) else None

    def _describe_request(self, typeid: ua.NodeId, body: Any
                          ) -> tuple[AuditAction, str, ua.NodeId | None, Any]:
        if typeid == _WRITE:
            items = struct_from_binary(ua.WriteParameters, body.copy()).NodesToWrite or []
            nodes = [item.NodeId for item in items]
            value = items[0].Value.Value.Value if items and items[0].Value is not None and (
                items[0].Value.Value is not None) else None
            return AuditAction.WRITE_REFUSED, self._names(nodes), (
                nodes[0] if nodes else None), value
        calls = struct_from_binary(ua.CallParameters, body.copy()).MethodsToCall or []
        nodes = [call.MethodId for call in calls]
        args = [a.Value for a in calls[0].InputArguments] if calls else None
        return AuditAction.CALL_REFUSED, self._names(nodes), (nodes[0] if nodes else None), args

    def _names(self, nodes: list[ua.NodeId]) -> str:
        names = ",".join(self._name_of_node(n) for n in nodes[:_NAMED_IN_AUDIT]) or "nothing"
        if len(nodes) > _NAMED_IN_AUDIT:
            names += f" and {len(nodes) - _NAMED_IN_AUDIT} more"
        return names


def _thumbprint_of(der: bytes | None) -> str | None:
    return thumbprint(der) if der else None
