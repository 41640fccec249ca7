#!/usr/bin/env bash
# Distributed training: bash tools/dist_train.sh CONFIG GPUS [train.py arguments...]
# (environment variables: see tools/torchrun.sh). Without CUDA the processes use gloo.
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: bash $0 CONFIG GPUS [train.py arguments...]" >&2
    exit 2
fi
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
exec bash "$TOOLS_DIR/torchrun.sh" "$2" "$TOOLS_DIR/train.py" "$1" --launcher pytorch "${@:3}"
