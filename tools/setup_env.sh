#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine; every step is skipped when already done.
#   1. Two venvs, one per tested ComfyUI core: .venv (ComfyUI 0.3.64) and .venv-0.33 (ComfyUI 0.33.0).
#      Each holds torch ($DRIVE_TORCH, default torch==2.13.0) held by a pip constraint, the pack's and
#      the tests' dependencies, sam2 without its CUDA extension, and that core's requirements.
#      The torch build: DRIVE_TORCH_BUILD=cpu|cuda|auto (auto: cuda where nvidia-smi sees a GPU, else
#      cpu). A CPU build comes from a local wheel folder pip knows (--no-index) or else PyTorch's CPU
#      index; a CUDA build from PyPI. A venv holding the other build is switched, so a rerun heals it.
#   2. The cores under .cache/ (from ../shared/comfyui when the archives are beside the checkout, else
#      clones of the public repository at the tags), with PyPI's torchvision (both) and torchaudio
#      (0.33) made importable on CPU torch (tools/torchvision_cpu.py, tools/torchaudio_cpu.py; the pack
#      never imports either).
#   3. The random-weight SD1.5 checkpoint the integration tests load (tools/make_random_sd15.py), and
#      random-weight stand-ins under the official names the workflows use (tools/make_stand_in_models.py),
#      so the README's main command runs on this ComfyUI; they are listed in its models/STAND_INS.txt.
#      0.33.0's models folder links to the same files.
#   4. Debian's chromium and playwright-core for the browser tests, where apt-get and npm can install them,
#      and the frontend packages the browser tests load besides the cores' own (.cache/frontends/).
# DRIVE_CACHE moves the cache folder (default .cache in the checkout, ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE="${DRIVE_CACHE:-.cache}"
TORCH_SPEC="${DRIVE_TORCH:-torch==2.13.0}"
TORCH_BUILD="${DRIVE_TORCH_BUILD:-auto}"
CPU_INDEX="https://download.pytorch.org/whl/cpu"
PLAYWRIGHT="playwright-core@1.65.1"
EXTRA_FRONTENDS=("1.58.1")
step() { echo "setup_env.sh: $*"; }

if [ "$TORCH_BUILD" = auto ]; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then TORCH_BUILD=cuda; else TORCH_BUILD=cpu; fi
fi
case "$TORCH_BUILD" in cpu|cuda) ;; *) echo "setup_env.sh: DRIVE_TORCH_BUILD=$TORCH_BUILD: use cpu, cuda or auto" >&2; exit 2;; esac
CONSTRAINTS="$(mktemp)"
REQS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS" "$REQS"' EXIT
echo "$TORCH_SPEC" > "$CONSTRAINTS"

