"""One reconnect backoff for every platform and for adapter supervision.

Exponential with jitter, so a fleet of bots (or one bot and its own supervisor) restarting
after the same outage do not hammer the server in lock-step. ``reset()`` after a success
starts the next failure series from ``initial`` again.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays of ``initial * 2**n`` seconds, each jittered by ±``jitter``, capped at ``cap``.

    The cap holds after jitter too, so a capped delay is never longer than ``cap``.
    """

    def __init__(
        self,
        initial: float,
        cap: float,
        *,
        jitter: float = 0.25,
        upward: bool = False,
        rng: Callable[[], float] = random.random,
    ) -> None:
        """``upward`` jitters only above the nominal delay (never retry sooner than it)."""
        self.initial = max(0.01, initial)
        self.cap = max(self.initial, cap)
        self.jitter = jitter
        self.upward = upward
        self._rng = rng
        self.attempt = 0

    def next(self) -> float:
        """The delay before the next attempt (and count this attempt)."""
        base: float = min(self.cap, self.initial * 2**self.attempt)
        self.attempt += 1
        r = self._rng()
        spread = 1.0 + self.jitter * (r if self.upward else 2.0 * r - 1.0)
        return round(min(self.cap, base * spread), 3)

    def reset(self) -> None:
        self.attempt = 0
