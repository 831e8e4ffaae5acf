"""Every ComfyUI wrapper the pack sets passes on the arguments it does not use (read statically).

A wrapper is ``fn(executor, *args, **kwargs)`` around a core function (PREDICT_NOISE,
APPLY_MODEL, CALC_COND_BATCH, OUTER_SAMPLE); when a newer core adds an argument to that
function, a wrapper with a fixed parameter list breaks every run with a TypeError. So each one
takes ``*args, **kwargs`` and hands them to ``executor`` unchanged.
"""

from __future__ import annotations

import ast
from pathlib import Path

PATCHES = Path(__file__).resolve().parent.parent / "nodes" / "patches"


def _wrappers() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(PATCHES.glob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, ast.FunctionDef) and fn.args.args and fn.args.args[0].arg == "executor":
                found.append((f"{path.name}:{fn.name}", fn))
    return found


def test_every_wrapper_passes_on_what_it_does_not_use():
    wrappers = _wrappers()
    assert len(wrappers) >= 8, [name for name, _ in wrappers]
    for name, fn in wrappers:
        assert fn.args.vararg is not None and fn.args.kwarg is not None, f"{name} lacks *args or **kwargs"
        rest, extra = fn.args.vararg.arg, fn.args.kwarg.arg
        calls = [c for c in ast.walk(fn) if isinstance(c, ast.Call) and getattr(c.func, "id", None) == "executor"]
        assert calls, f"{name} never calls the executor"
        for call in calls:
            starred = [a.value.id for a in call.args if isinstance(a, ast.Starred)]
            double = [k.value.id for k in call.keywords if k.arg is None]
            assert starred == [rest] and double == [extra], f"{name} drops *{rest} or **{extra} (line {call.lineno})"
