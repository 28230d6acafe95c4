"""Exponential backoff, written once: a live source reopening its device, the PACS outbox
resending its files.

    policy = Backoff(first_s=0.1, max_s=2.0, budget_s=5.0)   # or retries=2 for a count
    image = retry(reopen_and_grab, policy, on_wait=log)         # None: the policy is spent

The caller has made its first try already (it failed): ``retry`` waits first, then tries
again, doubling the wait each time, until a try returns something (not None) or the policy
is spent. The clock and the sleep are parameters, so tests run it on a fake clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")
GROWTH = 2.0  # each wait is twice the one before, up to max_s


@dataclass(frozen=True)
class Backoff:
    """Waits of first_s, then doubling up to max_s. Spent after ``retries`` waits, or once
    ``budget_s`` seconds have passed since the first wait was due (the last wait is cut to
    what is left), whichever comes first; None = no such bound."""

    first_s: float
    max_s: float = math.inf
    budget_s: float | None = None
    retries: int | None = None

    def waits(self, clock: Callable[[], float] = time.monotonic) -> Iterator[float]:
        """The waits, one per retry; the budget runs from the first next()."""
        deadline = None if self.budget_s is None else clock() + self.budget_s
        delay, done = self.first_s, 0
        while self.retries is None or done < self.retries:
            remaining = math.inf if deadline is None else deadline - clock()
            if remaining <= 0:
                return
            done += 1
            yield min(delay, remaining)
            delay = min(delay * GROWTH, self.max_s)


def retry(attempt: Callable[[], T | None], policy: Backoff, *,
          on_wait: Callable[[int, float], None] | None = None,
          clock: Callable[[], float] | None = None,
          sleep: Callable[[float], None] | None = None) -> T | None:
    """Wait, call ``attempt()``; again after each of the policy's waits until it returns
    something other than None, which is returned; None once the policy is spent.
    ``on_wait(retry number, seconds)`` is called before each wait (a log line).
    clock/sleep default to time.monotonic/time.sleep, looked up at call time."""
    clock = clock or time.monotonic
    sleep = sleep or time.sleep
    for number, wait in enumerate(policy.waits(clock), start=1):
        if on_wait is not None:
            on_wait(number, wait)
        sleep(wait)
        result = attempt()
        if result is not None:
            return result
    return None
