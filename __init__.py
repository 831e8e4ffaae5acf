"""DRIVE for ComfyUI: training-free, instance-level video editing nodes.

ComfyUI imports this file; it only exposes ``comfy_entrypoint`` and ``WEB_DIRECTORY`` (the
frontend extension under web/: Track Object's click-to-pick canvas). Node modules (and
through them torch-heavy code) load when ComfyUI asks for the node list, and every
optional dependency (sam2, weight files) is imported by the node that needs it.
"""

WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    """Return the pack's ComfyExtension (V3 node API)."""
    from .nodes.extension import DriveExtension

    return DriveExtension()
