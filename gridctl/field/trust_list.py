"""The trust list: the peer certificates ``trusted/`` holds now, and the check of a peer's
certificate against it.

A peer is trusted when its certificate itself (the same DER bytes, compared by SHA-256
thumbprint) is a file of ``trusted/`` (``.der`` or ``.pem``, any name; files whose name starts
with a dot are skipped, such as the temporary files of an atomic write). The directory is listed
at every check (names, inodes, sizes, modification times: a few microseconds) and re-read when
the listing changed, so a certificate removed from it is refused at the peer's next connection
and one added is accepted without a restart. Certificates issued by a trusted CA are not
accepted: the list names each peer.

A refused certificate is kept in ``rejected/`` (under its thumbprint) for an administrator to
review, and described in one line: whose it is, its thumbprint and why it was refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from gridctl.field.files import write_atomic

__all__ = [
    "CertificateCheck",
    "CertificateRefusal",
    "TrustList",
    "certificate_from_bytes",
    "describe_certificate",
    "thumbprint",
]

_log = logging.getLogger("gridctl.field.trust")

_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


def thumbprint(der: bytes) -> str:
    """A certificate's SHA-256 thumbprint: 64 lower-case hex digits of its DER bytes."""
    return hashlib.sha256(der).hexdigest()


def certificate_from_bytes(data: bytes) -> x509.Certificate:
    """A certificate from DER or PEM bytes; ValueError if it is neither."""
    if data.lstrip().startswith(b"-----"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def describe_certificate(cert: x509.Certificate) -> str:
    """Whose a certificate is, for a person: its common name and application URI."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    who = f"CN={names[0].value}" if names else cert.subject.rfc4514_string() or "no subject"
    with contextlib.suppress(x509.ExtensionNotFound):
        uris = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
        if uris:
            who += f" ({uris[0]})"
    return who


class TrustList:
    """The thumbprints of the certificates in one ``trusted/`` directory, as it is now."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._listing: tuple[tuple[str, int, int, int], ...] | None = None
        self._thumbprints: frozenset[str] = frozenset()
        self._complained: set[tuple[str, int]] = set()

    def contains(self, der: bytes) -> bool:
        """True if these certificate bytes are in the directory now."""
        self._refresh()
        return thumbprint(der) in self._thumbprints

    # asyncua's CertificateValidator asks a trust store these two questions
    def is_trusted(self, cert: x509.Certificate) -> bool:
        return self.contains(cert.public_bytes(Encoding.DER))

    def is_revoked(self, cert: x509.Certificate) -> bool:
        return False  # revoking is removing the file: is_trusted says no

    def files_of(self, der: bytes) -> list[Path]:
        """The files of the directory that hold these certificate bytes."""
        self._refresh()
        wanted = thumbprint(der)
        return [path for path, digest in self._read_all() if digest == wanted]

    def _refresh(self) -> None:
        listing = self._list()
        if listing == self._listing:
            return
        self._thumbprints = frozenset(digest for _, digest in self._read_all())
        self._listing = listing

    def _list(self) -> tuple[tuple[str, int, int, int], ...]:
        entries = []
        try:
            with os.scandir(self.directory) as scan:
                for entry in scan:
                    if entry.name.startswith(".") or not entry.name.lower().endswith(
                            _CERT_SUFFIXES):
                        continue
                    with contextlib.suppress(OSError):
                        st = entry.stat()
                        entries.append((entry.name, st.st_ino, st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            return ()
        return tuple(sorted(entries))

    def _read_all(self) -> list[tuple[Path, str]]:
        found = []
        for name, _, _, mtime_ns in self._list():
            path = self.directory / name
            try:
                cert = certificate_from_bytes(path.read_bytes())
            except (OSError, ValueError) as exc:
                if (name, mtime_ns) not in self._complained:  # once per version of the file
                    self._complained.add((name, mtime_ns))
                    _log.warning("%s: not a certificate, ignored (%s)", path,
                                 getattr(exc, "strerror", None) or "expected DER or PEM")
                continue
            found.append((path, thumbprint(cert.public_bytes(Encoding.DER))))
        return found


@dataclass(frozen=True, kw_only=True)
class CertificateRefusal:
    """Why a peer's certificate was refused."""

    status: int  # an OPC UA status code (BadCertificateUntrusted, ...)
    who: str
    thumbprint: str
    reason: str

    def line(self) -> str:
        return f"certificate refused: {self.who}, sha256 {self.thumbprint}: {self.reason}"


class CertificateCheck:
    """A peer's certificate checked against the trust list and asyncua's validation (validity,
    application URI, key usage); usable as asyncua's certificate validator. A refused one is
    kept in ``rejected/`` and, unless the caller reports it itself, logged as one line."""

    def __init__(self, trusted_dir: Path, rejected_dir: Path, *, peer_is_server: bool) -> None:
        self.trust_list = TrustList(trusted_dir)
        self._rejected_dir = Path(rejected_dir)
        self._peer_is_server = peer_is_server
        peer = (CertificateValidatorOptions.PEER_SERVER if peer_is_server
                else CertificateValidatorOptions.PEER_CLIENT)
        full = CertificateValidatorOptions.TRUSTED_VALIDATION | peer
        self._validator = CertificateValidator(full, self.trust_list)  # type: ignore[arg-type]
        # a session activated again on a new channel brings no application description
        self._without_uri = CertificateValidator(full & ~CertificateValidatorOptions.URI,
                                                 self.trust_list)  # type: ignore[arg-type]

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        refusal = await self.refusal(cert, app)
        if refusal is not None:
            _log.warning("%s", refusal.line())
            raise ServiceError(refusal.status)

    async def refusal(self, cert: x509.Certificate,
                      app: ua.ApplicationDescription | None) -> CertificateRefusal | None:
        """None if the certificate is accepted, otherwise why not (not logged here)."""
        validator = self._validator if app is not None else self._without_uri
        try:
            await validator.validate(cert, app or ua.ApplicationDescription())
        except ServiceError as exc:
            der = cert.public_bytes(Encoding.DER)
            digest = thumbprint(der)
            kept = self._rejected_dir / f"{digest}.der"
            # refusing matters; keeping a copy for the administrator is a courtesy
            with contextlib.suppress(OSError):
                write_atomic(kept, der, mode=0o644)
            return CertificateRefusal(status=exc.code, who=describe_certificate(cert),
                                      thumbprint=digest,
                                      reason=self._reason(exc.code, cert, app, kept))
        return None

    def _reason(self, code: int, cert: x509.Certificate,
                app: ua.ApplicationDescription | None, kept: Path) -> str:
        role = "server" if self._peer_is_server else "client"
        if code == ua.StatusCodes.BadCertificateUntrusted:
            return (f"not in the trust list {self.trust_list.directory} (a copy is in "
                    f"{kept}; `gridctl sim trust` adds it)")
        if code == ua.StatusCodes.BadCertificateTimeInvalid:
            return (f"outside its validity, {cert.not_valid_before_utc:%Y-%m-%d} to "
                    f"{cert.not_valid_after_utc:%Y-%m-%d} (UTC)")
        if code == ua.StatusCodes.BadCertificateUriInvalid:
            uri = app.ApplicationUri if app is not None else None
            return f"made for another application than the {role}'s {uri!r}"
        if code == ua.StatusCodes.BadCertificateUseNotAllowed:
            return f"its key usage does not allow an OPC UA {role}"
        return f"{ua.StatusCode(code).name}"
