#!/usr/bin/env bash
# Create or update the test environment (.venv) on a fresh CPU machine.
# torch is held at the local CPU build (DRIVE_TORCH, default torch==2.13.0) through a
# constraint, so no dependency can pull a CUDA torch; sam2 installs without its CUDA
# extension and without build isolation (which would download CUDA torch to build it).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DRIVE_VENV:-.venv}"
TORCH_SPEC="${DRIVE_TORCH:-torch==2.13.0}"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "$TORCH_SPEC" > "$CONSTRAINTS"
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q -c "$CONSTRAINTS" "$TORCH_SPEC"
mapfile -t DEPS < <("$PY" - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
)
"$PY" -m pip install -q -c "$CONSTRAINTS" "${DEPS[@]}"
"$PY" -m pip show -q sam2 2>/dev/null || SAM2_BUILD_CUDA=0 "$PY" -m pip install -q --no-deps --no-build-isolation sam2==1.1.0
echo "setup_env.sh: $VENV ready (torch $("$PY" -c 'import torch; print(torch.__version__)'))"
