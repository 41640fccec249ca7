#!/usr/bin/env bash
# Build, test and benchmark mmvit_plugins' CUDA kernels on one GPU machine, offline, in one go.
#
# Usage:
#   bash tools/gpu_check.sh [--wheels DIR] [--out DIR] [--python PY] [--budget SECONDS]
#                           [--steps LIST] [--skip-build]
#
#   --wheels DIR   pure-Python wheels of the OpenMMLab pieces the package imports (default
#                  .devwheels/). Make them on a machine with network access, in the repo root:
#                    pip download --no-deps -d .devwheels mmengine==0.10.7 mmcv-lite==2.2.0 \
#                        addict yapf termcolor platformdirs
#                  (about 1.5 MB; mmcv-lite gives mmcv.cnn; yapf >= 0.40 imports platformdirs).
#                  Only where mmengine and mmcv.cnn do not import already (as on a machine with
#                  torch and no OpenMMLab package) are they installed, with `pip install
#                  --no-index --no-deps --target build/gpu_check_site`, and put first on
#                  PYTHONPATH for this script only: the Python environment itself is not
#                  changed, and an OpenMMLab environment is used as it is (mmcv-lite 2.2 first
#                  on the path would break an installed mmdet 3.3 / mmseg 1.2, which refuse
#                  mmcv 2.2).
#   --out DIR      where everything goes (default work_dirs/gpu_check/): summary.txt (GPU,
#                  driver, torch, CUDA, nvidia-smi, each step's status, test summary, benchmark
#                  targets), gpu_check.log (every step's full output), and the benchmark JSON
#                  files ops_bf16.json, ops_fp32.json, models_elsa.json, models_other.json
#                  (without a GPU: ops_cpu_quick.json). At most 7 files, all at the top level.
#                  A benchmark cut short keeps the cases it finished (JSON with "partial": true).
#   --python PY    interpreter (default: .venv/bin/python if it exists, else python3).
#   --budget S     wall-clock budget of the whole script (default 480 s). Every step runs under
#                  `timeout` with its own cap, cut to what is left of the budget; a step that
#                  fails or times out does not stop the later ones.
#   --steps LIST   comma-separated subset of: install,build,verify,test,ops,models,smoke
#                  (default: all that apply; `smoke` is the CPU-only step).
#   --skip-build   use the extension already built (same as leaving `build` out of --steps).
#
# With a CUDA GPU (as torch sees it) the steps are:
#   install  the wheels, as above
#   build    FORCE_CUDA=1 MAX_JOBS=16 TORCH_CUDA_ARCH_LIST=9.0 \
#              python -m pip install --no-index --no-build-isolation --no-deps -v -e .
#            (MAX_JOBS: the environment's, else the core count up to 16; TORCH_CUDA_ARCH_LIST:
#            the environment's, else the visible GPU's compute capability, e.g. 9.0 on H100/H200)
#   verify   the extension loads and has its CUDA kernels (else the GPU steps are skipped)
#   test     python -m pytest tests/test_ops_cuda.py -q -rfEs (the whole file, not -x: one run
#            lists every failure; with pytest-timeout, 90 s per test). If it fails with a CUDA
#            error (which poisons the process's CUDA context, so later tests fail with it too),
#            every test function is run again in its own process with CUDA_LAUNCH_BLOCKING=1
#            and -x, which names the first failing case of each.
#   ops      python tools/analysis/benchmark_ops.py --device cuda --gpu-shapes --flush-l2 \
#              --compile-ref none --dtype fp32|bf16 ...       (BENCHMARKS.md shapes, k=7)
#   models   python tools/analysis/benchmark_models.py --device cuda --size 224 512 \
#              --batch 32 8 --modes infer train --dtype fp32 bf16 ...
#            ELSASwin-tiny with --impl compiled reference (the only backbone of these that calls
#            our ops); HRViT-b1, CloFormer-xs, Container-light with --impl compiled.
# Without one, it says "no CUDA GPU found: ..." and runs the CPU part: install, build (CPU
# kernels only, quick; set FORCE_CUDA=1 to have nvcc compile the CUDA kernels too), verify, and
# smoke (benchmark_ops.py --quick on the CPU).
#
# Exit status: 0 all steps passed on a GPU; 1 a step failed or timed out; 2 bad arguments;
# 3 no CUDA GPU found (the CPU part passed, the GPU steps were skipped).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS=.devwheels
OUT=work_dirs/gpu_check
PY=
BUDGET=480
STEPS=
SKIP_BUILD=0

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die_usage() { echo "gpu_check.sh: $*" >&2; echo "see: bash tools/gpu_check.sh --help" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --wheels) [ $# -ge 2 ] || die_usage "--wheels needs a folder"; WHEELS="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die_usage "--out needs a folder"; OUT="$2"; shift 2 ;;
    --python) [ $# -ge 2 ] || die_usage "--python needs an interpreter"; PY="$2"; shift 2 ;;
    --budget) [ $# -ge 2 ] || die_usage "--budget needs seconds"; BUDGET="$2"; shift 2 ;;
    --steps) [ $# -ge 2 ] || die_usage "--steps needs a list"; STEPS="$2"; shift 2 ;;
    --skip-build) SKIP_BUILD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die_usage "unknown argument: $1" ;;
  esac
