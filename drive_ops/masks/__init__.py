"""Object masks through the clip: SAM 2 build and tracking, SAMURAI's motion model, flow propagation, clean-ups.

Import graph inside: kalman_box <- samurai <- sam2_predictor <- sam2_build, and
prompts + samurai <- tracking; nothing imports back.
"""
