"""The trust list: read as it is at every new connection, certificates stored by thumbprint,
refusals logged as one line."""

from __future__ import annotations

import hashlib
import logging
import socket
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gridctl.cli import main
from gridctl.field.security import (
    AnonymousPolicy,
    ClientSecurity,
    Pki,
    Role,
    SecurityMode,
    ServerSecurity,
    UserAccount,
    UserStore,
    hash_password,
    trust_certificate,
)
from gridctl.field.trust_list import TrustList
from gridctl.field_client import FieldClient, FieldConnectionError
from hil_sim.server import SimServer
from network_models import load_model

CLIENT_URI = f"urn:{socket.gethostname()}:gridctl-client"


def _client_certificate(pki: Path) -> Path:
    cert_path, _ = Pki(pki).ensure_own_certificate("gridctl-client", CLIENT_URI, server=False)
    return cert_path


def _as_pem(der_path: Path, target: Path) -> Path:
    """The certificate as a tool would export it (PEM, its own file name)."""
    cert = x509.load_der_x509_certificate(der_path.read_bytes())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(cert.public_bytes(Encoding.PEM))
    return target


@pytest.fixture
async def server(tmp_path):
    users = UserStore.of(UserAccount(name="op", role=Role.OPERATOR,
                                     password_hash=hash_password("pw", iterations=1000)))
    security = ServerSecurity(modes=(SecurityMode.SIGN_ENCRYPT,), pki_dir=tmp_path / "server",
                              users=users, anonymous=AnonymousPolicy.VIEWER)
    sim = SimServer(load_model("cigre_mv"), port=0, step_mode=True, start="2026-07-15 12:00",
                    security=security)
    await sim.start()
    yield sim
    await sim.stop()


def _connect(server: SimServer, pki: Path) -> FieldClient:
    return FieldClient(server.endpoint, server.simulator.contract, timeout_s=30.0,
                       security=ClientSecurity(mode=SecurityMode.SIGN_ENCRYPT, pki_dir=pki,
                                               username="op", password="pw"))


def _trust_both_ways(server: SimServer, client_pki: Path) -> Path:
    server_pki = server.security.pki_dir
    trust_certificate(client_pki, Pki(server_pki).certificate_path("gridctl-sim"))
    return trust_certificate(server_pki, _client_certificate(client_pki)).path


async def test_a_certificate_removed_from_trusted_is_refused_at_its_next_connection(
        server, tmp_path, caplog):
    client_pki = tmp_path / "client"
    stored = _trust_both_ways(server, client_pki)
    async with _connect(server, client_pki) as client:
        assert (await client.read([("pv_3", "p_mw")]))[0].good
    stored.unlink()  # the administrator revokes the client, the server keeps running
    caplog.clear()
    with caplog.at_level(logging.INFO), pytest.raises(FieldConnectionError,
                                                      match="BadCertificateUntrusted"):
        async with _connect(server, client_pki):
            pass
    der = _client_certificate(client_pki).read_bytes()
    digest = hashlib.sha256(der).hexdigest()
    about_it = [r for r in caplog.records if digest in r.getMessage()]
    assert len(about_it) == 1  # one line: whose, thumbprint, why
    line = about_it[0].getMessage()
    assert "certificate refused" in line and "CN=" in line and CLIENT_URI in line
    assert "not in the trust list" in line
    assert all(r.exc_info is None for r in caplog.records)  # no tracebacks
    assert (Pki(server.security.pki_dir).rejected_dir / f"{digest}.der").read_bytes() == der
    # trusted again: accepted again, without a restart
    trust_certificate(server.security.pki_dir, _client_certificate(client_pki))
    async with _connect(server, client_pki):
        pass


async def test_two_clients_whose_certificate_files_share_a_name_are_both_trusted(
        server, tmp_path):
    server_pki = server.security.pki_dir
    stored = []
    for name in ("first", "second"):
        client_pki = tmp_path / name
        trust_certificate(client_pki, Pki(server_pki).certificate_path("gridctl-sim"))
        exported = _as_pem(_client_certificate(client_pki),
                           tmp_path / f"{name}-export" / "client_certificate.pem")
        stored.append(trust_certificate(server_pki, exported))
    assert all(s.added for s in stored)
    assert stored[0].path != stored[1].path
    for s in stored:
        assert s.path.name == f"{s.thumbprint}.der"
        assert hashlib.sha256(s.path.read_bytes()).hexdigest() == s.thumbprint
    for name in ("first", "second"):
        async with _connect(server, tmp_path / name) as client:
            assert (await client.read([("pv_3", "p_mw")]))[0].good


def test_trusting_a_certificate_twice_keeps_it_once_and_says_it_was_there(tmp_path):
    cert = _client_certificate(tmp_path / "client")
    first = trust_certificate(tmp_path / "pki", cert)
    again = trust_certificate(tmp_path / "pki", _as_pem(cert, tmp_path / "copy.pem"))
    assert first.added and not again.added
    assert again.path == first.path
    assert [p.name for p in (tmp_path / "pki" / "trusted").iterdir()] == [first.path.name]
    assert again.describe().startswith("already trusted: CN=")


def test_gridctl_sim_trust_says_what_it_stored_and_never_overwrites(tmp_path, capsys):
    first = _as_pem(_client_certificate(tmp_path / "a"), tmp_path / "a-out" / "client.pem")
    second = _as_pem(_client_certificate(tmp_path / "b"), tmp_path / "b-out" / "client.pem")
    pki = str(tmp_path / "pki")
    assert main(["sim", "trust", str(first), "--pki", pki]) == 0
    assert main(["sim", "trust", str(second), "--pki", pki]) == 0
    assert main(["sim", "trust", str(first), "--pki", pki]) == 0
    lines = capsys.readouterr().out.splitlines()
    digests = [hashlib.sha256(x509.load_pem_x509_certificate(p.read_bytes()).public_bytes(
        Encoding.DER)).hexdigest() for p in (first, second)]
    assert lines[0].startswith("trusted: CN=") and digests[0] in lines[0]
    assert lines[1].startswith("trusted: CN=") and digests[1] in lines[1]
    assert lines[2].startswith("already trusted: CN=") and digests[0] in lines[2]
    assert sorted(p.name for p in (tmp_path / "pki" / "trusted").iterdir()) == sorted(
        f"{d}.der" for d in digests)


def test_the_trust_list_follows_the_directory_and_ignores_what_is_not_a_certificate(
        tmp_path, caplog):
    der = _client_certificate(tmp_path / "client").read_bytes()
    trusted = tmp_path / "trusted"
    listing = TrustList(trusted)
    assert not listing.contains(der)  # no directory yet
    trusted.mkdir()
    (trusted / "notes.der").write_text("not a certificate")
    (trusted / f".{hashlib.sha256(der).hexdigest()}.der.tmp1").write_bytes(der)  # half written
    with caplog.at_level(logging.WARNING):
        assert not listing.contains(der)
        assert not listing.contains(der)
    assert len([r for r in caplog.records if "notes.der" in r.getMessage()]) == 1
    (trusted / "peer.der").write_bytes(der)
    assert listing.contains(der)
    (trusted / "peer.der").unlink()
    assert not listing.contains(der)
