"""This application's certificate and the peers it trusts: the PKI directory, the own
certificate created or renewed on first use, and adding a peer's certificate to the trust list.

The layout of a PKI directory (default ``$XDG_DATA_HOME/gridctl/pki``) is in
:mod:`gridctl.field.security`; the trust list is read at each new secure channel by
:mod:`gridctl.field.trust_list`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from gridctl.field.files import write_atomic
from gridctl.field.security_modes import SecurityConfigError
from gridctl.field.trust_list import (
    TrustList,
    certificate_from_bytes,
    describe_certificate,
    thumbprint,
)

__all__ = ["DEFAULT_PKI_DIR", "Pki", "TrustedCertificate", "trust_certificate"]

DEFAULT_PKI_DIR = (
    Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "gridctl" / "pki"
)
_CERT_DAYS = 365
_RENEW_BEFORE = dt.timedelta(days=7)


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
