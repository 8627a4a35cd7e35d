"""Timers: functions the engine runs when their time comes.

Time is whatever clock the engine was given (nanoseconds), so tests drive
timers exactly by advancing a fake clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(order=True)
class Timer:
    """Runs ``fn`` ``delay_ns`` after activation, again every ``delay_ns``
    when ``repeating``."""

    due: int = field(init=False, default=0)
    seq: int = field(init=False, default=0)
    name: str = field(compare=False, default="timer")
    fn: Callable[[], object] = field(compare=False, default=lambda: None)
    delay_ns: int = field(compare=False, default=0)
    repeating: bool = field(compare=False, default=False)
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        """Stops the timer (it is dropped when it comes due)."""
        self.cancelled = True


class Timers:
    """The engine's pending timers, earliest first."""

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = itertools.count()

    def activate(self, timer: Timer, now: int) -> Timer:
        """Schedules ``timer`` for ``now + delay``."""
        if timer.repeating and timer.delay_ns <= 0:
            raise ValueError(f"timer {timer.name!r}: a repeating timer needs a positive delay")
        timer.due = now + timer.delay_ns
        timer.seq = next(self._seq)
        timer.cancelled = False
        heapq.heappush(self._heap, timer)
        return timer

    def next_due(self) -> int | None:
        """When the earliest timer is due, or None."""
        return self._heap[0].due if self._heap else None

    def run_due(self, now: int) -> int:
        """Runs every timer due at ``now``; returns how many ran."""
        ran = 0
        heap = self._heap
        while heap and heap[0].due <= now:
            timer = heapq.heappop(heap)
            if timer.cancelled:
                continue
            timer.fn()
            ran += 1
            if timer.repeating and not timer.cancelled:
                # Keep the period; after a long pause run once, not a burst.
                timer.due += timer.delay_ns
                if timer.due <= now:
                    timer.due = now + timer.delay_ns
                timer.seq = next(self._seq)
                heapq.heappush(heap, timer)
        return ran

    def __len__(self) -> int:
        return sum(1 for t in self._heap if not t.cancelled)
