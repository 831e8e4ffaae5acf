#!/usr/bin/env python3
"""Every DRIVE node's inputs in declaration order, read from the schemas without ComfyUI.

    python tools/node_inputs.py            # print the inputs as JSON
    python tools/node_inputs.py --write    # rewrite the committed snapshot, tests/data/node_inputs.json

Saved UI workflows store widget values by position, so a reordered, renamed or removed input
silently breaks users' files; tests/test_node_inputs.py holds the schemas to the snapshot.
Rewrite it only for a deliberate change (a new input added at the end).

The node modules are imported with recording stand-ins for ComfyUI's modules: ``io.Schema``
keeps its arguments, ``io.<Type>.Input(name, ...)`` records the name, type and whether it is
optional, and everything else from ``comfy`` is an inert placeholder. Each node's own
``define_schema()`` then runs as written, dynamic input lists included. The integration
test of /object_info checks the same snapshot against a real ComfyUI.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT = REPO / "tests" / "data" / "node_inputs.json"
COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "folder_paths", "latent_preview", "node_helpers", "server"}
PACK = "drive_pack_schemas"


class Placeholder:
    """Any ComfyUI object the node modules touch outside their schemas: inert, falsy and empty.

    As a path it is an empty folder (``folder_paths.get_input_directory()`` and the like); as a
    base class, ``object``.
    """

    folder = tempfile.gettempdir()

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name: str) -> "Placeholder":
        if name.startswith("__"):  # protocol look-ups (``__mro_entries__`` when a node module subclasses comfy's)
            raise AttributeError(name)
        return Placeholder()

    def __call__(self, *args, **kwargs) -> "Placeholder":
        return Placeholder()

    def __bool__(self) -> bool:
        return False

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 0

    def __getitem__(self, key) -> "Placeholder":
        return Placeholder()

    def __fspath__(self) -> str:
        return self.folder

    def __mro_entries__(self, bases: tuple) -> tuple:
        """A class deriving from a ComfyUI class (``comfy.samplers.KSAMPLER``) derives from object instead."""
        return (object,)


class IoType(Placeholder):
    """``io.Float``, ``io.Custom("SAM2_MODEL")``, ...: records inputs, ignores outputs."""

    def __init__(self, name: str):
        self.name = name

    def Input(self, name: str, *args, optional: bool = False, **kwargs) -> dict:  # noqa: N802 (ComfyUI's name)
        return {"name": name, "type": self.name, "optional": bool(optional)}

    def Output(self, *args, **kwargs) -> Placeholder:  # noqa: N802
        return Placeholder()


class ComfyNodeBase:
    """Stands in for ``io.ComfyNode``: node classes subclass it and keep their classmethods."""


class IoModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name == "ComfyNode":
            return ComfyNodeBase
        if name == "Schema":
            return lambda **kwargs: kwargs
        if name == "Custom":
            return lambda type_name: IoType(f"Custom:{type_name}")
        if name[:1].isupper():
            return IoType(name)
        return Placeholder()


class PlaceholderModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return Placeholder()


class ComfyStandIns(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves every ComfyUI module the pack imports; ``comfy_api.*.io`` records schemas."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in COMFY_MODULES:
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        if spec.name.endswith(".io"):
            return IoModule(spec.name)
        module = PlaceholderModule(spec.name)
        module.__path__ = []
        if spec.name.startswith("comfy_api"):
            module.io = IoModule(spec.name + ".io")
            module.ComfyExtension = ComfyNodeBase
        return module

    def exec_module(self, module) -> None:
        pass


def record_inputs() -> dict[str, dict[str, list[list[str]]]]:
    """node_id -> {"required": [[name, type], ...], "optional": [...]} in declaration order."""
    sys.meta_path.insert(0, ComfyStandIns())
    Placeholder.folder = tempfile.mkdtemp(prefix="node_inputs_")
    spec = importlib.util.spec_from_file_location(PACK, REPO / "__init__.py", submodule_search_locations=[str(REPO)])
    sys.modules[PACK] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sys.modules[PACK])
    extension = importlib.import_module(f"{PACK}.nodes.extension")
    out = {}
    for node in extension.NODE_CLASSES:
        schema = node.define_schema()
        groups = {"required": [], "optional": []}
        for entry in schema.get("inputs", []):
            groups["optional" if entry["optional"] else "required"].append([entry["name"], entry["type"]])
        out[schema["node_id"]] = groups
    os.rmdir(Placeholder.folder)
    return dict(sorted(out.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help=f"rewrite {SNAPSHOT.relative_to(REPO)}")
    args = parser.parse_args(argv)
    text = json.dumps(record_inputs(), indent=1) + "\n"
    if args.write:
        SNAPSHOT.write_text(text)
        print(f"node_inputs.py: wrote {SNAPSHOT.relative_to(REPO)}")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
