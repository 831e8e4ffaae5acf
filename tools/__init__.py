"""Maintainer tools (not needed to use the pack): the workflow builder and its frontend driver, the README strip.

Run them from the repository root: ``python tools/build_workflows.py --url ...`` (standard
library only) or ``python -m tools.make_readme_strip`` (imports drive_ops).
"""
