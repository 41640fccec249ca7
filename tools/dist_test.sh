#!/usr/bin/env bash
# Distributed testing: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py arguments...]
# (environment variables: see tools/torchrun.sh). Without CUDA the processes use gloo.
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: bash $0 CONFIG CHECKPOINT GPUS [test.py arguments...]" >&2
    exit 2
fi
TOOLS_DIR=$(cd "$(dirname "$0")" && pwd)
exec bash "$TOOLS_DIR/torchrun.sh" "$3" "$TOOLS_DIR/test.py" "$1" "$2" --launcher pytorch "${@:4}"
