#!/usr/bin/env bash
# Training on a Slurm cluster with srun, one task per GPU.
#
#   bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py arguments...]
#
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun
# arguments), PYTHON (the interpreter, `python` from PATH by default).
# WORK_DIR defaults to ./work_dirs/<config name> (pass "" to keep that default and still give
# train.py arguments).
set -euo pipefail

if [ $# -lt 3 ]; then
    echo "usage: bash $0 PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py arguments...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=${4:-}
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

WORK_DIR_ARGS=()
if [ -n "$WORK_DIR" ]; then
    WORK_DIR_ARGS=(--work-dir "$WORK_DIR")
fi

# SRUN_ARGS is split on spaces on purpose: it holds several srun options.
# shellcheck disable=SC2086
PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    $SRUN_ARGS \
    "${PYTHON:-python}" -u "$TOOLS_DIR/train.py" "$CONFIG" \
    ${WORK_DIR_ARGS[@]+"${WORK_DIR_ARGS[@]}"} --launcher slurm "${@:5}"
