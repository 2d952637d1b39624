#!/usr/bin/env bash
# Distributed (DDP) training with torchrun: one process per GPU, NGPUS per node.
#   bash tools/dist_train.sh CONFIG NGPUS [train_fast_sam2.py args: --stage N ...]
# Multi-node: run it on every node with NNODES, NODE_RANK (0..NNODES-1), MASTER_ADDR (node 0's
# address) and MASTER_PORT set alike, e.g. NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 bash ...
# TRAIN_SCRIPT picks another launcher (default tools/train_fast_sam2.py; tools/train.py for
# configs without a stage).
set -eo pipefail
if [ "$#" -lt 2 ]; then
  echo "usage: bash tools/dist_train.sh CONFIG NGPUS [args...]" >&2
  exit 2
fi
config="$1"
ngpus="$2"
shift 2
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec python -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
  --nproc_per_node="$ngpus" \
  "$root/${TRAIN_SCRIPT:-tools/train_fast_sam2.py}" "$config" --launcher pytorch "$@"
