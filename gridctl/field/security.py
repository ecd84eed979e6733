"""OPC UA security for the field link: certificates, trust list, users and roles.

- **Certificates** are created on first run in a PKI directory (default
  ``$XDG_DATA_HOME/gridctl/pki``, i.e. ``~/.local/share/gridctl/pki``)::

      own/<name>.der        this application's certificate (self-signed, RSA 2048, SHA-256)
      private/<name>.pem    its private key (mode 0600)
      trusted/              certificates of peers this application accepts (.der or .pem),
                            stored by ``gridctl sim trust`` as <sha256 thumbprint>.der
      rejected/             certificates that were refused (<thumbprint>.der), for an
                            administrator to review and trust if they are to be accepted

  A new own certificate is also copied to ``trusted/``: a simulator and a controller sharing one
  PKI directory on one machine trust each other at once; a peer elsewhere needs its certificate
  in ``trusted/`` (``gridctl sim trust``). The directory is read as it is at each new secure
  channel: a certificate removed from it is refused at the peer's next connection
  (:mod:`gridctl.field.trust_list`).
- **Endpoints**: Basic256Sha256 with Sign and with SignAndEncrypt; None only if configured. A
  session is never activated, and no service passes, on a channel weaker than the configured
  ones; a password is accepted only where the channel protects it (SignAndEncrypt, or encrypted
  for the server on Sign) unless ``allow_insecure_passwords``; failed logins are slowed down and
  lock the account (:mod:`gridctl.field.session_gate`, :mod:`gridctl.field.login_guard`).
- **Users** come from a YAML file of names, roles and PBKDF2-SHA256 password hashes::

      users:
        - {name: op1, role: operator, password_hash: "pbkdf2_sha256$200000$...$..."}

  ``operator`` may read, write setpoints, operate switches and call the simulator's methods;
  ``viewer`` may only read, browse and subscribe. Anonymous sessions are read-only (viewer) or
  refused, by configuration.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml
from asyncua import Client, Server, ua
from asyncua.crypto import security_policies
from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from asyncua.crypto.permission_rules import USER_TYPES, PermissionRuleset, User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from gridctl.field.contract import FieldInputError
from gridctl.field.files import write_atomic
from gridctl.field.login_guard import LoginGuard, LoginPolicy
from gridctl.field.session_gate import AuditSink, SessionGate, install_gate
from gridctl.field.trust_list import (
    CertificateCheck,
    TrustList,
    certificate_from_bytes,
    describe_certificate,
    thumbprint,
)
from network_models.yaml_file import read_yaml

__all__ = [
    "DEFAULT_PKI_DIR",
    "PASSWORD_ITERATIONS",
    "AnonymousPolicy",
    "ClientSecurity",
    "LoginPolicy",
    "Pki",
    "Role",
    "SecurityConfigError",
    "SecurityMode",
    "ServerSecurity",
    "TrustedCertificate",
    "UserAccount",
    "UserStore",
    "add_user",
    "configure_client",
    "configure_server",
    "hash_password",
    "is_internal",
    "load_users",
    "parse_modes",
    "trust_certificate",
    "verify_password",
]

DEFAULT_PKI_DIR = (
    Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "gridctl" / "pki"
)
PASSWORD_ITERATIONS = 200_000
_HASH_SCHEME = "pbkdf2_sha256"
_CERT_DAYS = 365
_RENEW_BEFORE = dt.timedelta(days=7)


class SecurityConfigError(FieldInputError):
    """A users file, PKI directory or security option that cannot be used."""


class Role(StrEnum):
    """What a user may do on the field link."""

    OPERATOR = "operator"  # read, write setpoints, operate switches, call methods
    VIEWER = "viewer"  # read, browse, subscribe


class AnonymousPolicy(StrEnum):
    REFUSE = "refuse"
    VIEWER = "viewer"


class SecurityMode(StrEnum):
    """An endpoint's message security; the policy is Basic256Sha256 unless NONE."""

    NONE = "none"
    SIGN = "sign"
    SIGN_ENCRYPT = "sign_encrypt"

    @property
    def message_mode(self) -> ua.MessageSecurityMode:
        return {
            SecurityMode.NONE: ua.MessageSecurityMode.None_,
            SecurityMode.SIGN: ua.MessageSecurityMode.Sign,
            SecurityMode.SIGN_ENCRYPT: ua.MessageSecurityMode.SignAndEncrypt,
        }[self]

    @property
    def policy_type(self) -> ua.SecurityPolicyType:
        return {
            SecurityMode.NONE: ua.SecurityPolicyType.NoSecurity,
            SecurityMode.SIGN: ua.SecurityPolicyType.Basic256Sha256_Sign,
            SecurityMode.SIGN_ENCRYPT: ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
        }[self]


