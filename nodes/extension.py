"""The node list ComfyUI registers: one import line per stage module, in pipeline order."""

from comfy_api.latest import ComfyExtension, io

from . import alt_methods, compositing, editing, masks, metrics, tracking, video_io

NODE_CLASSES: list[type[io.ComfyNode]] = [
    *video_io.NODES,
    *tracking.NODES,
    *masks.NODES,
    *editing.NODES,
    *alt_methods.NODES,
    *compositing.NODES,
    *metrics.NODES,
]


class DriveExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODE_CLASSES)
