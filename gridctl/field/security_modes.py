"""The words of field security both ends use: an endpoint's message security mode, read from
the operator's ``--security`` list, and the error a security option or file raises."""

from __future__ import annotations

from enum import StrEnum

from asyncua import ua

from gridctl.field.contract import FieldInputError

__all__ = ["SecurityConfigError", "SecurityMode", "parse_modes"]


class SecurityConfigError(FieldInputError):
    """A users file, PKI directory or security option that cannot be used."""


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
