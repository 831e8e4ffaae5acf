"""What every stage shares: chunking, the frame plan and its inverse, mask frames and morphology, optical flow, progress.

Imports nothing else from drive_ops.
"""
