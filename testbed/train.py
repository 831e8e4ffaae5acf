"""Train the testbed model on the synthetic world: ``python -m testbed.train --seed 0 --out testbed/weights``.

Stages (``--stage``; ``all`` runs ae, unet, eval in order, each seeded on its own, so running
them one by one gives the same files):

- ``ae``: the autoencoder on fresh world frames (64 px, training seeds), MSE + a tiny KL on
  a sampled posterior. Then the latent scale is measured on training frames and folded into
  the network (:func:`testbed.models.fold_latent_scale`) so that ``raw * 0.18215`` has unit
  std; written as ``autoencoder.safetensors`` (fp16).
- ``unet``: the text encoder and UNet together on a pool of latents of world frames encoded
  by the *saved* autoencoder (posterior mean, times 0.18215): eps-prediction on SD1.5's
  scaled-linear 1000-step schedule, uniform timesteps, min-SNR-5 loss weights, caption
  dropout (``--p-empty`` to the empty prompt, ``--p-object`` to the object phrase alone),
  EMA of both networks; the EMA weights are written (fp16).
- ``eval``: the quality numbers of :mod:`testbed.evaluate` on held-out seeds.

Every stage prints its losses, checkpoints to ``<out>/checkpoints`` (resume with
``--resume``; the data of a step depends only on the step, so a resumed run is the same
run) and updates ``<out>/record.json`` and ``<out>/README.md`` (sha256, command, versions,
threads, wall time, loss curve, metrics). Deterministic for a given seed, machine and
thread count.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import load, models, vocab, world

DATA_STRIDE = 4_000_000  # world seeds of training seed s: [s*DATA_STRIDE, (s+1)*DATA_STRIDE)
POOL_OFFSET = 2_000_000  # the UNet's latent pool starts here inside that range
POOL_FRAMES = 4          # frames per pool scene: a 2x2 grid


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m testbed.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=load.WEIGHTS_DIR)
    p.add_argument("--stage", choices=("ae", "unet", "eval", "all"), default="all")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; 1 is fastest on a shared 2-core machine (2 threads measured 6x slower under load)")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--ae-steps", type=int, default=2000)
    p.add_argument("--ae-batch", type=int, default=16)
    p.add_argument("--ae-lr", type=float, default=1e-3)
    p.add_argument("--ae-kl", type=float, default=1e-6, help="KL weight per latent element")
    p.add_argument("--unet-steps", type=int, default=4500)
    p.add_argument("--unet-batch", type=int, default=64)
    p.add_argument("--unet-lr", type=float, default=5e-4)
    p.add_argument("--pool", type=int, default=32_768, help="world frames encoded once for the UNet stage")
    p.add_argument("--grid-every", type=int, default=4,
                   help="every N-th step trains on 2x2 latent grids of one scene's frames (RAVE's input); 0: never")
    p.add_argument("--p-empty", type=float, default=0.15)
    p.add_argument("--p-object", type=float, default=0.1)
    p.add_argument("--min-snr", type=float, default=5.0, help="min-SNR-gamma loss weights (0: plain MSE)")
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--eval-samples", type=int, default=120)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--ckpt-every", type=int, default=200)
    p.add_argument("--resume", action="store_true")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def lr_at(step: int, total: int, base: float, warmup: int = 100, floor: float = 0.1) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return base * (floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0))))


def images_tensor(seeds, size: int) -> tuple[torch.Tensor, list[str], list[str]]:
    """World frames as ``[B,3,H,W]`` in -1..1, their captions and object-only captions."""
    frames = [world.sample_image(int(s), size) for s in seeds]
    x = torch.from_numpy(np.stack([f.image for f in frames])).movedim(-1, 1) * 2.0 - 1.0
    objects = [world.caption_for([(o.colour, o.shape) for o in f.scene.objects]) for f in frames]
    return x, [f.caption for f in frames], objects


def psnr_01(mse_pm1: float) -> float:
    """PSNR in dB of images in 0..1 from an MSE measured in -1..1."""
    return 10.0 * math.log10(4.0 / max(mse_pm1, 1e-12))


class Checkpoint:
    def __init__(self, out: Path, stage: str):
        self.path = out / "checkpoints" / f"{stage}.pt"

    def save(self, **state) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(self.path)

    def load(self):
        return torch.load(self.path, weights_only=False) if self.path.is_file() else None


# ---------------------------------------------------------------------------- record

def read_record(out: Path) -> dict:
    path = out / load.RECORD
    return json.loads(path.read_text()) if path.is_file() else {}


def write_record(out: Path, record: dict) -> None:
    record["files"] = {}
    for fname in load.FILES.values():
        path = out / fname
        if path.is_file():
            record["files"][fname] = {"sha256": load.sha256(path), "bytes": path.stat().st_size}
    (out / load.RECORD).write_text(json.dumps(record, indent=1) + "\n")
    (out / "README.md").write_text(readme(record))


def files_table(files: dict) -> list[str]:
    """A weights README's markdown table of its files: bytes and sha256 (what the loaders check)."""
    return ["| file | bytes | sha256 |", "|---|---|---|"] + [
        f"| {name} | {info['bytes']} | `{info['sha256']}` |" for name, info in files.items()]


