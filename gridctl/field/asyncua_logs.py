"""asyncua's log as an operator should see it: its warnings, security ones first ("Sending
plain-text password", "password may get transferred in plaintext", untrusted certificates), with
only the messages that are noise here silenced, each by its exact logger and text."""

from __future__ import annotations

import logging

__all__ = ["NOISE", "show_asyncua_warnings"]

NOISE: dict[str, frozenset[str]] = {
    # the server revises what the client asked for; nothing to act on
    "asyncua.client.client": frozenset({
        "Requested session timeout to be %dms, got %dms instead",
        "Revised values returned differ from subscription values: %s",
    }),
    # a refused request: gridctl's client reports it itself (a refused connection, or one
    # status per point of a refused write)
    "asyncua.client.ua_client.UASocketProtocol": frozenset({
        "ServiceFault (%s, diagnostics: %s) from server received %s",
    }),
}


class _Noise(logging.Filter):
    def __init__(self, templates: frozenset[str]) -> None:
        super().__init__()
        self.templates = templates

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.templates


def show_asyncua_warnings() -> None:
    """Let asyncua's warnings through (its logger at WARNING) but the noise above; idempotent."""
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    for name, templates in NOISE.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Noise) for f in logger.filters):
            logger.addFilter(_Noise(templates))
