"""The ``sam2`` package, imported on demand, and its video predictor with the SAMURAI hooks.

``sam2`` is optional (its PyPI metadata pulls a CUDA torch), so :func:`import_sam2` imports
it lazily and a missing install raises an error with the exact recipe. The predictor
subclass is built on first use; ``sam2_build`` constructs it and ``tracking`` drives it.
SAMURAI joins in through a forward hook on the mask decoder and thin overrides while
``model._samurai`` holds a ``samurai.SamuraiRun``.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .samurai import FrameScore, SamuraiRun, samurai_memory_view

SAM2_INSTALL_RECIPE = ("pip install hydra-core iopath\n"
                       "SAM2_BUILD_CUDA=0 pip install --no-deps --no-build-isolation sam2==1.1.0")


def import_sam2():
    """Import the ``sam2`` package or raise ImportError with the install recipe."""
    try:
        import sam2.modeling.sam2_base  # noqa: F401  (also checks hydra, which sam2/__init__ needs)
        import sam2.sam2_video_predictor
    except ImportError as err:
        raise ImportError(
            f"SAM2 tracking needs the `sam2` package ({err}). Install it into ComfyUI's python "
            f"without its CUDA build (it needs no torchvision):\n{SAM2_INSTALL_RECIPE}") from err
    return sam2


@functools.cache
def _predictor_class():
    """SAM2VideoPredictor with the SAMURAI hooks (built on first use: sam2 is optional)."""
    import_sam2()
    from sam2.sam2_video_predictor import SAM2VideoPredictor

    class _SamuraiVideoPredictor(SAM2VideoPredictor):
        """SAM 2's video predictor; SAMURAI joins in while ``self._samurai`` holds a run."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._samurai: SamuraiRun | None = None
            self.sam_mask_decoder.register_forward_hook(self._samurai_decoder_hook, with_kwargs=True)

        def _samurai_decoder_hook(self, module, args, kwargs, output):
            run = self._samurai
            if run is None or not run.in_step:
                return None
            masks, ious, tokens, obj_logits = output
            # the heads keep an object where logits > 0: shift so that means > min_obj_score_logits
            obj_logits = obj_logits - run.config.min_obj_score_logits
            if masks.shape[1] == 1:
                run.last = (float(ious[0, 0]), None)
                return masks, ious, tokens, obj_logits
            if masks.shape[0] != 1:
                raise RuntimeError("SAMURAI tracks a single object")
            high_res = F.interpolate(masks.float(), size=(self.image_size, self.image_size), mode="bilinear",
                                     align_corners=False)[0]
            if float(obj_logits[0, 0]) <= 0:
                high_res = torch.full_like(high_res, -1.0)
            best, kf_score = run.selector.select(high_res, ious[0])
            run.last = (float(ious[0, best]), kf_score)
            pick = slice(best, best + 1)
            return masks[:, pick], ious[:, pick], tokens[:, pick], obj_logits

        def track_step(self, *args, **kwargs):
            run = self._samurai
            if run is None:
                return super().track_step(*args, **kwargs)
            run.in_step, run.last = True, None
            try:
                out = super().track_step(*args, **kwargs)
            finally:
                run.in_step = False
            out["object_score_logits"] = out["object_score_logits"] + run.config.min_obj_score_logits
            if run.last is not None:
                frame_idx = kwargs["frame_idx"] if "frame_idx" in kwargs else args[0]
                run.scores[frame_idx] = FrameScore(run.last[0], float(out["object_score_logits"].max()), run.last[1])
            return out

        def _encode_new_memory(self, **kwargs):
            run = self._samurai
            if run is not None and run.in_step:
                kwargs["object_score_logits"] = kwargs["object_score_logits"] + run.config.min_obj_score_logits
            return super()._encode_new_memory(**kwargs)

        def _prepare_memory_conditioned_features(self, **kwargs):
            run = self._samurai
            if run is not None and not kwargs["is_init_cond_frame"]:
                kwargs["output_dict"] = samurai_memory_view(run, kwargs["frame_idx"], kwargs["output_dict"],
                                                             kwargs.get("track_in_reverse", False), self.num_maskmem)
            return super()._prepare_memory_conditioned_features(**kwargs)

    _SamuraiVideoPredictor.__name__ = "SamuraiVideoPredictor"
    return _SamuraiVideoPredictor


def SamuraiVideoPredictor(**kwargs):  # noqa: N802  (a class factory: sam2 is imported on first use)
    """Construct the SAMURAI-capable SAM2VideoPredictor subclass with sam2's model kwargs."""
    return _predictor_class()(**kwargs)
