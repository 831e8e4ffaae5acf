"""V3 ComfyUI nodes: sockets, validation, progress and model-management glue.

The only layer of the pack that imports ``comfy``; the maths lives in ``drive_ops``.
One module per node category, named like it (``video``, ``track``, ``mask``, ``tune``, ``invert``,
``edit``, ``consistency``, ``composite``, ``evaluate``: category ``DRIVE/<module>``),
listed in pipeline order by ``extension``. The ComfyUI hooks the nodes set on a MODEL
live in ``patches``; ``model_folders`` registers the pack's model folders. No node
module imports another.
"""
