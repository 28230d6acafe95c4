"""edge.io.backoff: the one exponential backoff (live sources, the PACS outbox), on a fake
clock: no real sleeping."""

from __future__ import annotations

import pytest

from edge.io.backoff import Backoff, retry


class FakeClock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_waits_double_up_to_the_cap_and_the_budget_cuts_the_last() -> None:
    clock = FakeClock()
    waits = []
    for wait in Backoff(first_s=0.1, max_s=0.5, budget_s=1.5).waits(clock):
        waits.append(wait)
        clock.now += wait
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.3])  # 1.5 s in all
    assert list(Backoff(first_s=0.5, retries=3).waits(clock)) == [0.5, 1.0, 2.0]
    assert list(Backoff(first_s=0.1, budget_s=0).waits(clock)) == []


def test_retry_stops_at_the_first_answer_and_reports_each_wait() -> None:
    clock, answers, told = FakeClock(), [None, None, "frame"], []
    got = retry(lambda: answers.pop(0), Backoff(first_s=0.1, budget_s=5.0),
                on_wait=lambda n, s: told.append((n, s)), clock=clock, sleep=clock.sleep)
    assert got == "frame" and answers == []
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.4])  # it waits before each try
    assert told == [(1, 0.1), (2, 0.2), (3, pytest.approx(0.4))]


def test_retry_gives_none_once_the_policy_is_spent() -> None:
    clock, tries = FakeClock(), []
    got = retry(lambda: tries.append(clock.now), Backoff(first_s=0.5, retries=2),
                clock=clock, sleep=clock.sleep)
    assert got is None and tries == [0.5, 1.5]  # append returns None: never an answer
    clock = FakeClock()
    assert retry(lambda: None, Backoff(first_s=1.0, max_s=2.0, budget_s=4.0), clock=clock,
                 sleep=clock.sleep) is None
    assert clock.sleeps == [1.0, 2.0, 1.0] and clock.now == 4.0