def environment_line(env: dict) -> str:
    """A weights README's line on the versions and machine the training ran with."""
    return (f"Environment: torch {env.get('torch')}, diffusers {env.get('diffusers')}, numpy {env.get('numpy')}, "
            f"python {env.get('python')}, {env.get('threads')} threads, {env.get('cpu')}.")


def readme(record: dict) -> str:
    lines = ["# Testbed weights", "",
             "Trained by `testbed/train.py` on the synthetic world of `testbed/world.py`; test infrastructure,",
             "not part of the node pack. Loaded by `testbed.load.load_testbed()`, which checks the sha256 below.",
             "Generated from `record.json` by the training script; do not edit by hand.", "",
             "## Files", ""] + files_table(record.get("files", {}))
    env = record.get("environment", {})
    lines += ["", "## How they were made", ""]
    for stage, info in record.get("stages", {}).items():
        lines += [f"- **{stage}**: `{info['command']}`  ", f"  wall time {info['wall_s']:.0f} s"
                  + (f", {info['steps']} steps" if "steps" in info else "")]
    lines += ["", f"Equivalent single command: `{record.get('command', '')}`", "",
              environment_line(env), ""]
    metrics = record.get("metrics")
    if metrics:
        lines += ["## Measured quality (held-out seeds)", "", "```", json.dumps(metrics, indent=1), "```", ""]
    return "\n".join(lines)


def stage_record(args, stage: str, wall: float, **extra) -> dict:
    cmd = ["python", "-m", "testbed.train"] + [a for a in sys.argv[1:]]
    return dict(command=shlex.join(cmd), wall_s=round(wall, 1), **extra)


def environment(args) -> dict:
    import diffusers

    return dict(torch=torch.__version__, diffusers=diffusers.__version__, numpy=np.__version__,
                python=platform.python_version(), threads=args.threads, cpu=platform.processor() or platform.machine())


# ---------------------------------------------------------------------------- stage: autoencoder

