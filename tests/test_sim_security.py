"""Security of the field link: password hashes, users files, certificates and the trust list."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509

from gridctl.field.security import (
    Pki,
    Role,
    SecurityConfigError,
    SecurityMode,
    UserAccount,
    UserStore,
    add_user,
    hash_password,
    load_users,
    parse_modes,
    trust_certificate,
    verify_password,
)


def test_a_password_hash_verifies_only_its_password_and_is_salted():
    first, second = hash_password("s3cret", iterations=1000), hash_password("s3cret",
                                                                           iterations=1000)
    assert first != second  # a fresh salt each time
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("s3cret ", first)
    assert not verify_password("s3cret", "plain-text")


def test_a_users_file_stores_hashes_never_passwords_and_only_for_its_owner(tmp_path):
    path = tmp_path / "users.yaml"
    add_user(path, "op1", "operator", "correct horse", iterations=1000)
    add_user(path, "v1", Role.VIEWER, "battery staple", iterations=1000)
    add_user(path, "op1", "operator", "new password", iterations=1000)  # replaces
    text = path.read_text()
    assert "correct horse" not in text and "new password" not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    store = load_users(path)
    assert sorted(store.users) == ["op1", "v1"]
    assert store.authenticate("op1", "new password").role == Role.OPERATOR
    assert store.authenticate("op1", "correct horse") is None
    assert store.authenticate("nobody", "x") is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("users:\n  - {name: a, role: admin, password_hash: 'pbkdf2_sha256$1$AA==$AA=='}\n",
         r"row 0: element 'a': field 'role': unknown role 'admin'"),
        ("users:\n  - {name: a, role: viewer, password_hash: hunter2}\n",
         r"row 0: element 'a': field 'password_hash': expected a pbkdf2_sha256 hash"),
        ("users:\n  - {name: a, role: viewer, password_hash: 'pbkdf2_sha256$1$AA==$AA=='}\n"
         "  - {name: a, role: viewer, password_hash: 'pbkdf2_sha256$1$AA==$AA=='}\n",
         r"row 1: field 'name': user 'a' appears twice"),
        ("users: {a: b}\n", r"field 'users': expected a mapping with a 'users' list"),
    ],
)
def test_a_bad_users_file_is_refused_naming_the_file_row_and_field(tmp_path, content, expected):
    path = tmp_path / "users.yaml"
    path.write_text(content)
    with pytest.raises(SecurityConfigError, match=expected) as info:
        load_users(path)
    assert str(path) in str(info.value)


def test_a_missing_users_file_says_how_to_make_one(tmp_path):
    with pytest.raises(SecurityConfigError, match="gridctl sim user-add"):
        load_users(tmp_path / "none.yaml")


def test_the_certificate_is_created_on_first_run_trusted_locally_and_then_reused(tmp_path):
    pki = Pki(tmp_path / "pki")
    cert_path, key_path = pki.ensure_own_certificate("sim", "urn:test:sim", server=True)
    cert = x509.load_der_x509_certificate(cert_path.read_bytes())
    uris = cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == ["urn:test:sim"]
    assert cert.public_key().key_size >= 2048
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert (pki.trusted_dir / "sim.der").read_bytes() == cert_path.read_bytes()
    again, _ = pki.ensure_own_certificate("sim", "urn:test:sim", server=True)
    assert again.read_bytes() == cert_path.read_bytes()
    first_der = cert_path.read_bytes()
    renewed, _ = pki.ensure_own_certificate("sim", "urn:test:other", server=True)
    assert renewed.read_bytes() != first_der  # another application URI needs a new certificate


def test_trusting_something_that_is_not_a_certificate_is_refused(tmp_path):
    bogus = tmp_path / "peer.der"
    bogus.write_bytes(b"not a certificate")
    with pytest.raises(SecurityConfigError, match=r"not an X\.509 certificate"):
        trust_certificate(tmp_path / "pki", bogus)
    assert not (tmp_path / "pki" / "trusted" / "peer.der").exists()


def test_security_modes_are_read_from_a_comma_list():
    assert parse_modes("sign, encrypt") == (SecurityMode.SIGN, SecurityMode.SIGN_ENCRYPT)
    assert parse_modes("none") == (SecurityMode.NONE,)
    with pytest.raises(SecurityConfigError, match="unknown security mode 'rsa'"):
        parse_modes("sign,rsa")


def test_a_users_file_with_a_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  - {name: a, role: viewer, role: operator,\n"
                    "     password_hash: 'pbkdf2_sha256$1$AA==$AA=='}\n")
    with pytest.raises(SecurityConfigError, match="role") as info:
        load_users(path)
    assert str(path) in str(info.value)


def test_an_unknown_user_costs_the_same_hash_as_a_known_one(monkeypatch):
    import gridctl.field.users as security

    store = UserStore.of(UserAccount(name="op", role=Role.OPERATOR,
                                     password_hash=hash_password("pw", iterations=1234)))
    checked: list[str] = []
    verify = security.verify_password
    monkeypatch.setattr(security, "verify_password",
                        lambda password, encoded: checked.append(encoded) or verify(password,
                                                                                    encoded))
    assert store.authenticate("nobody", "pw") is None
    assert store.authenticate("op", "wrong") is None
    assert [c.split("$")[1] for c in checked] == ["1234", "1234"]
