"""The node list ComfyUI registers: one module per node category, in pipeline order."""

from comfy_api.latest import ComfyExtension, io

from . import composite, consistency, edit, evaluate, invert, mask, track, tune, video

NODE_CLASSES: list[type[io.ComfyNode]] = [
    *video.NODES,        # DRIVE/video: Load Video, Save Video
    *track.NODES,        # DRIVE/track: Load SAM2 Model, Track Object
    *mask.NODES,         # DRIVE/mask: Propagate Mask, Mask Tools, Mask Preview
    *tune.NODES,         # DRIVE/tune: Tune-A-Video, Save / Load Tuned Video Model
    *invert.NODES,       # DRIVE/invert: Invert Video, EasyInv Sampler, STEM Attention
    *edit.NODES,         # DRIVE/edit: Masked-CFG Sampler, RAVE Grid Patch, Masked-CFG Patch
    *consistency.NODES,  # DRIVE/consistency: Cross-Frame Attention, Pix2Video Sampler
    *composite.NODES,    # DRIVE/composite: Fill Background, Align Edited Clip, Composite Background, Color Filters,
                         # Harmonizer, Harmonize
    *evaluate.NODES,     # DRIVE/evaluate: Edit Report, Compare Strip
]


class DriveExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODE_CLASSES)
