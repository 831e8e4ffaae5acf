"""V3 ComfyUI nodes: sockets, validation, progress and model-management glue.

The only layer of the pack that imports ``comfy``; the maths lives in ``drive_ops``.
"""
