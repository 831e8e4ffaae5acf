"""The tuning loop: AdamW on the whole weight for deltas, seeded draws, the loss going down, clear failures."""

from __future__ import annotations

import pytest
import torch

from drive_ops.diffusion import tuning


def _regression(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 6, generator=g)
    target = x @ torch.randn(6, 3, generator=g)
    return x, target


def test_delta_with_full_weight_decay_is_adamw_on_the_weight():
    x, target = _regression()
    base = torch.randn(3, 6, generator=torch.Generator().manual_seed(1))
    recipe = tuning.TuneRecipe(steps=25, learning_rate=0.05, weight_decay=0.1, max_grad_norm=0.5)

    delta = torch.nn.Parameter(torch.zeros_like(base))
    losses = tuning.run_tuning(lambda step, g: ((x @ (base + delta).T - target) ** 2).mean(),
                               tuning.Trainables(deltas=[tuning.DeltaWeight(delta, base)]), recipe)

    weight = torch.nn.Parameter(base.clone())
    opt = torch.optim.AdamW([weight], lr=0.05, weight_decay=0.1, betas=recipe.betas)
    reference = []
    for _ in range(recipe.steps):
        opt.zero_grad()
        loss = ((x @ weight.T - target) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([weight], 0.5)
        opt.step()
        reference.append(float(loss.detach()))
    assert torch.allclose(base + delta, weight, atol=1e-5, rtol=1e-5)
    assert losses == pytest.approx(reference, rel=1e-5)


def test_loss_goes_down_and_progress_counts_every_step():
    x, target = _regression(2)
    layer = torch.nn.Linear(6, 3)
    calls, seen = [], []
    recipe = tuning.TuneRecipe(steps=40, learning_rate=0.05)
    losses = tuning.run_tuning(lambda step, g: ((layer(x) - target) ** 2).mean(),
                               tuning.Trainables(parameters=list(layer.parameters())), recipe,
                               progress=lambda done, total: calls.append((done, total)),
                               on_step=lambda step, loss: seen.append(step))
    assert len(losses) == 40 and losses[-1] < 0.5 * losses[0]
    assert calls == [(i + 1, 40) for i in range(40)] and seen == list(range(40))
    assert all(p.grad is None for p in layer.parameters())


def test_draws_come_from_the_seed_not_the_global_rng():
    def draws(seed: int) -> list:
        out = []
        recipe = tuning.TuneRecipe(steps=5, seed=seed)
        p = torch.nn.Parameter(torch.zeros(1))

        def step(i, g):
            out.append((tuning.draw_timestep(g), tuning.frame_window(g, 24, 8),
                        tuning.draw_noise(g, torch.Size([2]), p).tolist()))
            return (p ** 2).sum() + 1.0

        tuning.run_tuning(step, tuning.Trainables(parameters=[p]), recipe)
        return out

    state = torch.get_rng_state()
    assert draws(33) == draws(33)
    assert draws(33) != draws(34)
    assert torch.equal(torch.get_rng_state(), state)


def test_timesteps_and_frame_windows_stay_in_range():
    g = torch.Generator().manual_seed(0)
    steps = [tuning.draw_timestep(g) for _ in range(2000)]
    assert min(steps) == 0 and max(steps) == 999
    assert tuning.frame_window(g, 10, 0) == slice(0, 10) and tuning.frame_window(g, 10, 12) == slice(0, 10)
    starts = set()
    for _ in range(300):
        w = tuning.frame_window(g, 10, 4)
        assert w.stop - w.start == 4 and 0 <= w.start and w.stop <= 10
        starts.add(w.start)
    assert starts == set(range(7))


def test_eps_from_denoised_undoes_the_denoised_estimate():
    x, eps = torch.randn(3, 4, 5, 5), torch.randn(3, 4, 5, 5)
    sigma = torch.tensor([0.03, 1.0, 14.6])
    denoised = x - sigma.view(-1, 1, 1, 1) * eps
    assert torch.allclose(tuning.eps_from_denoised(x, denoised, sigma), eps, atol=1e-4)
    assert float(tuning.eps_mse(eps, eps)) == 0.0


def test_a_non_finite_loss_stops_with_the_step():
    p = torch.nn.Parameter(torch.ones(1))
    with pytest.raises(FloatingPointError, match="at step 3 of 5"):
        tuning.run_tuning(lambda step, g: p.sum() * (float("nan") if step == 2 else 1.0),
                          tuning.Trainables(parameters=[p]), tuning.TuneRecipe(steps=5))


def test_recipe_and_summary():
    with pytest.raises(ValueError, match="tune_a_video, lora"):
        tuning.TuneRecipe(trainable="everything")
    with pytest.raises(ValueError, match="nothing to train"):
        tuning.make_optimizer(tuning.Trainables(), tuning.TuneRecipe())
    recipe = tuning.TuneRecipe()
    assert (recipe.steps, recipe.learning_rate, recipe.weight_decay, recipe.max_grad_norm) == (500, 3e-5, 1e-2, 1.0)
    s = tuning.loss_summary([float(v) for v in range(20, 0, -1)])
    assert (s["first"], s["last"], s["min"], s["mean_first_tenth"], s["mean_last_tenth"]) == (20, 1, 1, 19.5, 1.5)