def parse_modes(text: str, *, source: str = "--security") -> tuple[SecurityMode, ...]:
    """Security modes from a comma list such as ``sign,sign_encrypt`` (``encrypt`` also works)."""
    aliases = {"encrypt": "sign_encrypt", "signandencrypt": "sign_encrypt"}
    modes: list[SecurityMode] = []
    for raw in text.split(","):
        word = raw.strip().lower().replace("-", "_")
        if not word:
            continue
        try:
            mode = SecurityMode(aliases.get(word, word))
        except ValueError:
            raise SecurityConfigError(
                f"unknown security mode {raw.strip()!r}: expected none, sign or sign_encrypt",
                source=source,
            ) from None
        if mode not in modes:
            modes.append(mode)
    if not modes:
        raise SecurityConfigError(
            "no security mode given: expected none, sign and/or sign_encrypt", source=source
        )
    return tuple(modes)


# ---------------------------------------------------------------------------------------------
# passwords and users


def hash_password(password: str, *, iterations: int = PASSWORD_ITERATIONS) -> str:
    """A salted PBKDF2-HMAC-SHA256 hash: ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (base64)."""
    if not password:
        raise SecurityConfigError(
            "the password is empty: expected at least one character", field="password"
        )
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "$".join((_HASH_SCHEME, str(iterations), _b64(salt), _b64(digest)))


def verify_password(password: str, encoded: str) -> bool:
    """True if ``password`` matches the hash; compares in constant time."""
    parts = encoded.split("$")
    if len(parts) != 4 or parts[0] != _HASH_SCHEME:
        return False
    try:
        iterations = int(parts[1])
        salt, expected = base64.b64decode(parts[2]), base64.b64decode(parts[3])
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iterations(encoded: str) -> int:
    parts = encoded.split("$")
    try:
        return max(1, int(parts[1]))
    except (IndexError, ValueError):
        return PASSWORD_ITERATIONS


@dataclass(frozen=True, kw_only=True)
class UserAccount:
    name: str
    role: Role
    password_hash: str


@dataclass(frozen=True)
class UserStore:
    """Users by name (read from a users file or built in code)."""

    users: Mapping[str, UserAccount] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    @classmethod
    def of(cls, *accounts: UserAccount) -> UserStore:
        return cls(MappingProxyType({a.name: a for a in accounts}), source="<code>")

    def authenticate(self, name: str, password: str) -> UserAccount | None:
        """The account if ``password`` is its password; an unknown name costs the same hash, so
        the time taken does not tell which names exist (seconds of CPU: call it off the event
        loop)."""
        account = self.users.get(name)
        if account is None:
            verify_password(password, self._stand_in_hash)
            return None
        return account if verify_password(password, account.password_hash) else None

    @functools.cached_property
    def _stand_in_hash(self) -> str:
        iterations = max((_iterations(a.password_hash) for a in self.users.values()),
                         default=PASSWORD_ITERATIONS)
        return hash_password(secrets.token_urlsafe(16), iterations=iterations)


