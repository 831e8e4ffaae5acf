"""Every combo of every node is named in its ``validate_inputs`` (read statically, no ComfyUI needed).

From about 0.7 core checks a V3 combo's value against its options before the node runs and
answers "Value not in list"; only inputs named in ``validate_inputs`` are left to the node, so
a combo missing there would lose the pack's message (its options, or the model folder to put
a missing file in) on newer cores. tests/integration/test_bad_input_api.py shows the messages
through the API on each core.
"""

from __future__ import annotations

import ast

from pack_nodes import NODES_DIR


def _combos_and_validated() -> dict[str, tuple[set[str], set[str]]]:
    """node class name -> (its combo input ids, the parameters of its validate_inputs)."""
    out = {}
    for path in sorted(NODES_DIR.rglob("*.py")):
        for cls in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)):
            combos = {call.args[0].value for call in ast.walk(cls) if isinstance(call, ast.Call)
                      and isinstance(call.func, ast.Attribute) and call.func.attr == "Input"
                      and isinstance(call.func.value, ast.Attribute) and call.func.value.attr == "Combo"}
            validate = next((f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "validate_inputs"),
                            None)
            named = {a.arg for a in validate.args.args} if validate else set()
            if combos:
                out[f"{path.stem}.{cls.name}"] = combos, named
    return out


def test_every_combo_is_left_to_the_node():
    found = _combos_and_validated()
    assert len(found) >= 15, sorted(found)
    missing = {node: sorted(combos - named) for node, (combos, named) in found.items() if combos - named}
    assert not missing, f"combos core would check with its generic message (name them in validate_inputs): {missing}"
