"""asyncua's log as an operator should see it: its warnings, security ones first ("Sending
plain-text password", "password may get transferred in plaintext", untrusted certificates), with
only the messages that are noise here silenced, each by its exact logger and text."""

from __future__ import annotations

import logging

__all__ = ["CONNECTION_NOISE", "NOISE", "show_asyncua_warnings"]

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


# a controller that lost its field records the loss itself (an event, one warning line) and
# reconnects; asyncua's own account of it is a traceback a second and warnings on the way out
CONNECTION_NOISE: dict[str, frozenset[str]] = {
    "asyncua.client.ua_session.UaSession": frozenset({
        "Publish iteration crashed; retrying in 1s",
        "close_session was called but connection is closed",
    }),
    "asyncua.client.ua_client.UaClient": frozenset({
        "close_secure_channel was called but connection is closed",
    }),
}


class _Noise(logging.Filter):
    def __init__(self, templates: frozenset[str]) -> None:
        super().__init__()
        self.templates = templates

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg not in self.templates


def show_asyncua_warnings(*, controller: bool = False) -> None:
    """Let asyncua's warnings through (its logger at WARNING) but the noise above (and, for a
    ``controller`` that reports its own lost connections, ``CONNECTION_NOISE``); idempotent."""
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    noise = dict(NOISE)
    if controller:
        for name, templates in CONNECTION_NOISE.items():
            noise[name] = noise.get(name, frozenset()) | templates
    for name, templates in noise.items():
        logger = logging.getLogger(name)
        old = [f for f in logger.filters if isinstance(f, _Noise)]
        if old and old[0].templates >= templates:
            continue
        for f in old:
            logger.removeFilter(f)
        logger.addFilter(_Noise(templates))
