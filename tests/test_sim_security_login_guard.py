"""Failed logins slowed down per user and per address, accounts locked out: the guard's rules on a
clock the test moves (no waiting)."""

from __future__ import annotations

import asyncio

import pytest

from gridctl.field.contract import FieldInputError
from gridctl.field.login_guard import LoginGuard, LoginPolicy, LoginRefusal

POLICY = LoginPolicy(first_delay_s=0.5, max_delay_s=8.0, lockout_after=5, lockout_s=900.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Passwords:
    """A password check that counts its calls; only ``right`` is right."""

    def __init__(self, right: str = "right") -> None:
        self.right = right
        self.checked = 0

    def check(self, user: str, password: str):
        async def verify() -> str | None:
            self.checked += 1
            return user if password == self.right else None
        return verify


async def _try(guard: LoginGuard, passwords: _Passwords, clock: _Clock, user: str,
               password: str, address: str = "10.0.0.1"):
    """An attempt by a client that waits for each answer, as a person or a script does."""
    outcome = await guard.attempt(user, address, passwords.check(user, password))
    clock.now += outcome.wait_s
    return outcome


def test_the_delay_doubles_from_half_a_second_to_eight():
    assert [POLICY.delay_s(k) for k in range(7)] == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


async def test_wrong_passwords_are_answered_ever_later_and_five_lock_the_account():
    clock, passwords = _Clock(), _Passwords()
    guard = LoginGuard(POLICY, clock=clock)
    waits = []
    for i in range(5):
        outcome = await _try(guard, passwords, clock, "op", f"guess-{i}")
        assert outcome.refusal == LoginRefusal.WRONG_PASSWORD
        waits.append(outcome.wait_s)
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert guard.locked("op")
    for password in ("guess-5", "right"):  # locked: refused unjudged, the right one too
        outcome = await _try(guard, passwords, clock, "op", password)
        assert outcome.refusal == LoginRefusal.LOCKED and outcome.locked_for_s > 0
    assert passwords.checked == 5


async def test_a_lockout_runs_out_and_the_right_password_then_passes():
    clock, passwords = _Clock(), _Passwords()
    guard = LoginGuard(POLICY, clock=clock)
    for i in range(5):
        await _try(guard, passwords, clock, "op", f"guess-{i}")
    clock.now += POLICY.lockout_s
    outcome = await _try(guard, passwords, clock, "op", "right")
    assert outcome.accepted and outcome.account == "op"
    assert not guard.locked("op")


async def test_an_attempt_before_the_delay_is_over_is_refused_without_a_check():
    clock, passwords = _Clock(), _Passwords()
    guard = LoginGuard(POLICY, clock=clock)
    first = await guard.attempt("op", "10.0.0.1", passwords.check("op", "guess"))
    assert first.wait_s == 0.5
    # a second connection does not wait for the first answer
    second = await guard.attempt("op", "10.0.0.2", passwords.check("op", "right"))
    assert second.refusal == LoginRefusal.THROTTLED
    other_user = await guard.attempt("view", "10.0.0.1", passwords.check("view", "right"))
    assert other_user.refusal == LoginRefusal.THROTTLED  # the address is throttled too
    assert passwords.checked == 1
    clock.now += first.wait_s
    assert (await guard.attempt("op", "10.0.0.2", passwords.check("op", "right"))).accepted


async def test_an_address_guessing_across_names_is_slowed_down_though_no_name_locks():
    clock, passwords = _Clock(), _Passwords()
    guard = LoginGuard(POLICY, clock=clock)
    waits = [(await _try(guard, passwords, clock, f"user{i}", "guess")).wait_s for i in range(6)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    assert not any(guard.locked(f"user{i}") for i in range(6))


async def test_a_success_clears_the_users_failures_but_not_the_addresss():
    clock, passwords = _Clock(), _Passwords()
    guard = LoginGuard(POLICY, clock=clock)
    for i in range(4):
        await _try(guard, passwords, clock, "op", f"guess-{i}")
    assert (await _try(guard, passwords, clock, "op", "right")).accepted
    again = await _try(guard, passwords, clock, "op", "typo")
    assert again.user_failures == 1 and again.address_failures == 5
    assert again.wait_s == 8.0  # the address's count, not the user's, sets the pace
    assert not guard.locked("op")


async def test_unknown_names_lock_like_known_ones():
    clock, passwords = _Clock(), _Passwords()
    guard = LoginGuard(POLICY, clock=clock)
    for i in range(5):
        await _try(guard, passwords, clock, "nobody", f"guess-{i}", address=f"10.0.1.{i}")
    assert guard.locked("nobody")


async def test_parallel_attempts_for_one_name_are_judged_one_at_a_time():
    clock, passwords = _Clock(), _Passwords()
    guard = LoginGuard(POLICY, clock=clock)
    release = asyncio.Event()
    judged_at_once = 0
    running = 0

    def slow_check(password: str):
        async def verify() -> str | None:
            nonlocal running, judged_at_once
            running += 1
            judged_at_once = max(judged_at_once, running)
            await release.wait()
            running -= 1
            passwords.checked += 1
            return None
        return verify

    attempts = [asyncio.create_task(guard.attempt("op", f"10.0.0.{i}", slow_check(f"g{i}")))
                for i in range(10)]
    await asyncio.sleep(0)
    release.set()
    outcomes = await asyncio.gather(*attempts)
    assert judged_at_once == 1
    assert passwords.checked == 1  # the others came while the first failure's delay ran
    assert sum(o.refusal == LoginRefusal.THROTTLED for o in outcomes) == 9


@pytest.mark.parametrize(("settings", "field"), [
    ({"first_delay_s": -1.0}, "first_delay_s"),
    ({"max_delay_s": 0.1}, "max_delay_s"),
    ({"lockout_after": 0}, "lockout_after"),
    ({"lockout_s": float("nan")}, "lockout_s"),
])
def test_a_bad_login_policy_is_refused_naming_the_field(settings, field):
    with pytest.raises(FieldInputError, match=f"field '{field}'"):
        LoginPolicy(**settings)