def train_ae(args) -> dict:
    torch.manual_seed(args.seed)
    ae = models.build_autoencoder().train()
    with torch.no_grad():  # start the posterior nearly deterministic (std e^-4), or its noise drowns the mean
        ae.quant_conv.bias[ae.config.latent_channels:] = -8.0
    opt = torch.optim.AdamW(ae.parameters(), lr=args.ae_lr, betas=(0.9, 0.99), weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed * 1000 + 1)
    ckpt, start, curve, spent = Checkpoint(args.out, "ae"), 0, [], 0.0
    if args.resume and (state := ckpt.load()):
        ae.load_state_dict(state["model"]); opt.load_state_dict(state["opt"]); gen.set_state(state["gen"])
        start, curve, spent = state["step"], state["curve"], state["spent"]
        log(f"ae: resumed at step {start}")
    log(f"ae: {models.count_params(ae) / 1e6:.2f} M params, {args.ae_steps} steps of {args.ae_batch}")
    base = args.seed * DATA_STRIDE
    t0, run = time.time(), []
    for step in range(start, args.ae_steps):
        x, _, _ = images_tensor(range(base + step * args.ae_batch, base + (step + 1) * args.ae_batch), args.size)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.ae_steps, args.ae_lr)
        post = ae.encode(x).latent_dist
        rec = ae.decode(post.sample(generator=gen)).sample
        mse = F.mse_loss(rec, x)
        kl = post.kl().mean() / post.mean[0].numel()
        loss = mse + args.ae_kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(ae.parameters(), 1.0)
        opt.step()
        run.append(float(mse.detach()))
        if (step + 1) % args.log_every == 0 or step + 1 == args.ae_steps:
            m = float(np.mean(run)); run = []
            curve.append([step + 1, round(m, 6)])
            el = spent + time.time() - t0
            log(f"ae step {step + 1}/{args.ae_steps} mse {m:.5f} (psnr {psnr_01(m):.2f} dB) kl {float(kl.detach()):.1f} "
                f"lr {opt.param_groups[0]['lr']:.2e} elapsed {el:.0f}s")
        if (step + 1) % args.ckpt_every == 0:
            ckpt.save(model=ae.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), step=step + 1, curve=curve,
                      spent=spent + time.time() - t0)
    wall = spent + time.time() - t0
    ae.eval()
    # latent scale on training frames (not the ones the quality numbers use)
    with torch.no_grad():
        x, _, _ = images_tensor(range(base + POOL_OFFSET - 512, base + POOL_OFFSET), args.size)
        std = float(torch.cat([ae.encode(x[i:i + 64]).latent_dist.mean for i in range(0, 512, 64)]).std())
    factor = 1.0 / (std * models.SD_LATENT_SCALE)
    models.fold_latent_scale(ae, factor)
    load.save_weights(ae, args.out / load.FILES["autoencoder"])
    ae = load.load_autoencoder(args.out)  # the fp16-stored weights, as everyone else will see them
    with torch.no_grad():
        x, _, _ = images_tensor(range(base + POOL_OFFSET - 512, base + POOL_OFFSET), args.size)
        std_after = float(torch.cat([ae.encode(x[i:i + 64]).latent_dist.mean for i in range(0, 512, 64)]).std())
    from . import evaluate

    psnr = evaluate.autoencoder_psnr(ae, n=256, size=args.size)
    log(f"ae: raw latent std {std:.4f} -> fold factor {factor:.4f}; std(raw*0.18215) now "
        f"{std_after * models.SD_LATENT_SCALE:.4f}; held-out PSNR {psnr:.2f} dB; wall {wall:.0f}s")
    return stage_record(args, "ae", wall, steps=args.ae_steps, batch=args.ae_batch, lr=args.ae_lr, kl=args.ae_kl,
                        params=models.count_params(ae), loss_curve=curve, latent_std_before_fold=std,
                        fold_factor=factor, scaled_latent_std=std_after * models.SD_LATENT_SCALE,
                        heldout_psnr_db=round(psnr, 3))


# ---------------------------------------------------------------------------- stage: text encoder + UNet

