"""Video in and out: DRIVE_LoadVideo and DRIVE_SaveVideo."""

NODES: list = []
