"""Users and roles of the field link: PBKDF2-SHA256 password hashes, the users file and its
checks (errors name the file, row and field), and adding a user to it.

A users file lists names, roles and hashes, never a plain password::

    users:
      - {name: op1, role: operator, password_hash: "pbkdf2_sha256$200000$...$..."}

``operator`` may read, write setpoints, operate switches and call the simulator's methods;
``viewer`` may only read, browse and subscribe.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from gridctl.field.files import write_atomic
from gridctl.field.security_modes import SecurityConfigError
from network_models.yaml_file import read_yaml

__all__ = [
    "PASSWORD_ITERATIONS",
    "AnonymousPolicy",
    "Role",
    "UserAccount",
    "UserStore",
    "add_user",
    "hash_password",
    "load_users",
    "verify_password",
]

PASSWORD_ITERATIONS = 200_000
_HASH_SCHEME = "pbkdf2_sha256"


class Role(StrEnum):
    """What a user may do on the field link."""

    OPERATOR = "operator"  # read, write setpoints, operate switches, call methods
    VIEWER = "viewer"  # read, browse, subscribe


class AnonymousPolicy(StrEnum):
    REFUSE = "refuse"
    VIEWER = "viewer"



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
