"""A synthetic test world and a small latent diffusion model trained on it: test infrastructure.

This package is *not* part of the DRIVE node pack. It exists so that the pack's tests can
judge whether an edit looks right without downloading SD1.5:

- :mod:`testbed.world` draws deterministic clips (textured background, 1-2 coloured
  shapes that move, scale and occlude each other) from a seed, with captions, exact
  per-object masks and the true motion. No stored dataset.
- :mod:`testbed.models` builds an SD-shaped latent diffusion model: an 8x autoencoder with
  4 latent channels (diffusers ``AutoencoderKL``), a tiny text encoder over the world's
  closed vocabulary (:mod:`testbed.vocab`) and a cross-attention ``UNet2DConditionModel``
  with self-attention in encoder and decoder, eps-prediction on SD1.5's schedule.
- :mod:`testbed.train` is the script that trained the committed weights in
  ``testbed/weights/`` (see the README there for the command, seed and sha256).
- :mod:`testbed.load` loads those weights (``load_testbed()``), :mod:`testbed.judge`
  classifies the colour and shape of an object in an image, and :mod:`testbed.comfy_wrap`
  puts the same weights into a real in-process ComfyUI MODEL / VAE / CONDITIONING.

Latent convention (SD's): ``Testbed.encode`` returns the autoencoder's *raw* latents, which
is what a ComfyUI LATENT holds; the UNet sees ``raw * 0.18215`` (ComfyUI's SD15 latent
format). The autoencoder has a constant folded into it so that ``raw * 0.18215`` has unit
standard deviation on the world's frames.
"""
