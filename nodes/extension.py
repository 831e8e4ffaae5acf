"""The node list ComfyUI registers: one import line per stage module."""

from comfy_api.latest import ComfyExtension, io

from . import alt_methods, editing, video_io

NODE_CLASSES: list[type[io.ComfyNode]] = [
    *video_io.NODES,
    *editing.NODES,
    *alt_methods.NODES,
]


class DriveExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return list(NODE_CLASSES)