@torch.no_grad()
def encode_pool(args, ae) -> tuple[torch.Tensor, list[str], list[str]]:
    """Latents ``[N, 4, 4, h, w]`` (UNet units) of 4 frames of each of ``N = pool / 4`` training scenes, captions."""
    base = args.seed * DATA_STRIDE + POOL_OFFSET
    scenes = args.pool // POOL_FRAMES
    latents, captions, objects = [], [], []
    t0 = time.time()
    for i in range(0, scenes, 64):
        chunk = [world.sample_frames(base + s, POOL_FRAMES, args.size) for s in range(i, min(i + 64, scenes))]
        x = torch.from_numpy(np.concatenate([c[0] for c in chunk])).movedim(-1, 1) * 2.0 - 1.0
        z = ae.encode(x).latent_dist.mean * models.SD_LATENT_SCALE
        latents.append(z.view(len(chunk), POOL_FRAMES, *z.shape[1:]))
        captions += [c[1].caption for c in chunk]
        objects += [world.caption_for([(o.colour, o.shape) for o in c[1].objects]) for c in chunk]
        if (i // 64) % 16 == 0:
            log(f"pool: {len(captions)}/{scenes} scenes encoded ({time.time() - t0:.0f}s)")
    return torch.cat(latents), captions, objects


def training_batch(pool: torch.Tensor, step: int, batch: int, grid_every: int, gen: torch.Generator):
    """Scene indices and UNet-unit latents of one step: single frames, or (every ``grid_every``-th
    step) 2x2 grids of 4 frames of one scene in a random order (``batch // 4`` of them)."""
    from drive_ops.diffusion import rave_grid

    if grid_every > 0 and step % grid_every == grid_every - 1:
        n = batch // POOL_FRAMES
        idx = torch.randint(len(pool), (n,), generator=gen)
        order = torch.argsort(torch.rand(n, POOL_FRAMES, generator=gen), dim=1)
        frames = pool[idx[:, None], order]                       # [n, 4, C, h, w]
        return idx, rave_grid.tile(frames.flatten(0, 1), 2)
    idx = torch.randint(len(pool), (batch,), generator=gen)
    which = torch.randint(POOL_FRAMES, (batch,), generator=gen)
    return idx, pool[idx, which]


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters()):
        e.lerp_(p, 1.0 - decay)


def train_unet(args) -> dict:
    import copy

    ae = load.load_autoencoder(args.out)
    t_pool = time.time()
    pool, captions, objects = encode_pool(args, ae)
    t_pool = time.time() - t_pool
    log(f"pool: {tuple(pool.shape)} latents, std {float(pool.std()):.3f}, mean {float(pool.mean()):.3f} "
        f"({t_pool:.0f}s)")
    full_tok, obj_tok, empty_tok = vocab.tokenize(captions), vocab.tokenize(objects), vocab.tokenize("")
    torch.manual_seed(args.seed + 1)
    te, unet = models.build_text_encoder().train(), models.build_unet().train()
    ema_te, ema_unet = copy.deepcopy(te).eval(), copy.deepcopy(unet).eval()
    params = list(te.parameters()) + list(unet.parameters())
    opt = torch.optim.AdamW(params, lr=args.unet_lr, betas=(0.9, 0.99), weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed * 1000 + 2)
    ac = models.alphas_cumprod()
    snr = ac / (1.0 - ac)
    weights = torch.clamp(snr, max=args.min_snr) / snr if args.min_snr > 0 else torch.ones_like(snr)
    ckpt, start, curve, spent = Checkpoint(args.out, "unet"), 0, [], 0.0
    if args.resume and (state := ckpt.load()):
        te.load_state_dict(state["te"]); unet.load_state_dict(state["unet"])
        ema_te.load_state_dict(state["ema_te"]); ema_unet.load_state_dict(state["ema_unet"])
        opt.load_state_dict(state["opt"]); gen.set_state(state["gen"])
        start, curve, spent = state["step"], state["curve"], state["spent"]
        log(f"unet: resumed at step {start}")
    log(f"unet: {models.count_params(unet) / 1e6:.2f} M params, text encoder {models.count_params(te) / 1e6:.2f} M; "
        f"{args.unet_steps} steps of {args.unet_batch}")
    t0, run, run_w, run_g = time.time(), [], [], []
    for step in range(start, args.unet_steps):
        idx, z0 = training_batch(pool, step, args.unet_batch, args.grid_every, gen)
        B = len(idx)
        drop = torch.rand(B, generator=gen)
        t = torch.randint(0, models.TRAIN_STEPS, (B,), generator=gen)
        noise = torch.randn(z0.shape, generator=gen)
        tokens = torch.where((drop < args.p_empty)[:, None], empty_tok.expand(B, -1),
                             torch.where((drop < args.p_empty + args.p_object)[:, None], obj_tok[idx], full_tok[idx]))
        a = ac[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1.0 - a).sqrt() * noise
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.unet_steps, args.unet_lr, warmup=200)
        context, _ = te(tokens)
        pred = unet(zt, t, encoder_hidden_states=context).sample
        per = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (weights[t] * per).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(args.ema, (1.0 + step) / (10.0 + step))
        ema_update(ema_te, te, decay)
        ema_update(ema_unet, unet, decay)
        (run_g if z0.shape[-1] > pool.shape[-1] else run).append(float(per.detach().mean()))
        run_w.append(float(loss.detach()))
        if (step + 1) % args.log_every == 0 or step + 1 == args.unet_steps:
            m, mw = float(np.mean(run)), float(np.mean(run_w))
            mg = float(np.mean(run_g)) if run_g else float("nan")
            run, run_w, run_g = [], [], []
            curve.append([step + 1, round(m, 5), round(mw, 5), round(mg, 5)])
            el = spent + time.time() - t0
            log(f"unet step {step + 1}/{args.unet_steps} eps-mse {m:.4f} (grids {mg:.4f}) weighted {mw:.4f} "
                f"lr {opt.param_groups[0]['lr']:.2e} elapsed {el:.0f}s ({(step + 1 - start) / (time.time() - t0):.2f} steps/s)")
        if (step + 1) % args.ckpt_every == 0:
            ckpt.save(te=te.state_dict(), unet=unet.state_dict(), ema_te=ema_te.state_dict(),
                      ema_unet=ema_unet.state_dict(), opt=opt.state_dict(), gen=gen.get_state(), step=step + 1,
                      curve=curve, spent=spent + time.time() - t0)
    wall = spent + time.time() - t0
    load.save_weights(ema_te, args.out / load.FILES["text_encoder"])
    load.save_weights(ema_unet, args.out / load.FILES["unet"])
    log(f"unet: done, wall {wall:.0f}s (+ pool {t_pool:.0f}s)")
    return stage_record(args, "unet", wall + t_pool, steps=args.unet_steps, batch=args.unet_batch, lr=args.unet_lr,
                        pool=args.pool, pool_frames_per_scene=POOL_FRAMES, grid_every=args.grid_every,
                        loss_curve_columns=["step", "eps_mse_single", "weighted_loss", "eps_mse_grids"],
                        pool_wall_s=round(t_pool, 1), p_empty=args.p_empty, p_object=args.p_object,
                        min_snr=args.min_snr, ema=args.ema, params_unet=models.count_params(unet),
                        params_text_encoder=models.count_params(te), loss_curve=curve)


