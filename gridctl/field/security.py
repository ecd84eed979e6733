"""OPC UA security for the field link: certificates, trust list, users and roles.

- **Certificates** are created on first run in a PKI directory (default
  ``$XDG_DATA_HOME/gridctl/pki``, i.e. ``~/.local/share/gridctl/pki``)::

      own/<name>.der        this application's certificate (self-signed, RSA 2048, SHA-256)
      private/<name>.pem    its private key (mode 0600)
      trusted/              certificates of peers this application accepts (.der or .pem)
      rejected/             certificates that were refused, for an administrator to move to
                            trusted/ if they are to be accepted

  A new own certificate is also copied to ``trusted/``: a simulator and a controller sharing one
  PKI directory on one machine trust each other at once; a peer elsewhere needs its certificate
  copied into ``trusted/`` (``gridctl sim trust``).
- **Endpoints**: Basic256Sha256 with Sign and with SignAndEncrypt; None only if configured.
- **Users** come from a YAML file of names, roles and PBKDF2-SHA256 password hashes::

      users:
        - {name: op1, role: operator, password_hash: "pbkdf2_sha256$200000$...$..."}

  ``operator`` may read, write setpoints, operate switches and call the simulator's methods;
  ``viewer`` may only read, browse and subscribe. Anonymous sessions are read-only (viewer) or
  refused, by configuration.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
import tempfile
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
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from gridctl.field.contract import FieldInputError

__all__ = [
    "DEFAULT_PKI_DIR",
    "PASSWORD_ITERATIONS",
    "AnonymousPolicy",
    "ClientSecurity",
    "Pki",
    "Role",
    "SecurityConfigError",
    "SecurityMode",
    "ServerSecurity",
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
        account = self.users.get(name)
        if account is None or not verify_password(password, account.password_hash):
            return None
        return account


def load_users(path: str | Path) -> UserStore:
    """The users of a users file (see the module docstring); errors name the file, row and field."""
    path = Path(path)
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SecurityConfigError(
            "no such users file: expected a YAML file with a 'users' "
            "list (create one with `gridctl sim user-add`)",
            source=source,
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise SecurityConfigError(f"cannot read the users file: {exc}", source=source) from None
    return _users_from_data(data, source)


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
    _write_atomic(path, text.encode(), mode=0o600)
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
        _write_atomic(key_path, dump_private_key_as_pem(key), mode=0o600)
        _write_atomic(cert_path, der, mode=0o644)
        _write_atomic(self.trusted_dir / f"{name}.der", der, mode=0o644)
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


def trust_certificate(pki_root: str | Path, certificate: str | Path) -> Path:
    """Copy a peer's certificate (.der or .pem) into the trust list; returns the new path."""
    source = Path(certificate)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise SecurityConfigError(
            f"cannot read the certificate: {exc}", source=str(source)
        ) from None
    try:
        cert = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError:
        raise SecurityConfigError(
            "not an X.509 certificate: expected a .der or .pem file", source=str(source)
        ) from None
    target_dir = Pki(Path(pki_root)).trusted_dir
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{source.stem}.der"
    _write_atomic(target, cert.public_bytes(Encoding.DER), mode=0o644)
    return target


