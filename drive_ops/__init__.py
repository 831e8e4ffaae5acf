"""Pure PyTorch operations behind the DRIVE nodes.

Nothing here imports ``comfy``: every function is unit-testable on CPU without
ComfyUI. Modules are imported individually (``from drive_ops import frame_size``)
so that a node only pays for what it uses.
"""
