"""The client half of field security: message security, certificate, server trust check and
user of a client, and the unsecured loopback pair for drills, tests and benchmarks."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from asyncua import Client
from asyncua.crypto import security_policies

from gridctl.field.certificates import DEFAULT_PKI_DIR, Pki
from gridctl.field.security_modes import SecurityConfigError, SecurityMode
from gridctl.field.server_security import ServerSecurity
from gridctl.field.trust_list import CertificateCheck
from gridctl.field.users import AnonymousPolicy, Role, UserAccount, UserStore, hash_password

__all__ = ["ClientSecurity", "configure_client", "loopback_operator"]


@dataclass(frozen=True, kw_only=True)
class ClientSecurity:
    """How a client connects: message security, its PKI directory and user (None = anonymous)."""

    mode: SecurityMode = SecurityMode.SIGN_ENCRYPT
    pki_dir: Path = DEFAULT_PKI_DIR
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    certificate_name: str = "gridctl-client"
    application_uri: str = field(
        default_factory=lambda: f"urn:{socket.gethostname()}:gridctl-client"
    )

    def __post_init__(self) -> None:
        if (self.username is None) != (self.password is None):
            raise SecurityConfigError(
                "give both a user name and a password, or neither", field="username"
            )


def loopback_operator(name: str, password: str) -> tuple[ServerSecurity, ClientSecurity]:
    """An unsecured loopback pair for drills, tests and benchmarks on 127.0.0.1: a server with one
    operator (anonymous sessions read only) and the client that logs in as that operator."""
    server = ServerSecurity(
        modes=(SecurityMode.NONE,),
        anonymous=AnonymousPolicy.VIEWER,
        allow_insecure_passwords=True,  # on 127.0.0.1 only: nobody else is on the path
        users=UserStore.of(
            UserAccount(
                name=name,
                role=Role.OPERATOR,
                password_hash=hash_password(password, iterations=1000),
            )
        ),
    )
    return server, ClientSecurity(mode=SecurityMode.NONE, username=name, password=password)


async def configure_client(client: Client, config: ClientSecurity) -> None:
    """Certificate, server trust check, message security and user of ``client``; call before
    ``connect()`` (with a secured mode it fetches the server's endpoints once)."""
    client.application_uri = config.application_uri
    if config.mode != SecurityMode.NONE:
        pki = Pki(Path(config.pki_dir))
        cert, key = pki.ensure_own_certificate(
            config.certificate_name, config.application_uri, server=False
        )
        await client.set_security(
            security_policies.SecurityPolicyBasic256Sha256,
            str(cert),
            str(key),
            mode=config.mode.message_mode,
        )
        client.certificate_validator = CertificateCheck(
            pki.trusted_dir, pki.rejected_dir, peer_is_server=True)
    if config.username is not None:
        client.set_user(config.username)
        client.set_password(config.password or "")
