#!/usr/bin/env bash
# torchrun for tools/dist_train.sh and tools/dist_test.sh: one process per GPU (or per CPU
# worker without CUDA, on gloo).
#
#   bash tools/torchrun.sh NPROC SCRIPT [script arguments...]
#
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), and PYTHON
# (the interpreter, `python` from PATH by default).
set -euo pipefail
NPROC=$1
SCRIPT=$2
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)

# `python -m torch.distributed.run` is torchrun, run by the chosen interpreter.
PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes "${NNODES:-1}" \
    --node_rank "${NODE_RANK:-0}" \
    --master_addr "${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node "$NPROC" \
    --master_port "${PORT:-29500}" \
    "$SCRIPT" "${@:3}"
