"""The throttle that keeps all-frame sampler previews under their share of the sampling time."""

import pytest

from drive_ops.core.preview_throttle import PreviewThrottle


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_previews_stay_within_the_budget_whatever_they_cost():
    for cost in (0.001, 0.05, 0.5):
        clock = Clock()
        throttle = PreviewThrottle(0.02, clock)
        for _ in range(2000):  # steps of 0.1 s; a preview, when due, costs `cost`
            clock.now += 0.1
            if throttle.due():
                clock.now += cost
                throttle.spend(cost)
        assert throttle.count >= 1
        # the first preview is made after the first step whatever it costs; from then on the budget holds
        assert throttle.spent - cost <= 0.02 * clock.now + 1e-9
        assert throttle.share <= 0.02 + cost / clock.now


def test_cheap_previews_come_every_step():
    clock = Clock()
    throttle = PreviewThrottle(0.02, clock)
    shown = 0
    for _ in range(50):
        clock.now += 1.0
        if throttle.due():
            shown += 1
            clock.now += 0.001
            throttle.spend(0.001)
    assert shown == 50


def test_budget_must_be_a_share():
    with pytest.raises(ValueError, match="share"):
        PreviewThrottle(2.0)
