"""Errors caused by forecast inputs a person provides (CSV files, arguments)."""

from __future__ import annotations

from network_models.errors import InputError


class ForecastInputError(InputError):
    """A forecast input that cannot be used; the message names the file, row and column."""


class ForecastCoverageError(ForecastInputError):
    """A well-formed input that holds no data for the time asked for (another day's file)."""


class ForecastInputWarning(UserWarning):
    """Forecast input that is used in part; the message names the file and what was left out."""