def _write_atomic(path: Path, data: bytes, *, mode: int) -> None:
    """Write through a temporary file in the same directory, so a failure leaves nothing half
    written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _TrustListValidator:
    """Validates a peer certificate against ``trusted/``; a refused one is saved to ``rejected/``.

    The trust list is re-read before refusing, so a certificate an administrator has just moved
    to ``trusted/`` is accepted without a restart.
    """

    def __init__(self, pki: Pki, *, peer_is_server: bool) -> None:
        self._pki = pki
        self._store = TrustStore([pki.trusted_dir], [])
        peer = (
            CertificateValidatorOptions.PEER_SERVER
            if peer_is_server
            else CertificateValidatorOptions.PEER_CLIENT
        )
        self._validator = CertificateValidator(
            CertificateValidatorOptions.TRUSTED_VALIDATION | peer, self._store
        )
        self._loaded = False

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        if not self._loaded:
            await self._store.load()
            self._loaded = True
        try:
            await self._validator.validate(cert, app)
        except Exception:
            await self._store.load()
            try:
                await self._validator.validate(cert, app)
            except Exception:
                self._reject(cert)
                raise

    def _reject(self, cert: x509.Certificate) -> None:
        fingerprint = cert.fingerprint(cert.signature_hash_algorithm or _sha256()).hex()[:16]
        # refusing matters; keeping a copy for the administrator is a courtesy
        with contextlib.suppress(OSError):
            _write_atomic(
                self._pki.rejected_dir / f"{fingerprint}.der",
                cert.public_bytes(Encoding.DER),
                mode=0o644,
            )


def _sha256() -> Any:
    from cryptography.hazmat.primitives import hashes

    return hashes.SHA256()


# ---------------------------------------------------------------------------------------------
# server side


RoleOf = Callable[[User | None], Role | None]
"""Role of an external session's user; ``None``: no rights (unknown or refused user)."""


def is_internal(user: User | None) -> bool:
    """True for the server's own session (asyncua runs it as ``Admin``), which is not checked."""
    return user is not None and user.role == UserRole.Admin


@dataclass(frozen=True, kw_only=True)
class ServerSecurity:
    """How the server secures its endpoints and whom it lets in."""

    modes: tuple[SecurityMode, ...] = (SecurityMode.SIGN, SecurityMode.SIGN_ENCRYPT)
    pki_dir: Path = DEFAULT_PKI_DIR
    users: UserStore = field(default_factory=UserStore)
    anonymous: AnonymousPolicy = AnonymousPolicy.VIEWER
    certificate_name: str = "gridctl-sim"

    def __post_init__(self) -> None:
        if not self.modes:
            raise SecurityConfigError(
                "no security mode: expected at least one endpoint", field="modes"
            )


class _UserManager:
    """asyncua user manager over a :class:`UserStore`; every external user has role ``User``."""

    def __init__(self, users: UserStore, anonymous: AnonymousPolicy) -> None:
        self._users = users
        self._anonymous = anonymous

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        # only anonymous and user-name tokens are offered, so no user name means anonymous
        # (``certificate`` is then the secure channel's, not an identity)
        if username is None:
            if self._anonymous == AnonymousPolicy.REFUSE:
                return None
            return User(role=UserRole.User, name=None)
        if password is None:
            return None
        account = self._users.authenticate(username, password)
        return None if account is None else User(role=UserRole.User, name=account.name)


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
) -> RoleOf:
    """Endpoints, certificate, trust list and users of ``server``; call before ``start()``.

    Returns the role of a session's user, for checks the server makes per write.
    """
    users, anonymous = config.users, config.anonymous

    def role_of(user: User | None) -> Role | None:
        if user is None or user.name is None:
            return Role.VIEWER if anonymous == AnonymousPolicy.VIEWER else None
        account = users.users.get(user.name)
        return account.role if account is not None else None

    await server.set_application_uri(application_uri)
    secured = [m for m in config.modes if m != SecurityMode.NONE]
    if secured:
        pki = Pki(Path(config.pki_dir))
        cert, key = pki.ensure_own_certificate(
            config.certificate_name, application_uri, server=True
        )
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        server.set_certificate_validator(_TrustListValidator(pki, peer_is_server=False))
    server.set_security_policy(
        [m.policy_type for m in config.modes], permission_ruleset=_FieldRuleset(role_of)
    )
    tokens: list[type] = [ua.UserNameIdentityToken]
    if anonymous == AnonymousPolicy.VIEWER:
        tokens.insert(0, ua.AnonymousIdentityToken)
    server.set_identity_tokens(tokens)
    server.iserver.set_user_manager(_UserManager(users, anonymous))
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
        client.certificate_validator = _TrustListValidator(pki, peer_is_server=True)
    if config.username is not None:
        client.set_user(config.username)
        client.set_password(config.password or "")