# ---------------------------------------------------------------------------- main

def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    record = read_record(args.out)
    record["command"] = f"python -m testbed.train --seed {args.seed} --out {args.out}"
    record["seed"] = args.seed
    record["environment"] = environment(args)
    record.setdefault("stages", {})
    record["config"] = dict(autoencoder=models.AE_CONFIG, text_encoder=models.TEXT_CONFIG, unet=models.UNET_CONFIG,
                            comfy_unet=models.COMFY_UNET_CONFIG, latent_scale=models.SD_LATENT_SCALE,
                            schedule=dict(beta_start=models.BETA_START, beta_end=models.BETA_END,
                                          train_steps=models.TRAIN_STEPS, beta_schedule="scaled_linear",
                                          prediction="epsilon"))
    stages = ("ae", "unet", "eval") if args.stage == "all" else (args.stage,)
    for stage in stages:
        t = time.time()
        if stage == "ae":
            record["stages"]["ae"] = train_ae(args)
        elif stage == "unet":
            record["stages"]["unet"] = train_unet(args)
        else:
            from . import evaluate

            tb = load.load_testbed(args.out, check=False)
            metrics = evaluate.evaluate(tb, samples=args.eval_samples, log=log)
            record["metrics"] = metrics
            record["stages"]["eval"] = stage_record(args, "eval", time.time() - t)
        write_record(args.out, record)
        log(f"stage {stage} recorded in {args.out / load.RECORD}")


if __name__ == "__main__":
    main()
