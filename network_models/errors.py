"""Errors a person can act on: which file, which element or row, which field, what was expected."""

from __future__ import annotations


class InputError(ValueError):
    """Base of every error caused by input from a person (files, arguments, config, writes).

    The message names the source (file or argument), the element or row and the field, and says
    what was expected. The command line prints it as one line and exits non-zero.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        element: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.element = element
        self.row = row
        self.field = field
        self.detail = message
        where = []
        if source:
            where.append(str(source))
        if row is not None:
            where.append(f"row {row}")
        if element:
            where.append(f"element {element!r}")
        if field:
            where.append(f"field {field!r}")
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class ModelError(InputError):
    """A model file or model name that cannot be used."""
