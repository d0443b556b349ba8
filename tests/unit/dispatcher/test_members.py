"""Member connections (`members`): rate limiter, breaker, guarded requests."""

from __future__ import annotations

import time

import pytest

from foot.kube.errors import KubeUnavailableError
from foot_dispatcher.members import Breaker, Member, MemberUnavailableError, RateLimiter


async def test_rate_limiter_spaces_acquisitions_after_the_burst() -> None:
    limiter = RateLimiter(rate=100.0, burst=5)
    started = time.monotonic()
    for _ in range(15):
        await limiter.acquire()
    elapsed = time.monotonic() - started
    assert elapsed >= 0.09, "ten acquisitions beyond the burst at 100/s take 0.1 s"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_breaker_fails_fast_while_open_and_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = Breaker("m1", base_seconds=1.0, max_seconds=4.0, clock=clock)
    assert breaker.admit() is False  # closed: every request goes, none is a probe
    breaker.failed(False, "PATCH timed out")
    breaker.failed(False, "GET timed out")  # sent before it opened: the same outage
    with pytest.raises(MemberUnavailableError, match="member m1 does not answer"):
        breaker.admit()
    clock.now += 1.0
    assert breaker.admit() is True  # the probe
    with pytest.raises(MemberUnavailableError):
        breaker.admit()  # one probe at a time
    breaker.failed(True, "PATCH timed out")  # the wait doubles: 2 s
    clock.now += 1.5
    with pytest.raises(MemberUnavailableError):
        breaker.admit()
    clock.now += 0.5
    assert breaker.admit() is True
    breaker.failed(True, "refused")  # 4 s
    clock.now += 4.0
    assert breaker.admit() is True
    breaker.failed(True, "refused")  # capped at 4 s
    clock.now += 4.0
    assert breaker.admit() is True
    assert breaker.answered(True) is True  # closed by the answer
    assert breaker.error is None
    assert breaker.admit() is False
    assert breaker.answered(False) is False  # already closed
    breaker.failed(False, "refused")  # opens again with the base wait
    clock.now += 1.0
    assert breaker.admit() is True
    breaker.abandoned(True)  # cancelled: the next request may probe
    assert breaker.admit() is True


def why_open(member: Member) -> str | None:
    """The breaker's error, read afresh (not narrowed by an earlier assert)."""
    return member.breaker.error


async def test_a_guarded_request_tells_the_breaker_what_the_member_did() -> None:
    clock = Clock()
    back: list[str] = []
    member = Member(
        name="m1",
        kube=None,  # type: ignore[arg-type]  # not used by guarded()
        applier=None,  # type: ignore[arg-type]
        limiter=RateLimiter(rate=100.0, burst=5),
        breaker=Breaker("m1", base_seconds=1.0, max_seconds=4.0, clock=clock),
        on_answering_again=back.append,
    )
    with pytest.raises(KubeUnavailableError), member.guarded():
        raise KubeUnavailableError("https://m1", "answered 503", status=503)
    assert why_open(member) is None, "a 503 is an answer"
    with pytest.raises(KubeUnavailableError), member.guarded():
        raise KubeUnavailableError("https://m1", "PATCH /x timed out")
    assert why_open(member) == "https://m1: PATCH /x timed out"
    with pytest.raises(MemberUnavailableError), member.guarded():
        pytest.fail("not reached: the breaker is open")
    clock.now += 1.0
    with member.guarded():
        pass  # the probe gets an answer
    assert back == ["m1"]
    assert why_open(member) is None