def load_users(path: str | Path) -> UserStore:
    """The users of a users file (see the module docstring); errors name the file, row and field."""
    path = Path(path)
    data = read_yaml(path, expected="a users file: YAML with a 'users' list (create one with "
                     "`gridctl sim user-add`)", error=SecurityConfigError)
    return _users_from_data(data, str(path))


def _users_from_data(data: Any, source: str) -> UserStore:
    if data is None:
        data = {"users": []}
    if not isinstance(data, dict) or not isinstance(data.get("users", []), list):
        raise SecurityConfigError(
            "expected a mapping with a 'users' list", source=source, field="users"
        )
    accounts: dict[str, UserAccount] = {}
    for row, entry in enumerate(data.get("users") or []):
        if not isinstance(entry, dict):
            raise SecurityConfigError(
                "expected a mapping with name, role and password_hash", source=source, row=row
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise SecurityConfigError(
                "expected a non-empty user name without surrounding blanks",
                source=source,
                row=row,
                field="name",
            )
        if name in accounts:
            raise SecurityConfigError(
                f"user {name!r} appears twice: expected unique names",
                source=source,
                row=row,
                field="name",
            )
        try:
            role = Role(entry.get("role"))
        except ValueError:
            raise SecurityConfigError(
                f"unknown role {entry.get('role')!r}: expected operator or viewer",
                source=source,
                row=row,
                element=name,
                field="role",
            ) from None
        hashed = entry.get("password_hash")
        if not isinstance(hashed, str) or not hashed.startswith(_HASH_SCHEME + "$"):
            raise SecurityConfigError(
                f"expected a {_HASH_SCHEME} hash (never a plain password; "
                "use `gridctl sim user-add`)",
                source=source,
                row=row,
                element=name,
                field="password_hash",
            )
        accounts[name] = UserAccount(name=name, role=role, password_hash=hashed)
    return UserStore(MappingProxyType(accounts), source=source)


def add_user(
    path: str | Path,
    name: str,
    role: Role | str,
    password: str,
    *,
    iterations: int = PASSWORD_ITERATIONS,
) -> UserAccount:
    """Add or replace a user in a users file (created if missing, written atomically, mode 0600)."""
    path = Path(path)
    store = load_users(path) if path.exists() else UserStore(source=str(path))
    try:
        role = Role(role)
    except ValueError:
        raise SecurityConfigError(
            f"unknown role {role!r}: expected operator or viewer", field="role"
        ) from None
    if not name or name != name.strip():
        raise SecurityConfigError(
            "expected a non-empty user name without surrounding blanks", field="name"
        )
    account = UserAccount(
        name=name, role=role, password_hash=hash_password(password, iterations=iterations)
    )
    users = {**store.users, name: account}
    text = (
        "# gridctl OPC UA users: operator (read, write setpoints, operate switches) or viewer"
        " (read only)\n"
        + yaml.safe_dump(
            {
                "users": [
                    {"name": u.name, "role": u.role.value, "password_hash": u.password_hash}
                    for u in users.values()
                ]
            },
            sort_keys=False,
        )
    )
    write_atomic(path, text.encode(), mode=0o600)
    return account


# ---------------------------------------------------------------------------------------------
# certificates and the trust list


@dataclass(frozen=True)
class Pki:
    """A PKI directory (layout in the module docstring)."""

    root: Path = DEFAULT_PKI_DIR

    @property
    def trusted_dir(self) -> Path:
        return self.root / "trusted"

    @property
    def rejected_dir(self) -> Path:
        return self.root / "rejected"

    def certificate_path(self, name: str) -> Path:
        return self.root / "own" / f"{name}.der"

    def key_path(self, name: str) -> Path:
        return self.root / "private" / f"{name}.pem"

    def ensure_own_certificate(
        self,
        name: str,
        application_uri: str,
        *,
        server: bool,
    ) -> tuple[Path, Path]:
        """This application's certificate and key, created or renewed when missing, expiring or
        made for another application URI; a new certificate is also copied to ``trusted/``."""
        cert_path, key_path = self.certificate_path(name), self.key_path(name)
        try:
            for d in (cert_path.parent, key_path.parent, self.trusted_dir, self.rejected_dir):
                d.mkdir(parents=True, exist_ok=True)
            os.chmod(key_path.parent, 0o700)
        except OSError as exc:
            raise SecurityConfigError(
                f"cannot create the PKI directory: {exc}", source=str(self.root)
            ) from None
        if _usable(cert_path, key_path, application_uri):
            return cert_path, key_path
        key = generate_private_key()
        hosts = sorted({socket.gethostname(), "localhost"})
        alt_names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
        alt_names += [x509.DNSName(h) for h in hosts]
        alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
        cert = generate_self_signed_app_certificate(
            key,
            application_uri,
            {"organizationName": "gridctl"},
            alt_names,
            extended=[
                ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
            ],
            days=_CERT_DAYS,
        )
        der = cert.public_bytes(Encoding.DER)
        write_atomic(key_path, dump_private_key_as_pem(key), mode=0o600)
        write_atomic(cert_path, der, mode=0o644)
        write_atomic(self.trusted_dir / f"{name}.der", der, mode=0o644)
        return cert_path, key_path


def _usable(cert_path: Path, key_path: Path, application_uri: str) -> bool:
    if not (cert_path.is_file() and key_path.is_file()):
        return False
    try:
        cert = x509.load_der_x509_certificate(cert_path.read_bytes())
        uris = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName
        ).value.get_values_for_type(x509.UniformResourceIdentifier)
    except (ValueError, x509.ExtensionNotFound, OSError):
        return False
    now = dt.datetime.now(dt.UTC)
    return application_uri in uris and cert.not_valid_after_utc - _RENEW_BEFORE > now


