"""Train a depth ControlNet for the frozen test-bed UNet (``python -m testbed.train_controlnet``).

The ControlNet is diffusers' ``ControlNetModel.from_unet`` of the eps test bed's UNet
(``testbed/weights``, frozen, as are the autoencoder and text encoder): a copy of the
UNet's down and mid blocks, a hint encoder with three stride-2 convs (channels
:data:`testbed.controlnet.HINT_CHANNELS`, the layout of ComfyUI's ``cldm`` hint block) and zero-initialised
output convs. The hint is the world's exact depth map (:func:`testbed.hints.frames_hints`).
The objective is the UNet's own (``testbed.train``): eps-prediction on SD1.5's schedule,
uniform timesteps, min-SNR-5 weights, the same caption dropout, on a pool of latents
encoded by ``train.encode_pool``; single frames and, every 4th step, 2x2 grids of 4 frames
of one scene (``train.training_batch``, ``rave_grid.tile``) with the hints tiled in the same
order (they ride in the pool as extra channels, ``pixel_unshuffle``d to latent size).
It stops after ``--steps`` or ``--minutes``; checkpoints every ``--ckpt-every`` steps
(``--resume`` continues the same run); the EMA weights are written (fp16) with
``record.json`` and ``README.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import hints, load, models, train, vocab, world
from .controlnet import CONTROLNET_DIR, CONTROLNET_FILE, HINT_CHANNELS, build_controlnet, hint_tensor

LATENT_DOWN = 8


def pool_hints(args) -> torch.Tensor:
    """Hints ``[N, 4, 3*64, h, w]`` of the pool's frames (same scenes and times as ``train.encode_pool``),
    ``pixel_unshuffle``d to latent size so that ``train.training_batch`` tiles them with the latents."""
    base = args.seed * train.DATA_STRIDE + train.POOL_OFFSET
    out = []
    for s in range(args.pool // train.POOL_FRAMES):
        _, scene, times = world.sample_frames(base + s, train.POOL_FRAMES, args.size)
        out.append(F.pixel_unshuffle(hint_tensor(hints.frames_hints(scene, times)), LATENT_DOWN))
    return torch.stack(out)


def split_batch(packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A packed batch ``[B, 4 + 192, h, w]`` -> latents ``[B, 4, h, w]`` and hints ``[B, 3, 8h, 8w]``."""
    return packed[:, :4], F.pixel_shuffle(packed[:, 4:], LATENT_DOWN)


