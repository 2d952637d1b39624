#!/usr/bin/env bash
# Distributed testing with torchrun: one process per GPU, NGPUS per node.
#   bash tools/dist_test.sh CONFIG CHECKPOINT NGPUS [tools/test.py args: --out r.pkl --show-dir vis ...]
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and MASTER_PORT as for tools/dist_train.sh, which runs it.
set -eo pipefail
if [ "$#" -lt 3 ]; then
  echo "usage: bash tools/dist_test.sh CONFIG CHECKPOINT NGPUS [args...]" >&2
  exit 2
fi
config="$1"
checkpoint="$2"
ngpus="$3"
shift 3
TRAIN_SCRIPT=tools/test.py exec bash "$(dirname "${BASH_SOURCE[0]}")/dist_train.sh" "$config" "$ngpus" \
  "$checkpoint" "$@"
