"""Pure PyTorch operations behind the DRIVE nodes, one sub-package per pipeline stage.

- ``core``: what every stage shares (chunking, the frame plan and its inverse, mask-frame
  matching and morphology, optical flow, the progress-callback convention);
- ``video``: decode and encode;
- ``masks``: SAM 2 / SAMURAI tracking, flow propagation, mask clean-ups;
- ``diffusion``: noise schedule, DDIM / EasyInv inversion, masked CFG, RAVE grids,
  conditioning under the grid, cross-frame attention, STEM, Pix2Video;
- ``composite``: compositing, Harmonizer's filters, its regressor, harmonisation;
- ``evaluate``: metrics, the edit report, its plots, the compare strip.

Each stage imports only itself and ``core``; ``core`` imports no stage. Nothing here
imports ``comfy``: every function is unit-testable on CPU without ComfyUI. Modules are
imported individually (``from drive_ops.core import frame_plan``) so that a node only
pays for what it uses. The maths each module implements is in docs/algorithms.md.
"""
