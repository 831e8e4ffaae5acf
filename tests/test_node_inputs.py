"""Every node's inputs, names and order, held to the committed snapshot (no ComfyUI needed).

Saved UI workflows store widget values by position: a reordered, renamed or removed input
silently breaks users' files. tools/node_inputs.py reads the schemas; it runs in its own
process because it imports the node modules against stand-ins for ComfyUI's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

SNAPSHOT = REPO_ROOT / "tests" / "data" / "node_inputs.json"
REGENERATE = "python tools/node_inputs.py --write"


def _declared() -> dict:
    out = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "node_inputs.py")], capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def _differences(snapshot: dict, declared: dict) -> list[str]:
    problems = []
    for node_id in sorted(snapshot.keys() - declared.keys()):
        problems.append(f"{node_id}: node removed (every saved workflow that uses it breaks)")
    for node_id in sorted(declared.keys() - snapshot.keys()):
        problems.append(f"{node_id}: new node; if intended, regenerate the snapshot ({REGENERATE})")
    for node_id in sorted(snapshot.keys() & declared.keys()):
        for group in ("required", "optional"):
            old, new = snapshot[node_id][group], declared[node_id][group]
            if old == new:
                continue
            if new[:len(old)] == old:
                problems.append(f"{node_id}.{group}: new inputs {[n for n, _ in new[len(old):]]} at the end; "
                                f"if intended, regenerate the snapshot ({REGENERATE})")
            else:
                problems.append(f"{node_id}.{group}: inputs changed from {old} to {new}: a renamed, retyped, "
                                f"reordered or removed input breaks saved workflows; add new inputs at the end")
    return problems


def test_node_inputs_match_the_snapshot():
    problems = _differences(json.loads(SNAPSHOT.read_text()), _declared())
    assert not problems, "node inputs differ from tests/data/node_inputs.json:\n" + "\n".join(problems)


def test_differences_tell_appends_from_breaking_changes():
    old = {"DRIVE_A": {"required": [["a", "Int"], ["b", "Float"]], "optional": []}}
    appended = {"DRIVE_A": {"required": [["a", "Int"], ["b", "Float"], ["c", "Int"]], "optional": []}}
    swapped = {"DRIVE_A": {"required": [["b", "Float"], ["a", "Int"]], "optional": []}}
    assert "at the end" in _differences(old, appended)[0]
    assert "breaks saved workflows" in _differences(old, swapped)[0]
    assert "node removed" in _differences(old, {})[0]