# install_torch PY: the wanted build of $TORCH_SPEC in the venv of PY; another build there is replaced.
install_torch() {
  local py="$1" have
  have="$("$py" -c 'import torch; print("cuda" if torch.version.cuda else "cpu")' 2>/dev/null || true)"
  if [ -n "$have" ] && [ "$have" != "$TORCH_BUILD" ]; then
    step "replacing the $have build of torch in $py's venv by the $TORCH_BUILD build"
    "$py" -m pip uninstall -q -y torch
  fi
  if [ "$TORCH_BUILD" = cpu ]; then
    # a CPU wheel in a local folder pip is pointed at (find-links) comes first; its dependencies from the index
    if "$py" -m pip install -q --no-index --no-deps "$TORCH_SPEC" 2>/dev/null; then
      "$py" -m pip install -q -c "$CONSTRAINTS" "$TORCH_SPEC"
    else
      "$py" -m pip install -q --index-url "$CPU_INDEX" "$TORCH_SPEC"
    fi
    # what a CUDA build or a dependency brought along is dead weight beside a CPU torch
    mapfile -t STRAY < <("$py" -m pip list 2>/dev/null | awk 'tolower($1) ~ /^(nvidia-|triton$)/ {print $1}')
    [ ${#STRAY[@]} -eq 0 ] || "$py" -m pip uninstall -q -y "${STRAY[@]}"
  else
    "$py" -m pip install -q "$TORCH_SPEC"
  fi
}

# setup_core VERSION TAG ARCHIVE SHA256 VENV SHIMS...: a ComfyUI core under $CACHE and its venv.
setup_core() {
  local version="$1" tag="$2" archive="$3" sha="$4" venv="$5"; shift 5
  local dir="$CACHE/ComfyUI-$version" py="$venv/bin/python" site shim
  [ -x "$py" ] || python3 -m venv "$venv"
  "$py" -m pip install -q --upgrade pip
  install_torch "$py"
  mapfile -t DEPS < <("$py" - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["test"]))
PY
)
  "$py" -m pip install -q -c "$CONSTRAINTS" "${DEPS[@]}"
  "$py" -m pip show -q sam2 2>/dev/null || SAM2_BUILD_CUDA=0 "$py" -m pip install -q --no-deps --no-build-isolation sam2==1.1.0

  if [ ! -f "$dir/main.py" ]; then
    mkdir -p "$CACHE"
    rm -rf "$dir.partial" && mkdir -p "$dir.partial"
    if [ -f "$archive" ]; then
      echo "$sha  $archive" | sha256sum -c --quiet
      tar -xzf "$archive" -C "$dir.partial"
      step "ComfyUI $version extracted from $archive"
    else
      git clone -q --depth 1 --branch "$tag" https://github.com/comfyanonymous/ComfyUI "$dir.partial"
      step "ComfyUI $version cloned from github.com/comfyanonymous/ComfyUI ($tag)"
    fi
    mv "$dir.partial" "$dir"
  fi
  grep -vE '^\s*(#|$)|^(torch|torchvision|torchaudio)\s*$' "$dir/requirements.txt" > "$REQS"
  "$py" -m pip install -q -c "$CONSTRAINTS" -r "$REQS" "$@"
  site="$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  for shim in "$@"; do
    cp "tools/${shim}_cpu.py" "$site/drive_${shim}_cpu.py"
    echo "import drive_${shim}_cpu; drive_${shim}_cpu.install()" > "$site/drive_${shim}_cpu.pth"
  done
  [ "$TORCH_BUILD" = cuda ] || install_torch "$py"
  "$py" -c 'import torchvision, torch; torchvision.ops.nms(torch.zeros(1, 4), torch.ones(1), 0.5)'
  if [[ " $* " == *" torchaudio "* ]]; then "$py" -c 'import torchaudio.functional'; fi
  step "ComfyUI $version ready in $dir with $venv (torch $("$py" -c 'import torch; print(torch.__version__)'))"
}

setup_core 0.3.64 v0.3.64 ../shared/comfyui/comfyui-0.3.64-a125cd84.tar.gz \
  4be89530537cd12a841f2f6ad9c94896ffc0b50b28c4c6bad882d45c32a0b4ca .venv torchvision
setup_core 0.33.0 v0.33.0 ../shared/comfyui/comfyui-0.33.0-783545f.tar.gz \
  6a7523c27b7df3b714e1093dced2de035fee91356ef1d72a6539373ef575f23c .venv-0.33 torchvision torchaudio

OLD="$CACHE/ComfyUI-0.3.64/models" NEW="$CACHE/ComfyUI-0.33.0/models"
CHECKPOINT="$OLD/checkpoints/sd15_random_fp16.safetensors"
[ -f "$CHECKPOINT" ] || .venv/bin/python tools/make_random_sd15.py --comfy "$CACHE/ComfyUI-0.3.64" "$CHECKPOINT"
.venv/bin/python tools/make_stand_in_models.py --models "$OLD" --comfy "$CACHE/ComfyUI-0.3.64"
.venv-0.33/bin/python tools/make_stand_in_models.py --models "$OLD" --comfy "$CACHE/ComfyUI-0.33.0"
for file in checkpoints/sd15_random_fp16.safetensors STAND_INS.txt \
            $(grep -E '^[a-z0-9_]+/' "$OLD/STAND_INS.txt"); do
  mkdir -p "$(dirname "$NEW/$file")"
  [ -e "$NEW/$file" ] || ln -s "$(realpath "$OLD/$file")" "$NEW/$file"
done

for version in "${EXTRA_FRONTENDS[@]}"; do
  [ -d "$CACHE/frontends/$version/comfyui_frontend_package" ] || .venv/bin/python -m pip install -q --no-deps \
    --target "$CACHE/frontends/$version" "comfyui-frontend-package==$version"
done
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
