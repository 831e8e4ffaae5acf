"""Fine-tune the testbed UNet to the rectified-flow objective: ``python -m testbed.train_flow --out testbed/weights_flow``.

The flow test bed is the eps one's autoencoder and text encoder (``testbed/weights``,
frozen) with a UNet trained on ComfyUI's CONST parameterisation: ``x_s = (1-s)*z0 + s*n``
in UNet units (raw * 0.18215), the UNet sees ``x_s`` at timestep ``1000*s`` and predicts
the velocity ``n - z0``; ``s`` is a uniform ``t`` pushed through SD3's shift
``shift*t / (1 + (shift-1)*t)`` (the sampling schedule of ComfyUI's ModelSamplingSD3).
It starts from the eps UNet's weights (same network, same data) and stops after
``--steps`` or ``--minutes``, whichever comes first; the EMA weights are written (fp16)
with ``record.json`` (steps run, loss curve, sha256). Single frames and, every 4th step,
2x2 grids of one scene's frames, as the eps UNet was trained.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import load, models, train, vocab

FLOW_DIR = Path(__file__).resolve().parent / "weights_flow"
SHIFT = 3.0
MULTIPLIER = 1000.0


def shifted(t: torch.Tensor, shift: float) -> torch.Tensor:
    """SD3's time shift (ComfyUI's ``time_snr_shift``): ``shift*t / (1 + (shift-1)*t)``."""
    return shift * t / (1.0 + (shift - 1.0) * t)


def readme(record: dict) -> str:
    """``weights_flow/README.md`` from the record: what the files are and how they were made."""
    env = record["environment"]
    lines = ["# Flow test bed weights", "",
             "The rectified-flow UNet of the test bed, fine-tuned from `testbed/weights` by `testbed/train_flow.py`",
             "(test infrastructure, not part of the node pack); the autoencoder and text encoder are the eps test",
             "bed's. Loaded by `testbed.flow.load_flow_testbed()`, which checks the sha256 below. Generated from",
             "`record.json` by the training script; do not edit by hand.", "",
             *train.files_table(record["files"])]
    lines += ["", f"Command: `{record['command']}`  ",
              f"{record['steps_run']} of {record['steps_planned']} steps of {record['batch']}, "
              f"wall time {record['wall_s']:.0f} s, shift {record['shift']:g}; prediction: {record['prediction']}.", "",
              train.environment_line(env), ""]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m testbed.train_flow", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eps-weights", type=Path, default=load.WEIGHTS_DIR)
    p.add_argument("--out", type=Path, default=FLOW_DIR)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--minutes", type=float, default=55.0, help="stop (and save) after this wall time")
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--pool", type=int, default=8192)
    p.add_argument("--grid-every", type=int, default=4)
    p.add_argument("--shift", type=float, default=SHIFT)
    p.add_argument("--p-empty", type=float, default=0.15)
    p.add_argument("--p-object", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.995)
    p.add_argument("--log-every", type=int, default=25)
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    tb = load.load_testbed(args.eps_weights)
    args.seed = args.seed  # the pool's scenes are training seeds of this seed, as in train.py
    t_pool = time.time()
    pool, captions, objects = train.encode_pool(args, tb.autoencoder)
    train.log(f"pool {tuple(pool.shape)} in {time.time() - t_pool:.0f}s")
    full_tok, obj_tok, empty_tok = vocab.tokenize(captions), vocab.tokenize(objects), vocab.tokenize("")
    with torch.no_grad():
        ctx_full, ctx_obj, ctx_empty = (tb.text_encoder(tok)[0] for tok in (full_tok, obj_tok, empty_tok))
    unet = copy.deepcopy(tb.unet).train().requires_grad_(True)
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed * 1000 + 3)
    curve, run, run_g, done = [], [], [], 0
    t0 = time.time()
    for step in range(args.steps):
        if time.time() - started > args.minutes * 60:
            break
        idx, z0 = train.training_batch(pool, step, args.batch, args.grid_every, gen)
        b = len(idx)
        drop = torch.rand(b, generator=gen)
        sigma = shifted(torch.rand(b, generator=gen), args.shift)
        noise = torch.randn(z0.shape, generator=gen)
        context = torch.where((drop < args.p_empty)[:, None, None], ctx_empty.expand(b, -1, -1),
                              torch.where((drop < args.p_empty + args.p_object)[:, None, None], ctx_obj[idx],
                                          ctx_full[idx]))
        s = sigma.view(-1, 1, 1, 1)
        xs = (1.0 - s) * z0 + s * noise
        for group in opt.param_groups:
            group["lr"] = train.lr_at(step, args.steps, args.lr, warmup=50)
        pred = unet(xs, sigma * MULTIPLIER, encoder_hidden_states=context).sample
        loss = ((pred - (noise - z0)) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        train.ema_update(ema, unet, min(args.ema, (1.0 + step) / (10.0 + step)))
        (run_g if z0.shape[-1] > pool.shape[-1] else run).append(float(loss.detach()))
        done = step + 1
        if done % args.log_every == 0:
            m = float(np.mean(run)) if run else float("nan")
            mg = float(np.mean(run_g)) if run_g else float("nan")
            run, run_g = [], []
            curve.append([done, round(m, 5), round(mg, 5)])
            train.log(f"flow step {done}/{args.steps} v-mse {m:.4f} (grids {mg:.4f}) "
                      f"lr {opt.param_groups[0]['lr']:.2e} {done / (time.time() - t0):.2f} steps/s")
    args.out.mkdir(parents=True, exist_ok=True)
    digest = load.save_weights(ema, args.out / load.FILES["unet"])
    env = train.environment(args)
    record = dict(command=f"python -m testbed.train_flow --out {args.out} --steps {args.steps} "
                          f"--minutes {args.minutes:g}",
                  init=str(args.eps_weights), steps_run=done, steps_planned=args.steps, batch=args.batch,
                  lr=args.lr, pool=args.pool, shift=args.shift, multiplier=MULTIPLIER, ema=args.ema,
                  prediction="velocity (CONST: x_s = (1-s)*z0 + s*noise, v = noise - z0, timestep 1000*s)",
                  wall_s=round(time.time() - started, 1), environment=env,
                  loss_curve_columns=["step", "v_mse_single", "v_mse_grids"], loss_curve=curve,
                  files={load.FILES["unet"]: {"sha256": digest,
                                              "bytes": (args.out / load.FILES["unet"]).stat().st_size}})
    (args.out / load.RECORD).write_text(json.dumps(record, indent=1) + "\n")
    (args.out / "README.md").write_text(readme(record))
    train.log(f"flow: {done} steps, wall {record['wall_s']:.0f}s, written to {args.out}")


if __name__ == "__main__":
    main()