done
case "$BUDGET" in '' | *[!0-9]*) die_usage "--budget must be a whole number of seconds" ;; esac
for s in ${STEPS//,/ }; do
  case "$s" in install | build | verify | test | ops | models | smoke) ;;
    *) die_usage "unknown step in --steps: $s" ;; esac
done

# Paths given relative to the caller's directory; then work from the repository root.
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
OUT="$(abspath "$OUT")"
WHEELS="$(abspath "$WHEELS")"
case "$PY" in */*) PY="$(abspath "$PY")" ;; esac
cd "$ROOT" || exit 1
if [ -z "$PY" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
command -v "$PY" >/dev/null 2>&1 || die_usage "python not found: $PY"

mkdir -p "$OUT" || exit 1
LOG="$OUT/gpu_check.log"
SUMMARY="$OUT/summary.txt"
rm -f "$OUT"/ops_fp32.json "$OUT"/ops_bf16.json "$OUT"/models_elsa.json \
  "$OUT"/models_other.json "$OUT"/ops_cpu_quick.json "$OUT"/*.json.tmp
: >"$LOG"
: >"$SUMMARY"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
SECONDS=0
FAILED=0
STATUS_LINES=()
DETAILS="$TMP/details"
: >"$DETAILS"

say() { printf '[gpu_check %3ds] %s\n' "$SECONDS" "$*"; }
summ() { printf '%s\n' "$*" >>"$SUMMARY"; }
record() { STATUS_LINES+=("$(printf '%-14s %s' "$1" "$2")"); }
wanted() {  # wanted STEP: is STEP selected (--steps / --skip-build)? Records it when not.
  if [ "$1" = build ] && [ "$SKIP_BUILD" = 1 ]; then
    record build "not run (--skip-build): using the extension already built"
    return 1
  fi
  [ -z "$STEPS" ] && return 0
  case ",$STEPS," in *",$1,"*) return 0 ;; esac
  [ "$1" = smoke ] || [ "$1" = install ] || record "$1" "not run (not in --steps)"
  return 1
}

# run_step NAME CAP_SECONDS COMMAND...: runs COMMAND under timeout (CAP cut to the budget left),
# output to the log; its output stays in $TMP/NAME.out for the summary. Returns its status.
run_step() {
  local name="$1" cap="$2" left t rc start
  shift 2
  left=$((BUDGET - SECONDS - 5))
  if [ "$left" -lt 15 ]; then
    record "$name" "skipped: the ${BUDGET}s budget is spent"
    FAILED=1
    say "$name: skipped, the budget is spent"
    return 125
  fi
  t=$((cap < left ? cap : left))
  say "$name: running (at most ${t}s)"
  {
    printf '\n===== %s (at most %ss): %s\n' "$name" "$t" "$*"
  } >>"$LOG"
  start=$SECONDS
  timeout -k 10 "$t" "$@" >"$TMP/$name.out" 2>&1
  rc=$?
  cat "$TMP/$name.out" >>"$LOG"
  printf '===== %s: exit %s after %ss\n' "$name" "$rc" "$((SECONDS - start))" >>"$LOG"
  if [ "$rc" = 0 ]; then
    record "$name" "ok ($((SECONDS - start))s)"
  elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    record "$name" "TIMEOUT after ${t}s"
    FAILED=1
  else
    record "$name" "FAILED (exit $rc, $((SECONDS - start))s)"
    FAILED=1
  fi
  if [ "$rc" != 0 ]; then
    { printf '\n--- %s: last 30 lines of its output\n' "$name"; tail -n 30 "$TMP/$name.out"; } \
      >>"$DETAILS"
  fi
  say "$name: ${STATUS_LINES[-1]#"$name"}"
  return "$rc"
}

# ------------------------------------------------------------------ machine
say "repository $ROOT, python $PY, output $OUT, budget ${BUDGET}s"
GPU_INFO="$TMP/gpu_info"
"$PY" - >"$GPU_INFO" 2>&1 <<'EOF'
import platform
import torch
print('python', platform.python_version())
print('torch', torch.__version__)
print('torch_cuda', torch.version.cuda)
ok = torch.cuda.is_available()
print('cuda_available', ok)
if ok:
    print('gpu_name', torch.cuda.get_device_name(0))
    print('gpu_count', torch.cuda.device_count())
    print('gpu_capability', '%d.%d' % torch.cuda.get_device_capability(0))
EOF
info_rc=$?
field() { sed -n "s/^$1 //p" "$GPU_INFO" | head -n 1; }
summ "mmvit_plugins gpu_check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), host $(hostname 2>/dev/null || echo '?')"
summ "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (with local changes)')"
summ "python: $PY ($(field python)); torch $(field torch), built with CUDA $(field torch_cuda)"
if [ "$info_rc" != 0 ]; then
  summ "torch did not import:"
  cat "$GPU_INFO" >>"$SUMMARY"
  cat "$GPU_INFO" >>"$LOG"
  cat "$SUMMARY"
  echo "gpu_check.sh: $PY cannot import torch; nothing else can run" >&2
  exit 1
fi
if command -v nvcc >/dev/null 2>&1; then
  summ "nvcc: $(nvcc --version | grep -i release | sed 's/^.*release //') ($(command -v nvcc))"
else
  summ "nvcc: not on PATH"
fi
HAVE_GPU=0
if [ "$(field cuda_available)" = True ]; then
  HAVE_GPU=1
  summ "GPU: $(field gpu_name) (compute capability $(field gpu_capability), $(field gpu_count) visible)"
else
  if command -v nvidia-smi >/dev/null 2>&1; then
    smi="nvidia-smi lists: $(nvidia-smi -L 2>&1 | head -n 4 | tr '\n' ';')"
  else
    smi="nvidia-smi: not installed"
  fi
  NO_GPU_MSG="no CUDA GPU found: torch $(field torch) (CUDA build $(field torch_cuda)) reports torch.cuda.is_available() = False (CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}); $smi. Running the CPU part only; the GPU steps (CUDA build, tests/test_ops_cuda.py, CUDA benchmarks) are skipped."
  summ "$NO_GPU_MSG"
  say "$NO_GPU_MSG"
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  { summ ""; summ "nvidia-smi:"; nvidia-smi 2>&1 | head -n 40 >>"$SUMMARY"; }
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw \
    --format=csv >>"$SUMMARY" 2>&1
  { printf '\n===== nvidia-smi -q\n'; nvidia-smi -q 2>&1; } >>"$LOG"
fi
summ ""

# ------------------------------------------------------------------ install
IMPORT_CHECK='import mmengine, mmcv, mmcv.cnn; print("mmengine", mmengine.__version__, "and mmcv", mmcv.__version__, "from", mmcv.__path__[0])'
SITE="$ROOT/build/gpu_check_site"
if wanted install; then
  if have="$("$PY" -c "$IMPORT_CHECK" 2>"$TMP/imports")"; then
    record install "skipped: $have importable already (no wheels needed)"
    say "install: skipped: $have importable already"
  elif [ -d "$WHEELS" ] && compgen -G "$WHEELS/*.whl" >/dev/null; then
    rm -rf "$SITE"
    run_step install 60 "$PY" -m pip install --disable-pip-version-check --no-index --no-deps \
      --no-compile --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    if ! "$PY" -c "$IMPORT_CHECK" >>"$LOG" 2>"$TMP/imports"; then
      record install-check "FAILED: mmengine / mmcv.cnn still do not import (a wheel missing?)"
      FAILED=1
      { printf '\n--- install-check: import error:\n'; tail -n 8 "$TMP/imports"; } >>"$DETAILS"
    fi
  else
    record install "FAILED: mmengine / mmcv.cnn do not import and $WHEELS has no wheels"
    FAILED=1
    { printf '\n--- install: make the wheels on a networked machine (see the header of '
      printf 'tools/gpu_check.sh); import error:\n'; tail -n 5 "$TMP/imports"; } >>"$DETAILS"
    say "install: FAILED: mmengine / mmcv.cnn do not import and $WHEELS has no wheels"
  fi
elif [ -d "$SITE" ] && ! "$PY" -c "$IMPORT_CHECK" >/dev/null 2>&1; then
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"  # installed by an earlier run
  record install "not run; using the wheels an earlier run put in build/gpu_check_site"
fi

# ------------------------------------------------------------------ build
if wanted build; then
  # torch derives CUDA_HOME from `which nvcc` when it is unset, which goes wrong for an nvcc
  # wrapper outside the toolkit; the toolkit's usual place is more reliable
  if [ -z "${CUDA_HOME-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDA_HOME=/usr/local/cuda; fi
  summ "CUDA_HOME: ${CUDA_HOME:-unset (torch looks for nvcc on PATH)}"
  jobs="$(nproc 2>/dev/null || echo 4)"
  [ "$jobs" -gt 16 ] && jobs=16
  if [ "$HAVE_GPU" = 1 ]; then
    arch="${TORCH_CUDA_ARCH_LIST:-$(field gpu_capability)}"
    summ "build: FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-$jobs} TORCH_CUDA_ARCH_LIST=${arch:-9.0}"
    run_step build 300 env FORCE_CUDA=1 MAX_JOBS="${MAX_JOBS:-$jobs}" \
      TORCH_CUDA_ARCH_LIST="${arch:-9.0}" "$PY" -m pip install --disable-pip-version-check \
      --no-index --no-build-isolation --no-deps -v -e .
  else
    summ "build: CPU kernels$([ "${FORCE_CUDA-0}" = 1 ] && echo ' and CUDA kernels (FORCE_CUDA=1)'), MAX_JOBS=${MAX_JOBS:-$jobs}"
    run_step build 300 env MAX_JOBS="${MAX_JOBS:-$jobs}" "$PY" -m pip install \
      --disable-pip-version-check --no-index --no-build-isolation --no-deps -v -e .
  fi
fi

# ------------------------------------------------------------------ verify
EXT_OK=1
if wanted verify; then
  cat >"$TMP/verify.py" <<'EOF'
import sys
import warnings

warnings.simplefilter('default')
import torch  # noqa: E402

import mmvit_plugins  # noqa: E402
from mmvit_plugins import ops  # noqa: E402

print('mmvit_plugins', mmvit_plugins.__version__, 'from', mmvit_plugins.__file__)
print('HAS_EXT', ops.HAS_EXT, 'WITH_CUDA', ops.WITH_CUDA)
if not ops.HAS_EXT:
    print('extension error:', ops._ext.ext_error)
for name, keys in ops.registered_ops().items():
    print(f'  {name}: {keys}')
heavy = sorted(m for m in sys.modules if m in ('mmdet', 'mmseg', 'mmpretrain'))
print('downstream libraries imported by `import mmvit_plugins`:', heavy or 'none')
if not ops.HAS_EXT:
    sys.exit('the compiled extension did not load')
if sys.argv[1] == '1':
    if not ops.WITH_CUDA:
        sys.exit('the extension was built without its CUDA kernels')
    try:  # a failing kernel is for the tests to pin down: exit 3 lets them run
        x = torch.randn(1, 9, 9, 2, 16, device='cuda')
        y = ops.na2d(x, x, x, 3)
        torch.cuda.synchronize()
        ref = ops.na2d_reference(x.cpu(), x.cpu(), x.cpu(), 3)
        print('first CUDA call, na2d max |err| vs reference:', (y.cpu() - ref).abs().max().item())
    except RuntimeError as e:
        print(f'first CUDA call FAILED: {e}')
        sys.exit(3)
EOF
  # on stdin, so that sys.path starts with the repository root, as for the tests
  # exit 3: the extension has its CUDA kernels but the first call failed (the tests still run)
  run_step verify 90 "$PY" - "$HAVE_GPU" <"$TMP/verify.py"
  v=$?
  [ "$v" = 0 ] || [ "$v" = 3 ] || EXT_OK=0
fi

# ------------------------------------------------------------------ GPU steps
gpu_step_ok() {  # gpu_step_ok NAME: may a GPU step run? (records why not)
  if [ "$HAVE_GPU" != 1 ]; then
    record "$1" "skipped: no CUDA GPU"
    return 1
  fi
  if [ "$EXT_OK" != 1 ]; then
    record "$1" "skipped: the extension has no CUDA kernels (see build / verify)"
    FAILED=1
    return 1
  fi
  return 0
}

if wanted test && gpu_step_ok test; then
  targs=(-q -rfEs -p no:cacheprovider)
  if "$PY" -c 'import pytest_timeout' >/dev/null 2>&1; then
    targs+=(--timeout=90 --timeout-method=thread)
  fi
  run_step test 180 "$PY" -m pytest tests/test_ops_cuda.py "${targs[@]}"
  test_rc=$?
  summ "tests/test_ops_cuda.py: $(grep -E '(passed|failed|error|skipped)' "$TMP/test.out" | tail -n 1)"
  if [ "$test_rc" = 0 ] && ! grep -qE '[0-9]+ passed' "$TMP/test.out"; then
    record test-check "FAILED: no test passed (all skipped?)"
    FAILED=1
  fi
  if [ "$test_rc" != 0 ] && [ "$test_rc" != 124 ] && [ "$test_rc" != 137 ] &&
    grep -qiE 'CUDA error|illegal memory|launch failure|misaligned address|device-side assert|cudaError' "$TMP/test.out"; then
    # A CUDA error poisons the process: run each test function in a process of its own.
    funcs="$(grep -oE '^def test_[A-Za-z0-9_]+' tests/test_ops_cuda.py | sed 's/^def //')"
    cat >"$TMP/isolate.sh" <<'EOF'
py="$1"; shift
for f in "$@"; do
  echo "----- $f"
  CUDA_LAUNCH_BLOCKING=1 timeout -k 5 40 "$py" -m pytest "tests/test_ops_cuda.py::$f" -x -q \
    -rf -p no:cacheprovider 2>&1 | grep -E '^(FAILED|ERROR|E  |[0-9]+ (passed|failed))|(passed|failed|error) in ' | head -n 12
done
EOF
    # shellcheck disable=SC2086  # one argument per function name
    run_step test-isolated 150 bash "$TMP/isolate.sh" "$PY" $funcs
    { printf '\n--- test-isolated: each test function in its own process, CUDA_LAUNCH_BLOCKING=1, -x\n'
      cat "$TMP/test-isolated.out"; } >>"$DETAILS"
  fi
fi

if wanted ops && gpu_step_ok ops; then
  for dt in bf16 fp32; do  # bf16 first: the bandwidth targets are for 16-bit types
    run_step "ops-$dt" 90 "$PY" tools/analysis/benchmark_ops.py --device cuda --dtype "$dt" \
      --gpu-shapes --flush-l2 --compile-ref none --warmup 5 --min-iters 10 --min-time 0.05 \
      --out "$OUT/ops_$dt.json"
  done
fi

if wanted models && gpu_step_ok models; then
  margs=(--device cuda --size 224 512 --batch 32 8 --modes infer train --dtype fp32 bf16
    --warmup 2 --min-iters 5 --min-time 0.3)
  run_step models-elsa 120 "$PY" tools/analysis/benchmark_models.py --models ELSASwin-tiny \
    --impl compiled reference "${margs[@]}" --out "$OUT/models_elsa.json"
  run_step models-other 120 "$PY" tools/analysis/benchmark_models.py \
    --models HRViT-b1 CloFormer-xs Container-light --impl compiled "${margs[@]}" \
    --out "$OUT/models_other.json"
fi

# ------------------------------------------------------------------ CPU smoke
if [ "$HAVE_GPU" != 1 ] && wanted smoke; then
  run_step smoke 120 "$PY" tools/analysis/benchmark_ops.py --quick --out "$OUT/ops_cpu_quick.json"
fi

# ------------------------------------------------------------------ summary
rm -f "$OUT"/*.json.tmp  # left by a benchmark killed while writing
[ -n "$(tail -n 1 "$SUMMARY")" ] && summ ""
summ "steps (${SECONDS}s of ${BUDGET}s):"
for line in "${STATUS_LINES[@]}"; do summ "  $line"; done
for f in "$TMP"/ops-bf16.out "$TMP"/ops-fp32.out; do  # ops: GPU, our op's bandwidth, targets
  [ -f "$f" ] || continue
  summ ""
  summ "$(basename "$f" .out): (all rows, and the fwd / fwd+bwd times, in $OUT/ops_*.json)"
  grep -E '^GPU: |^  .* compiled .*GB/s|^GPU targets|^  \[(met|MISSED)\]' "$f" >>"$SUMMARY"
done
for f in "$TMP"/models-elsa.out "$TMP"/models-other.out "$TMP"/smoke.out; do  # the tables
  [ -f "$f" ] || continue
  summ ""
  summ "$(basename "$f" .out):"
  sed -n '/^\(model\|case\) /,/^$/p; /^reference \/ compiled/,/^$/p' "$f" >>"$SUMMARY"
done
if command -v nvidia-smi >/dev/null 2>&1 && [ "$HAVE_GPU" = 1 ]; then
  summ ""
  summ "clocks at the end:"
  nvidia-smi --query-gpu=clocks.sm,clocks.mem,temperature.gpu,power.draw,clocks_throttle_reasons.active \
    --format=csv >>"$SUMMARY" 2>&1
fi
if [ -s "$DETAILS" ]; then summ ""; summ "details of what failed:"; cat "$DETAILS" >>"$SUMMARY"; fi
summ ""
if [ "$FAILED" != 0 ]; then
  summ "RESULT: some steps FAILED (exit 1); full output in $LOG"
  rc=1
elif [ "$HAVE_GPU" != 1 ]; then
  summ "RESULT: no CUDA GPU found; the CPU part passed and the GPU steps were skipped (exit 3)"
  rc=3
else
  summ "RESULT: all steps passed (exit 0)"
  rc=0
fi
printf '\n'
cat "$SUMMARY"
exit "$rc"
