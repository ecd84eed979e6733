"""The server half of field security: its endpoints and certificate, whom it lets in with which
role, request-level permissions, and the session gate (:mod:`gridctl.field.session_gate`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.crypto import security_policies
from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, User, UserRole

from gridctl.field.certificates import DEFAULT_PKI_DIR, Pki
from gridctl.field.login_guard import LoginGuard, LoginPolicy
from gridctl.field.security_modes import SecurityConfigError, SecurityMode
from gridctl.field.session_gate import AuditSink, SessionGate, install_gate
from gridctl.field.trust_list import CertificateCheck
from gridctl.field.users import AnonymousPolicy, Role, UserStore

__all__ = ["RoleOf", "ServerSecurity", "configure_server", "is_internal"]


RoleOf = Callable[[User | None], Role | None]
"""Role of an external session's user; ``None``: no rights (unknown or refused user)."""


def is_internal(user: User | None) -> bool:
    """True for the server's own session (asyncua runs it as ``Admin``), which is not checked."""
    return user is not None and user.role == UserRole.Admin


@dataclass(frozen=True, kw_only=True)
class ServerSecurity:
    """How the server secures its endpoints and whom it lets in.

    ``allow_insecure_passwords`` accepts a user name and password on a None channel (and in
    clear on a Sign channel), where anyone on the path can read it and use the session: only
    for drills and tests on 127.0.0.1. ``login`` paces failed logins and locks accounts.
    """

    modes: tuple[SecurityMode, ...] = (SecurityMode.SIGN, SecurityMode.SIGN_ENCRYPT)
    pki_dir: Path = DEFAULT_PKI_DIR
    users: UserStore = field(default_factory=UserStore)
    anonymous: AnonymousPolicy = AnonymousPolicy.VIEWER
    certificate_name: str = "gridctl-sim"
    allow_insecure_passwords: bool = False
    login: LoginPolicy = field(default_factory=LoginPolicy)

    def __post_init__(self) -> None:
        if not self.modes:
            raise SecurityConfigError(
                "no security mode: expected at least one endpoint", field="modes"
            )


class _FieldRuleset(PermissionRuleset):
    """Request-level permissions: viewers may not write or call methods; nobody external may
    change the address space."""

    _WRITE_OR_CALL = frozenset(
        {
            ua.NodeId(ua.ObjectIds.WriteRequest_Encoding_DefaultBinary),
            ua.NodeId(ua.ObjectIds.CallRequest_Encoding_DefaultBinary),
        }
    )
    _ALLOWED = frozenset(ua.NodeId(t) for t in USER_TYPES)

    def __init__(self, role_of: RoleOf) -> None:
        self._role_of = role_of

    def check_validity(self, user: Any, action_type_id: Any, body: Any) -> bool:
        if is_internal(user):
            return True
        if action_type_id not in self._ALLOWED:
            return False
        if action_type_id in self._WRITE_OR_CALL:
            return self._role_of(user) == Role.OPERATOR
        return user is not None and self._role_of(user) is not None


async def configure_server(
    server: Server,
    config: ServerSecurity,
    *,
    application_uri: str,
    audit: AuditSink | None = None,
    name_of_node: Callable[[ua.NodeId], str] | None = None,
) -> RoleOf:
    """Endpoints, certificate, trust list, users and the session gate of ``server``; call before
    ``start()``. ``audit`` receives a record of every login and refusal (``name_of_node`` names
    the nodes in them).

    Returns the role of a session's user, for checks the server makes per write.
    """
    users, anonymous = config.users, config.anonymous

    def role_of(user: User | None) -> Role | None:
        if user is None or user.name is None:
            return Role.VIEWER if anonymous == AnonymousPolicy.VIEWER else None
        account = users.users.get(user.name)
        return account.role if account is not None else None

    def authenticate(name: str, password: str) -> str | None:
        account = users.authenticate(name, password)
        return account.name if account is not None else None

    await server.set_application_uri(application_uri)
    secured = [m for m in config.modes if m != SecurityMode.NONE]
    certificates = None
    if secured:
        pki = Pki(Path(config.pki_dir))
        cert, key = pki.ensure_own_certificate(
            config.certificate_name, application_uri, server=True
        )
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        certificates = CertificateCheck(pki.trusted_dir, pki.rejected_dir, peer_is_server=False)
        server.set_certificate_validator(certificates)
    server.set_security_policy(
        [m.policy_type for m in config.modes], permission_ruleset=_FieldRuleset(role_of)
    )
    tokens: list[type] = []
    if anonymous == AnonymousPolicy.VIEWER:
        tokens.append(ua.AnonymousIdentityToken)
    if users.users:  # without users a user name can only be refused: it is not offered
        tokens.append(ua.UserNameIdentityToken)
    server.set_identity_tokens(tokens)
    install_gate(server, SessionGate(
        channels=frozenset(
            (security_policies.SECURITY_POLICY_TYPE_MAP[m.policy_type][0].URI, m.message_mode)
            for m in config.modes),
        authenticate=authenticate,
        is_operator=lambda user: is_internal(user) or role_of(user) == Role.OPERATOR,
        anonymous_allowed=anonymous == AnonymousPolicy.VIEWER,
        guard=LoginGuard(config.login),
        certificates=certificates,
        allow_insecure_passwords=config.allow_insecure_passwords,
        audit=audit,
        name_of_node=name_of_node,
    ))
    return role_of
