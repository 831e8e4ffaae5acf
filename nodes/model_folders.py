"""The model folders the pack adds to ComfyUI: models/<name>, plus any extra_model_paths.yaml entry."""

from __future__ import annotations

import os

import folder_paths


def register_model_folder(name: str, extensions: set[str]) -> None:
    """Register models/<name> with folder_paths, listing only files with these extensions."""
    folder_paths.add_model_folder_path(name, os.path.join(folder_paths.models_dir, name))
    folder_paths.folder_names_and_paths[name][1].update(extensions)
