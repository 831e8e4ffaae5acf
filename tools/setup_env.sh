#!/usr/bin/env bash
# Set up everything the tests need on a fresh CPU machine; every step is skipped when already done.
#   1. .venv: CPU torch ($DRIVE_TORCH, default torch==2.13.0) held by a pip constraint so no package
#      can pull a CUDA build, the pack's and the tests' dependencies, sam2 without its CUDA extension.
#   2. ComfyUI 0.3.64 under .cache/ (from ../shared/comfyui when that archive is beside the checkout,
#      else a clone of the public repository at tag v0.3.64), its requirements in the same .venv, and
#      PyPI's torchvision made importable on CPU torch (tools/torchvision_cpu.py; the pack never imports it).
#   3. The random-weight SD1.5 checkpoint the integration tests load (tools/make_random_sd15.py), and
#      random-weight stand-ins under the official names the workflows use (tools/make_stand_in_models.py),
#      so the README's main command runs on this ComfyUI; they are listed in its models/STAND_INS.txt.
#   4. Debian's chromium and playwright-core for the browser tests, where apt-get and npm can install them.
# DRIVE_CACHE moves the cache folder (default .cache in the checkout, ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${DRIVE_VENV:-.venv}"
CACHE="${DRIVE_CACHE:-.cache}"
TORCH_SPEC="${DRIVE_TORCH:-torch==2.13.0}"
COMFY_TAG="v0.3.64"
COMFY_DIR="$CACHE/ComfyUI-0.3.64"
COMFY_ARCHIVE="../shared/comfyui/comfyui-0.3.64-a125cd84.tar.gz"
COMFY_ARCHIVE_SHA256="4be89530537cd12a841f2f6ad9c94896ffc0b50b28c4c6bad882d45c32a0b4ca"
CHECKPOINT="$COMFY_DIR/models/checkpoints/sd15_random_fp16.safetensors"
PLAYWRIGHT="playwright-core@1.65.1"
step() { echo "setup_env.sh: $*"; }

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
step "$VENV ready (torch $("$PY" -c 'import torch; print(torch.__version__)'))"

if [ ! -f "$COMFY_DIR/main.py" ]; then
  mkdir -p "$CACHE"
  PARTIAL="$COMFY_DIR.partial"
  rm -rf "$PARTIAL" && mkdir -p "$PARTIAL"
  if [ -f "$COMFY_ARCHIVE" ]; then
    echo "$COMFY_ARCHIVE_SHA256  $COMFY_ARCHIVE" | sha256sum -c --quiet
    tar -xzf "$COMFY_ARCHIVE" -C "$PARTIAL"
    step "ComfyUI $COMFY_TAG extracted from $COMFY_ARCHIVE"
  else
    git clone -q --depth 1 --branch "$COMFY_TAG" https://github.com/comfyanonymous/ComfyUI "$PARTIAL"
    step "ComfyUI $COMFY_TAG cloned from github.com/comfyanonymous/ComfyUI"
  fi
  mv "$PARTIAL" "$COMFY_DIR"
fi
COMFY_REQS="$(mktemp)"
grep -vE '^\s*(#|$)|^(torch|torchvision|torchaudio)\s*$' "$COMFY_DIR/requirements.txt" > "$COMFY_REQS"
"$PY" -m pip install -q -c "$CONSTRAINTS" -r "$COMFY_REQS" torchvision
rm -f "$COMFY_REQS"
SITE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cp tools/torchvision_cpu.py "$SITE/drive_torchvision_cpu.py"
echo "import drive_torchvision_cpu; drive_torchvision_cpu.install()" > "$SITE/drive_torchvision_cpu.pth"
"$PY" -c 'import torchvision, torch; torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)'
if "$PY" -m pip list 2>/dev/null | grep -iqE '^(nvidia|triton)'; then
  echo "setup_env.sh: CUDA packages crept into $VENV; remove it and run again" >&2; exit 1
fi
step "ComfyUI $COMFY_TAG ready in $COMFY_DIR"

[ -f "$CHECKPOINT" ] || "$PY" tools/make_random_sd15.py --comfy "$COMFY_DIR" "$CHECKPOINT"
"$PY" tools/make_stand_in_models.py --models "$COMFY_DIR/models" --comfy "$COMFY_DIR"

if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
  apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1; } \
    || step "could not install chromium with apt-get: the browser tests will skip"
fi
if [ ! -d "$CACHE/node/node_modules/playwright-core" ] && command -v npm >/dev/null; then
  npm install -s --no-audit --no-fund --prefix "$CACHE/node" "$PLAYWRIGHT" >/dev/null \
    || step "could not install $PLAYWRIGHT with npm: the browser tests will skip"
fi
step "done"
