"""Errors of the simulator that a person can act on."""

from __future__ import annotations

from network_models.errors import InputError


class SimulatorInputError(InputError):
    """A fault-injection target, option or write the simulator cannot use; says what it expected."""
