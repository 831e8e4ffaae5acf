"""The ComfyUI hooks the DRIVE nodes put on a cloned MODEL, and the samplers they hand to comfy.sample.

- ``keys``: every wrapper key, transformer-options key and patch point the pack sets, and what stacks;
- ``grid_wrapper``: the RAVE grid shuffle as a CALC_COND_BATCH wrapper;
- ``masked_cfg_hook``: DRIVE's masked CFG as a post-CFG function;
- ``attention``: cross-frame attention (attn1 patch + frame-order wrappers) and STEM (attn1 replace);
- ``samplers``: KSAMPLER factories (DDIM, DDIM / EasyInv inversion, Pix2Video) and the one-box run.

No module here imports a node module; the node modules (one per category) import these.
"""
