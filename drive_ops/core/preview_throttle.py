"""When a sampler may spend time on a fresh preview of the whole clip.

Decoding and encoding every frame of a long clip each step would slow sampling down;
the throttle keeps the previews' share of the elapsed time under a budget (2 % by
default): a fresh preview is due only while the time spent on previews so far, plus
what the last one cost, stays within ``budget`` of the time since sampling started.
"""

from __future__ import annotations

import time
from typing import Callable

PREVIEW_BUDGET = 0.02
"""Share of the sampling time previews may take."""


class PreviewThrottle:
    """``due()`` says whether to make a preview now; ``spend(seconds)`` records what one cost."""

    def __init__(self, budget: float = PREVIEW_BUDGET, clock: Callable[[], float] = time.perf_counter):
        if not 0.0 < budget < 1.0:
            raise ValueError(f"the preview budget is a share of the time in (0, 1), got {budget}")
        self.budget = budget
        self.clock = clock
        self.start = clock()
        self.spent = 0.0
        self.last_cost = 0.0
        self.count = 0

    def due(self) -> bool:
        """True when one more preview (costing about the last one's time) keeps the total within the budget."""
        return self.spent + self.last_cost <= self.budget * (self.clock() - self.start)

    def spend(self, seconds: float) -> None:
        """Record a preview that took ``seconds``."""
        self.spent += seconds
        self.last_cost = seconds
        self.count += 1

    @property
    def share(self) -> float:
        """Share of the elapsed time spent on previews so far."""
        elapsed = self.clock() - self.start
        return self.spent / elapsed if elapsed > 0 else 0.0