def readme(record: dict) -> str:
    """``weights_controlnet/README.md`` from the record: what the file is and how it was made."""
    env = record["environment"]
    lines = ["# Test-bed depth ControlNet weights", "",
             "A ControlNet for the eps test bed's UNet (`testbed/weights`, frozen), trained by",
             "`testbed/train_controlnet.py` on the world's exact depth hints (`testbed/hints.py`); test",
             "infrastructure, not part of the node pack. Loaded as ComfyUI's own ControlNet by",
             "`testbed.comfy_wrap.testbed_controlnet()` and as diffusers' by `testbed.controlnet.load_controlnet()`.",
             "Generated from `record.json` by the training script; do not edit by hand.", "",
             *train.files_table(record["files"])]
    curve = record["loss_curve"]
    lines += ["", f"Command: `{record['command']}`  ",
              f"{record['steps_run']} of {record['steps_planned']} steps of {record['batch']}, lr {record['lr']:g}, "
              f"wall time {record['wall_s']:.0f} s (pool {record['pool_wall_s']:.0f} s); "
              f"eps-MSE (single frames) {curve[0][1]:.4f} at step {curve[0][0]} -> {curve[-1][1]:.4f} at step "
              f"{curve[-1][0]}. On 512 pool frames with full captions: eps-MSE {record['with_controlnet_eps_mse']:.4f} "
              f"with the ControlNet, {record['unet_alone_eps_mse']:.4f} for the frozen UNet alone.", "",
              train.environment_line(env), ""]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m testbed.train_controlnet", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights", type=Path, default=load.WEIGHTS_DIR, help="the frozen eps test bed")
    p.add_argument("--out", type=Path, default=CONTROLNET_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--minutes", type=float, default=45.0, help="stop (and save) after this wall time")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--pool", type=int, default=16_384)
    p.add_argument("--grid-every", type=int, default=4)
    p.add_argument("--p-empty", type=float, default=0.15)
    p.add_argument("--p-object", type=float, default=0.1)
    p.add_argument("--min-snr", type=float, default=5.0)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--resume", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    tb = load.load_testbed(args.weights)
    t_pool = time.time()
    latents, captions, objects = train.encode_pool(args, tb.autoencoder)
    packed = torch.cat([latents, pool_hints(args)], dim=2)          # [N, 4, 4 + 192, h, w]
    del latents
    t_pool = time.time() - t_pool
    train.log(f"pool {tuple(packed.shape)} in {t_pool:.0f}s")
    full_tok, obj_tok, empty_tok = vocab.tokenize(captions), vocab.tokenize(objects), vocab.tokenize("")
    with torch.no_grad():
        ctx_full, ctx_obj, ctx_empty = (tb.text_encoder(tok)[0] for tok in (full_tok, obj_tok, empty_tok))
    unet = tb.unet.eval().requires_grad_(False)
    torch.manual_seed(args.seed + 4)
    net = build_controlnet(unet).train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed * 1000 + 4)
    ac = models.alphas_cumprod()
    snr = ac / (1.0 - ac)
    weights = torch.clamp(snr, max=args.min_snr) / snr if args.min_snr > 0 else torch.ones_like(snr)
    ckpt, start, curve, spent = train.Checkpoint(args.out, "controlnet"), 0, [], 0.0
    if args.resume and (state := ckpt.load()):
        net.load_state_dict(state["net"]); ema.load_state_dict(state["ema"]); opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        start, curve, spent = state["step"], state["curve"], state["spent"]
        train.log(f"controlnet: resumed at step {start}")
    train.log(f"controlnet: {models.count_params(net) / 1e6:.2f} M params; {args.steps} steps of {args.batch}, "
              f"lr {args.lr:g}")
    t0, done = time.time(), start
    run, run_g, run_base = [], [], []
    for step in range(start, args.steps):
        if spent + time.time() - t0 + t_pool > args.minutes * 60:
            break
        idx, batch = train.training_batch(packed, step, args.batch, args.grid_every, gen)
        z0, hint = split_batch(batch)
        b = len(idx)
        drop = torch.rand(b, generator=gen)
        t = torch.randint(0, models.TRAIN_STEPS, (b,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        context = torch.where((drop < args.p_empty)[:, None, None], ctx_empty.expand(b, -1, -1),
                              torch.where((drop < args.p_empty + args.p_object)[:, None, None], ctx_obj[idx],
                                          ctx_full[idx]))
        a = ac[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1.0 - a).sqrt() * noise
        for group in opt.param_groups:
            group["lr"] = train.lr_at(step, args.steps, args.lr, warmup=50)
        down, mid = net(zt, t, encoder_hidden_states=context, controlnet_cond=hint, return_dict=False)
        pred = unet(zt, t, encoder_hidden_states=context, down_block_additional_residuals=down,
                    mid_block_additional_residual=mid).sample
        per = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (weights[t] * per).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        train.ema_update(ema, net, min(args.ema, (1.0 + step) / (10.0 + step)))
        (run_g if z0.shape[-1] > packed.shape[-1] else run).append(float(per.detach().mean()))
        done = step + 1
        if done % args.log_every == 0:
            m = float(np.mean(run)) if run else float("nan")
            mg = float(np.mean(run_g)) if run_g else float("nan")
            run, run_g = [], []
            curve.append([done, round(m, 5), round(mg, 5)])
            train.log(f"controlnet step {done}/{args.steps} eps-mse {m:.4f} (grids {mg:.4f}) "
                      f"lr {opt.param_groups[0]['lr']:.2e} {(done - start) / (time.time() - t0):.3f} steps/s "
                      f"elapsed {spent + time.time() - t0:.0f}s")
        if done % args.ckpt_every == 0:
            ckpt.save(net=net.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(), gen=gen.get_state(),
                      step=done, curve=curve, spent=spent + time.time() - t0)
    wall = spent + time.time() - t0 + t_pool
    baseline = eps_mse(unet, packed, ctx_full, ac, args.seed)
    controlled = eps_mse(unet, packed, ctx_full, ac, args.seed, net=ema)
    args.out.mkdir(parents=True, exist_ok=True)
    digest = load.save_weights(ema, args.out / CONTROLNET_FILE)
    record = dict(command=shlex.join(["python", "-m", "testbed.train_controlnet", *sys.argv[1:]]),
                  seed=args.seed, unet=str(args.weights), hint="testbed.hints (exact depth: background 0, "
                  f"visible objects {hints.LAYER_DEPTH} front to back)", hint_channels=list(HINT_CHANNELS),
                  steps_run=done, steps_planned=args.steps, batch=args.batch, lr=args.lr, pool=args.pool,
                  grid_every=args.grid_every, p_empty=args.p_empty, p_object=args.p_object, min_snr=args.min_snr,
                  ema=args.ema, params=models.count_params(net), wall_s=round(wall, 1), pool_wall_s=round(t_pool, 1),
                  unet_alone_eps_mse=round(baseline, 5), with_controlnet_eps_mse=round(controlled, 5),
                  environment=train.environment(args),
                  loss_curve_columns=["step", "eps_mse_single", "eps_mse_grids"], loss_curve=curve,
                  files={CONTROLNET_FILE: {"sha256": digest, "bytes": (args.out / CONTROLNET_FILE).stat().st_size}})
    (args.out / load.RECORD).write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "README.md").write_text(readme(record))
    train.log(f"controlnet: {done} steps, wall {wall:.0f}s, written to {args.out}")


@torch.no_grad()
def eps_mse(unet, packed: torch.Tensor, ctx_full: torch.Tensor, ac: torch.Tensor, seed: int, net=None,
            n: int = 512) -> float:
    """Eps-MSE on ``n`` pool frames (full captions, seeded timesteps and noise) of the frozen UNet, with
    ``net``'s control when given: the gap is what the hint tells the UNet."""
    gen = torch.Generator().manual_seed(seed * 1000 + 5)
    idx = torch.randint(len(packed), (n,), generator=gen)
    z0, hint = split_batch(packed[idx, 0])
    t = torch.randint(0, models.TRAIN_STEPS, (n,), generator=gen)
    noise = torch.randn(z0.shape, generator=gen)
    a = ac[t].view(-1, 1, 1, 1)
    zt = a.sqrt() * z0 + (1.0 - a).sqrt() * noise
    errs = []
    for sl in torch.arange(n).split(64):
        extra = {}
        if net is not None:
            down, mid = net(zt[sl], t[sl], encoder_hidden_states=ctx_full[idx[sl]], controlnet_cond=hint[sl],
                            return_dict=False)
            extra = dict(down_block_additional_residuals=down, mid_block_additional_residual=mid)
        pred = unet(zt[sl], t[sl], encoder_hidden_states=ctx_full[idx[sl]], **extra).sample
        errs.append(((pred - noise[sl]) ** 2).mean())
    return float(torch.stack(errs).mean())


if __name__ == "__main__":
    main()
