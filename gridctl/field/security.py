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


This module is the public surface (every name importable from here, as before); the work is
done by concern in :mod:`~gridctl.field.security_modes` (modes, the config error),
:mod:`~gridctl.field.users` (passwords, users and roles), :mod:`~gridctl.field.certificates`
(PKI directory, own certificate, trust list entries), :mod:`~gridctl.field.server_security`
and :mod:`~gridctl.field.client_security` (each end).
"""

from __future__ import annotations

from gridctl.field.certificates import DEFAULT_PKI_DIR, Pki, TrustedCertificate, trust_certificate
from gridctl.field.client_security import ClientSecurity, configure_client, loopback_operator
from gridctl.field.login_guard import LoginPolicy
from gridctl.field.security_modes import SecurityConfigError, SecurityMode, parse_modes
from gridctl.field.server_security import RoleOf, ServerSecurity, configure_server, is_internal
from gridctl.field.users import (
    PASSWORD_ITERATIONS,
    AnonymousPolicy,
    Role,
    UserAccount,
    UserStore,
    add_user,
    hash_password,
    load_users,
    verify_password,
)

__all__ = [
    "DEFAULT_PKI_DIR",
    "PASSWORD_ITERATIONS",
    "AnonymousPolicy",
    "ClientSecurity",
    "LoginPolicy",
    "Pki",
    "Role",
    "RoleOf",
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
    "loopback_operator",
    "parse_modes",
    "trust_certificate",
    "verify_password",
]
