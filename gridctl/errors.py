"""Errors caused by what a person gave gridctl (arguments, config, files)."""

from __future__ import annotations

from network_models.errors import InputError


class UserInputError(InputError):
    """Bad argument or config; the message names it, the field and what was expected."""
