"""Password guessing made slow: failed logins delayed per user and per peer address, accounts
locked after consecutive failures.

- After ``k`` consecutive failures of a user name, or ``k`` recent failures from one address, the
  answer to a failure is held back ``first_delay_s * 2**(k-1)`` (at most ``max_delay_s``) and
  no attempt for that name or from that address is judged before that delay has passed: an
  attempt that comes sooner (from a second connection) is refused as throttled without its
  password being checked, so parallel connections guess no faster.
- ``lockout_after`` consecutive failures lock the user name for ``lockout_s``; while it is
  locked every attempt is refused without its password being checked, the right one too.
  Unknown names are tracked like known ones, so a lockout does not tell which names exist.
- A success clears the user name's failures; an address's failures (and a name's, if no
  success came) are forgotten ``lockout_s`` after the last one, so a valid login of one account
  does not reset what an address did against others.
- Attempts for one name or from one address are judged one at a time; waiting for a turn or
  for the password check never blocks the event loop (the check runs where ``verify`` puts it:
  a worker thread for a PBKDF2 hash), and the caller holds a refusal back with
  ``asyncio.sleep``.

Times are monotonic seconds (``clock``), not wall time.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum

from gridctl.field.contract import FieldInputError

__all__ = ["LoginGuard", "LoginOutcome", "LoginPolicy", "LoginRefusal"]

_PRUNE_ABOVE = 1024  # tracked names or addresses before the forgotten ones are dropped


@dataclass(frozen=True, kw_only=True)
class LoginPolicy:
    """How failed logins are slowed down and when an account is locked (seconds)."""

    first_delay_s: float = 0.5
    max_delay_s: float = 8.0
    lockout_after: int = 5
    lockout_s: float = 900.0

    def __post_init__(self) -> None:
        for name in ("first_delay_s", "max_delay_s", "lockout_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise FieldInputError(f"{value!r}: expected a number of seconds >= 0", field=name)
        if self.max_delay_s < self.first_delay_s:
            raise FieldInputError(f"{self.max_delay_s!r}: expected at least first_delay_s "
                                  f"({self.first_delay_s!r})", field="max_delay_s")
        if not (isinstance(self.lockout_after, int) and self.lockout_after >= 1):
            raise FieldInputError(f"{self.lockout_after!r}: expected a count of failures >= 1",
                                  field="lockout_after")

    def delay_s(self, failures: int) -> float:
        """The wait after the ``failures``-th consecutive failure (0 before the first)."""
        if failures <= 0:
            return 0.0
        return min(self.first_delay_s * 2.0 ** min(failures - 1, 60), self.max_delay_s)


class LoginRefusal(StrEnum):
    """Why a login was refused (the audit's words)."""

    WRONG_PASSWORD = "wrong password or unknown user"
    LOCKED = "account locked"
    THROTTLED = "too soon after a failed login"


@dataclass(frozen=True, kw_only=True)
class LoginOutcome:
    """The guard's verdict on one attempt: the account's name or why it was refused."""

    account: str | None  # the verified account, None when refused
    refusal: LoginRefusal | None
    user_failures: int  # consecutive failures of the user name, this attempt included
    address_failures: int
    wait_s: float  # how long the answer was held back
    locked_for_s: float  # remaining lockout of the user name (0: not locked)

    @property
    def accepted(self) -> bool:
        return self.account is not None

    def describe(self) -> str:
        """One phrase for the audit log."""
        if self.refusal is None:
            return "accepted"
        text = str(self.refusal)
        if self.refusal == LoginRefusal.WRONG_PASSWORD:
            text += f" ({self.user_failures} consecutive for this user"
            text += f", {self.address_failures} from this address)"
        if self.locked_for_s > 0:
            text += f"; locked for {self.locked_for_s:.0f} s more"
        if self.wait_s > 0:
            text += f"; answered after {self.wait_s:.1f} s"
        return text


@dataclass
class _Track:
    """Failures of one user name or one address."""

    failures: int = 0
    last_failure: float = -math.inf
    not_before: float = -math.inf  # no attempt is judged before this
    locked_until: float = -math.inf
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)


class LoginGuard:
    """Judges login attempts under a :class:`LoginPolicy` (see the module docstring)."""

    def __init__(self, policy: LoginPolicy | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or LoginPolicy()
        self._clock = clock
        self._users: dict[str, _Track] = {}
        self._addresses: dict[str, _Track] = {}

    async def attempt(self, user: str, address: str,
                      verify: Callable[[], Awaitable[str | None]]) -> LoginOutcome:
        """Judge one attempt of ``user`` from ``address`` (a host, without port); ``verify``
        checks the password and returns the account's name or None. It is not called while the
        name is locked or the name or address is throttled. The caller holds a refusal's answer
        back for ``wait_s`` (without blocking the event loop: ``asyncio.sleep``)."""
        policy = self.policy
        user_track, address_track = self._track(self._users, user), self._track(
            self._addresses, address)
        # one judgement at a time per name and per address; always the name's turn first, so
        # two attempts never wait for each other
        async with user_track.turn, address_track.turn:
            now = self._clock()
            self._forget_old(user_track, now)
            self._forget_old(address_track, now)
            if user_track.locked_until > now:
                refusal = LoginRefusal.LOCKED
            elif max(user_track.not_before, address_track.not_before) > now:
                refusal = LoginRefusal.THROTTLED
            else:
                account = await verify()
                now = self._clock()
                if account is not None:
                    user_track.failures = 0
                    user_track.not_before = -math.inf
                    return LoginOutcome(account=account, refusal=None, user_failures=0,
                                        address_failures=address_track.failures, wait_s=0.0,
                                        locked_for_s=0.0)
                refusal = LoginRefusal.WRONG_PASSWORD
                self._fail(user_track, now)
                self._fail(address_track, now)
                if user_track.failures >= policy.lockout_after:
                    user_track.locked_until = now + policy.lockout_s
            # a refusal is answered when the name and the address may try again (a locked
            # name's refusals cost no hash, so they are not held back beyond that)
            wait_s = max(user_track.not_before, address_track.not_before, now) - now
            outcome = LoginOutcome(
                account=None, refusal=refusal, user_failures=user_track.failures,
                address_failures=address_track.failures, wait_s=wait_s,
                locked_for_s=max(user_track.locked_until - now, 0.0))
        return outcome

    def locked(self, user: str) -> bool:
        """True while ``user`` is locked out."""
        track = self._users.get(user)
        return track is not None and track.locked_until > self._clock()

    def _fail(self, track: _Track, now: float) -> None:
        track.failures += 1
        track.last_failure = now
        track.not_before = now + self.policy.delay_s(track.failures)

    def _forget_old(self, track: _Track, now: float) -> None:
        if track.locked_until > now:
            return
        if track.locked_until > -math.inf or now - track.last_failure > self.policy.lockout_s:
            # a lockout has run out, or the last failure is long past: a fresh start
            track.locked_until = -math.inf
            track.failures = 0

    def _track(self, tracks: dict[str, _Track], key: str) -> _Track:
        track = tracks.get(key)
        if track is None:
            if len(tracks) >= _PRUNE_ABOVE:
                self._prune(tracks)
            track = tracks[key] = _Track()
        return track

    def _prune(self, tracks: dict[str, _Track]) -> None:
        now = self._clock()
        for key in [k for k, t in tracks.items()
                    if not t.turn.locked() and t.locked_until <= now
                    and now - t.last_failure > self.policy.lockout_s]:
            del tracks[key]
