"""conditioning_equal: equal content in other objects is equal; any difference that could change a prediction is not."""

from __future__ import annotations

import torch

from drive_ops.diffusion.cond_equal import conditioning_equal


class _Control:
    """Stands in for a ComfyUI ControlNet: copies share the network, hold the hint and strength, chain backwards."""

    def __init__(self, network, hint, strength=1.0, previous=None):
        self.control_model, self.cond_hint_original, self.strength = network, hint, strength
        self.timestep_percent_range, self.extra_args, self.previous_controlnet = (0.0, 1.0), {}, previous


def _cond(text, control=None, **options):
    return [[text.clone(), dict(options, **({"control": control} if control is not None else {}))]]


def test_equal_content_in_other_objects_is_equal():
    net, hint, text = torch.nn.Linear(2, 2), torch.rand(2, 3, 8, 8), torch.zeros(1, 77, 8)
    first = _Control(net, hint, previous=_Control(net, hint, 0.5))
    second = _Control(net, hint.clone(), previous=_Control(net, hint, 0.5))
    assert conditioning_equal(_cond(text, first, control_apply_to_uncond=False),
                              _cond(text, second, control_apply_to_uncond=False))
    assert conditioning_equal(_cond(text), _cond(text))


def test_any_difference_that_could_change_a_prediction_is_not_equal():
    net, hint, text = torch.nn.Linear(2, 2), torch.rand(2, 3, 8, 8), torch.zeros(1, 77, 8)
    base = _cond(text, _Control(net, hint))
    other_text = text.clone()
    other_text[0, 0, 0] = 1e-6
    differing = [
        _cond(other_text, _Control(net, hint)),                                  # one text value
        _cond(text.double(), _Control(net, hint)),                               # dtype
        _cond(text, _Control(net, hint, 0.9)),                                   # strength
        _cond(text, _Control(torch.nn.Linear(2, 2), hint)),                      # another network (identity only)
        _cond(text, _Control(net, hint, previous=_Control(net, hint))),          # a longer chain
        _cond(text, _Control(net, hint.flip(0))),                                # hint
        _cond(text),                                                             # no ControlNet
        _cond(text, _Control(net, hint), strength=0.5),                          # an extra option
        base + base,                                                             # another entry
        [[text, {"control": _Control(net, hint), "hooks": object()}]],           # unknown objects: identity only
    ]
    for other in differing:
        assert not conditioning_equal(base, other)
    shared = object()
    assert conditioning_equal([[text, {"hooks": shared}]], [[text.clone(), {"hooks": shared}]])
