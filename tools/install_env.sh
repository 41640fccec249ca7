#!/usr/bin/env bash
# Install the pinned OpenMMLab stack and build mmvit_plugins into one Python environment.
#
# Idempotent: every step checks first and does nothing when its result is already there,
# so re-running takes seconds. Used by `make install` (and so by `make test` and CI).
#
# Environment:
#   VENV          where to install (default: .venv in the repository root). Set VENV=none
#                 to use the Python on PATH as it is (an existing OpenMMLab environment).
#   PYTHON        interpreter used to create the venv (default: python3.11, else python3).
#   MMVIT_CACHE   where the mmcv wheel built here is kept, keyed on the torch version
#                 (default: ~/.cache/mmvit_plugins).
#   MAX_JOBS      parallel compile jobs (default: 2).
#   FORCE_CUDA=1  also build our CUDA kernels without a visible GPU (needs nvcc).
#
# Facts behind the recipe are in docs/install.md (from the project's STACK notes).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"
case "$VENV" in
  none | /*) ;;
  *) VENV="$ROOT/$VENV" ;;  # relative to the repository root (the script cd's elsewhere later)
esac
MMVIT_CACHE="${MMVIT_CACHE:-$HOME/.cache/mmvit_plugins}"
export MAX_JOBS="${MAX_JOBS:-2}"
MMCV_VERSION=2.1.0

log() { printf '[install %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
SECONDS=0

# ---------------------------------------------------------------- interpreter
if [ "$VENV" = none ]; then
  PY="$(command -v python || command -v python3)"
else
  if [ ! -x "$VENV/bin/python" ]; then
    base="${PYTHON:-$(command -v python3.11 || command -v python3)}"
    log "creating venv $VENV with $base"
    "$base" -m venv "$VENV"
  fi
  PY="$VENV/bin/python"
fi
# pip's exit status is kept; only this machine kind's notes about empty local indexes are dropped.
pip_install() {
  "$PY" -m pip install --disable-pip-version-check "$@" \
    2> >(grep -v "^WARNING: Location 'file:" >&2)
}
log "python: $("$PY" -c 'import sys; print(sys.version.split()[0])') at $PY"

# ---------------------------------------------------------------- build tools
# pkg_resources must stay importable (setuptools < 82): mmcv's setup.py and mmengine's
# `mmdet::` config inheritance import it.
if ! "$PY" -c 'import pkg_resources, ninja, wheel, numpy, psutil' >/dev/null 2>&1; then
  log "installing build requirements"
  pip_install -q -r requirements/build.txt
fi

# ---------------------------------------------------------------- torch
# Keep a user's torch. Install the pinned pair only when no torch is importable.
if ! "$PY" -c 'import torch' >/dev/null 2>&1; then
  log "no torch found: installing $(grep -v '^#' requirements/torch.txt | xargs)"
  pip_install -q -r requirements/torch.txt
fi
TORCH_TAG="$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')"
log "torch $TORCH_TAG"
if ! "$PY" -c 'import torchvision' >/dev/null 2>&1; then
  # mmpretrain imports torchvision. Only the pinned pair is known to import together.
  if [ "$TORCH_TAG" = "2.14.1" ]; then
    pip_install -q torchvision==0.29.1
  else
    log "WARNING: torchvision is not importable beside torch $TORCH_TAG;" \
        "install the torchvision matching your torch (mmpretrain needs it)"
  fi
fi

# ---------------------------------------------------------------- mmengine (mmcv imports it)
MMENGINE_PIN="$(grep -E '^mmengine==' requirements/mminstall.txt)"
if ! "$PY" -c "import mmengine; assert mmengine.__version__ == '${MMENGINE_PIN#mmengine==}'" \
    >/dev/null 2>&1; then
  log "installing $MMENGINE_PIN"
  pip_install -q "$MMENGINE_PIN"
fi

# ---------------------------------------------------------------- mmcv (from source, with ops)
mmcv_ok() {
  "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION', mmcv.__version__" \
    >/dev/null 2>&1
}
if ! mmcv_ok; then
  wheel_dir="$MMVIT_CACHE/mmcv-$MMCV_VERSION/torch-$TORCH_TAG"
  mkdir -p "$wheel_dir"
  whl="$(ls "$wheel_dir"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n 1 || true)"
  if [ -z "$whl" ]; then
    log "building mmcv $MMCV_VERSION with ops against torch $TORCH_TAG" \
        "(10 to 45 minutes on 2 cores; the wheel is cached in $wheel_dir)"
    # PyPI has only the source of mmcv 2.1.0.
    src="$(mktemp -d)"
    trap 'rm -rf "$src"' EXIT
    # --no-build-isolation: preparing the sdist's metadata imports pkg_resources (setuptools < 82).
    "$PY" -m pip download -q --no-deps --no-build-isolation --no-binary :all: \
      -d "$src" mmcv==$MMCV_VERSION
    tar -xzf "$src"/mmcv-$MMCV_VERSION.tar.gz -C "$src"
    # torch >= 2.14 headers require C++20; mmcv 2.1.0 hard-codes -std=c++17 (mmcv#3341).
    sed -i 's/-std=c++17/-std=c++20/g' "$src/mmcv-$MMCV_VERSION/setup.py"
    (cd "$src/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 "$PY" -m pip wheel --no-deps \
       --no-build-isolation --no-cache-dir -w "$wheel_dir" .)
    whl="$(ls "$wheel_dir"/mmcv-$MMCV_VERSION-*.whl | head -n 1)"
    rm -rf "$src"
    trap - EXIT
  fi
  log "installing $whl"
  pip_install -q --force-reinstall --no-deps "$whl"
  # mmcv's own runtime dependencies (not torch).
  pip_install -q addict packaging Pillow pyyaml yapf opencv-python
  if ! mmcv_ok; then
    log "ERROR: mmcv.ops does not import from $whl (built against another torch?)." \
        "Delete $wheel_dir and run again."
    exit 1
  fi
fi

# ---------------------------------------------------------------- mmengine, mmdet, mmseg, mmpretrain
# (pytest 9 is refused too: requirements/tests.txt says why)
if ! "$PY" -c 'import mmengine, mmdet, mmseg, mmpretrain, ftfy, regex, pytest, xdist, hypothesis
assert int(pytest.__version__.split(".")[0]) < 9' >/dev/null 2>&1; then
  log "installing the OpenMMLab stack"
  pip_install -q -r requirements/mminstall.txt -r requirements/tests.txt
fi

# ---------------------------------------------------------------- ONNX export and onnxruntime
if ! "$PY" -c 'import onnx, onnxscript, onnxruntime' >/dev/null 2>&1; then
  log "installing the ONNX export requirements (requirements/deploy.txt)"
  pip_install -q -r requirements/deploy.txt
fi

# ---------------------------------------------------------------- our package and its extension
# Editable install. Skipped when the built extension is newer than every source and loads
# (a torch change makes it fail to load, which triggers a rebuild).
ext_fresh() {
  local so
  so="$(ls mmvit_plugins/_ext*.so 2>/dev/null | head -n 1)"
  [ -n "$so" ] && [ -z "$(find mmvit_plugins/ops/csrc setup.py pyproject.toml -newer "$so" -type f)" ] \
    && "$PY" -c 'import importlib.metadata as m, mmvit_plugins._ext; m.version("mmvit_plugins")' \
         >/dev/null 2>&1
}
if ext_fresh; then
  log "mmvit_plugins is installed and its extension is up to date"
else
  log "building mmvit_plugins (editable install with our C++ extension, 2-5 minutes on 2 cores)"
  pip_install -q --no-deps --no-build-isolation -e .
fi
"$PY" - <<'EOF'
import mmcv, mmengine, mmdet, mmseg, mmpretrain, torch
import mmcv.ops, mmdet.models, mmseg.models, mmpretrain.models  # noqa: F401
import mmvit_plugins
from mmvit_plugins import ops
print(f'[install] torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, '
      f'mmdet {mmdet.__version__}, mmseg {mmseg.__version__}, mmpretrain {mmpretrain.__version__}')
print(f'[install] mmvit_plugins {mmvit_plugins.__version__}: compiled ops loaded = {ops.HAS_EXT}')
if not ops.HAS_EXT:
    raise SystemExit('[install] ERROR: the mmvit_plugins extension did not load (see the warning above)')
EOF
log "done in ${SECONDS}s"
