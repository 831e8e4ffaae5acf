"""Turn a UI-format ComfyUI workflow (what users save and share) into the API format /prompt takes.

ComfyUI's backend has no such converter; the frontend does it in the browser. This one
follows the frontend 1.27 rules, checked against its ``graphToPrompt`` output:

- ``widgets_values`` are positional over the node's widget inputs in schema order
  (required, then optional); an INT named ``seed``/``noise_seed`` or any input with
  ``control_after_generate`` carries one extra value (the control mode); upload
  buttons append their value at the end. A linked widget input keeps its value but
  the link wins.
- Display widgets that the frontend's extensions add (PreviewAny's ``preview``) are sent
  empty, as the frontend does.
- Frontend-only nodes (Note, MarkdownNote, Reroute, PrimitiveNode) are not sent;
  links through a Reroute are followed to their source.
- Muted nodes (mode 2) are dropped with every input that reads from them; bypassed
  nodes (mode 4) pass each output through from an input of the same type.
"""

from __future__ import annotations

import copy
from typing import Any

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
MODE_MUTED, MODE_BYPASSED = 2, 4
# Widgets the frontend's own extensions add to core nodes: not in /object_info nor in the
# saved widgets_values, but sent with the prompt (the backend ignores them).
EXTENSION_WIDGETS = {"PreviewAny": {"preview": ""}}


class WorkflowError(ValueError):
    """The workflow cannot be converted; the message says which node and why."""


def _input_spec_type(spec: list) -> str:
    kind = spec[0]
    return "COMBO" if isinstance(kind, list) else kind


def _widget_inputs(schema: dict) -> list[tuple[str, int]]:
    """(input name, number of widgets_values entries it takes), in the frontend's order."""
    widgets = []
    for group in ("required", "optional"):
        order = schema.get("input_order", {}).get(group) or list(schema["input"].get(group, {}))
        for name in order:
            spec = schema["input"][group][name]
            kind = _input_spec_type(spec)
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if kind not in WIDGET_TYPES or opts.get("forceInput"):
                continue
            control = opts.get("control_after_generate") or (kind == "INT" and name in ("seed", "noise_seed"))
            widgets.append((name, 2 if control else 1))
    return widgets


def ui_to_api(workflow: dict, object_info: dict) -> dict[str, dict[str, Any]]:
    """Convert a UI-format workflow to an API-format prompt, given the server's /object_info."""
    if workflow.get("definitions", {}).get("subgraphs"):
        raise WorkflowError("this workflow uses subgraphs; unpack them in the editor (right click > Unpack) first")
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = {ln[0]: ln for ln in workflow.get("links", [])}

    def source_of(link_id: int | None) -> tuple[int, int] | None:
        """The (node id, output slot) that really feeds a link, through reroutes and bypasses."""
        seen = set()
        while link_id is not None:
            if link_id in seen:
                raise WorkflowError(f"link {link_id} loops through reroutes or bypassed nodes")
            seen.add(link_id)
            link = links.get(link_id)
            if link is None:
                return None
            _, src_id, src_slot, _, _, link_type = link[:6]
            src = nodes.get(src_id)
            if src is None or src.get("mode") == MODE_MUTED:
                return None
            if src["type"] == "Reroute":
                link_id = (src.get("inputs") or [{}])[0].get("link")
                continue
            if src.get("mode") == MODE_BYPASSED:
                link_id = _bypass_input_link(src, src_slot, link_type)
                continue
            return src_id, src_slot
        return None

    prompt: dict[str, dict[str, Any]] = {}
    for node in sorted(workflow["nodes"], key=lambda n: n.get("order", 0)):
        kind = node["type"]
        if kind in FRONTEND_ONLY or node.get("mode") in (MODE_MUTED, MODE_BYPASSED):
            continue
        schema = object_info.get(kind)
        if schema is None:
            raise WorkflowError(f"node {node['id']} is of type {kind!r}, which this ComfyUI does not have; "
                                "install the pack that provides it")
        inputs: dict[str, Any] = dict(EXTENSION_WIDGETS.get(kind, {}))
        values = node.get("widgets_values") or []
        if isinstance(values, dict):
            raise WorkflowError(f"node {node['id']} ({kind}) stores its widgets as a dict; "
                                "re-save the workflow with a current frontend")
        pos = 0
        for name, width in _widget_inputs(schema):
            if pos < len(values):
                inputs[name] = values[pos]
            pos += width
        for slot in node.get("inputs") or []:
            if slot.get("link") is None:
                continue
            src = source_of(slot["link"])
            if src is None:
                inputs.pop(slot["name"], None)
            else:
                inputs[slot["name"]] = [str(src[0]), src[1]]
        title = node.get("title") or schema.get("display_name") or kind
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": kind, "_meta": {"title": title}}
    return prompt


def with_prompt_values(workflow: dict, prompt: dict, object_info: dict) -> dict:
    """A copy of a UI workflow whose widget values are those of ``prompt`` (its API form, after overrides).

    The inverse of the widget half of ``ui_to_api``: what a run embeds in its results, so the
    graph dragged back into ComfyUI shows the settings that made them. Links are left alone.
    """
    out = copy.deepcopy(workflow)
    for node in out.get("nodes", []):
        api, schema = prompt.get(str(node.get("id"))), object_info.get(node.get("type"))
        values = node.get("widgets_values")
        if api is None or schema is None or not isinstance(values, list):
            continue
        pos = 0
        for name, width in _widget_inputs(schema):
            value = api["inputs"].get(name)
            if pos < len(values) and name in api["inputs"] and not _is_link(value):
                values[pos] = value
            pos += width
    return out


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _bypass_input_link(node: dict, out_slot: int, out_type: str) -> int | None:
    """The input link a bypassed node passes through to output ``out_slot``: same slot first, then same type."""
    ins = node.get("inputs") or []
    if out_slot < len(ins) and ins[out_slot].get("type") == out_type and ins[out_slot].get("link") is not None:
        return ins[out_slot]["link"]
    for slot in ins:
        if slot.get("type") == out_type and slot.get("link") is not None:
            return slot["link"]
    return None
