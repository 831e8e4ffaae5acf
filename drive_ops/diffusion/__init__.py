"""The editing engine's maths: schedule, DDIM / EasyInv inversion, masked CFG, RAVE grids and the
conditioning under them, cross-frame attention, STEM attention, Pix2Video's latent guidance, and
Tune-A-Video's tuning (temporal attention, the tuning loop, the base-model fingerprint, the tuned file)."""