@dataclass(frozen=True, kw_only=True)
class TrustedCertificate:
    """A certificate in the trust list: where it is stored and whose it is."""

    path: Path
    thumbprint: str  # SHA-256 of the DER bytes, hex
    who: str  # common name and application URI
    added: bool  # False: it was already trusted (``path`` is where)

    def describe(self) -> str:
        verb = "trusted" if self.added else "already trusted"
        return f"{verb}: {self.who}, sha256 {self.thumbprint}, stored as {self.path}"


def trust_certificate(pki_root: str | Path, certificate: str | Path) -> TrustedCertificate:
    """Add a peer's certificate (.der or .pem) to the trust list as ``<thumbprint>.der``.

    Nothing is overwritten: two peers whose tools name their certificate files alike are both
    trusted, and a certificate already in the list (under any name) is left where it is.
    """
    source = Path(certificate)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise SecurityConfigError(
            f"cannot read the certificate ({exc.strerror or exc}): expected a .der or .pem file",
            source=str(source),
        ) from None
    try:
        cert = certificate_from_bytes(data)
    except ValueError:
        raise SecurityConfigError(
            "not an X.509 certificate: expected a .der or .pem file", source=str(source)
        ) from None
    der = cert.public_bytes(Encoding.DER)
    digest, who = thumbprint(der), describe_certificate(cert)
    trusted_dir = Pki(Path(pki_root)).trusted_dir
    present = TrustList(trusted_dir).files_of(der)
    if present:
        return TrustedCertificate(path=present[0], thumbprint=digest, who=who, added=False)
    try:
        write_atomic(trusted_dir / f"{digest}.der", der, mode=0o644)
    except OSError as exc:
        raise SecurityConfigError(
            f"cannot write to the trust list ({exc.strerror or exc})", source=str(trusted_dir)
        ) from None
    return TrustedCertificate(path=trusted_dir / f"{digest}.der", thumbprint=digest, who=who,
                              added=True)


# ---------------------------------------------------------------------------------------------
# server side


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


# ---------------------------------------------------------------------------------------------
# client side


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
