#!/usr/bin/env bash
# Training on a Slurm cluster: srun starts one task per GPU (GPUS in all, GPUS_PER_NODE per node), and
# mmengine's slurm launcher reads the rank, world size and master address from Slurm's variables.
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#     bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train args: --stage N ...]
# TRAIN_SCRIPT picks the launcher (default tools/train_fast_sam2.py; tools/train.py for configs
# without a stage). MASTER_PORT (default 29500) must be free on the first node.
set -eo pipefail
if [ "$#" -lt 3 ]; then
  echo "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [args...]" >&2
  exit 2
fi
partition="$1"
job_name="$2"
config="$3"
shift 3
work_dir_args=()
if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then  # a fourth positional argument is the work dir
  work_dir_args=(--work-dir "$1")
  shift
fi
gpus="${GPUS:-8}"
gpus_per_node="${GPUS_PER_NODE:-$(( gpus < 8 ? gpus : 8 ))}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export MASTER_PORT="${MASTER_PORT:-29500}"
# shellcheck disable=SC2086  # SRUN_ARGS holds several words on purpose
exec srun -p "$partition" --job-name="$job_name" \
  --gres=gpu:"$gpus_per_node" --ntasks="$gpus" --ntasks-per-node="$gpus_per_node" \
  --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
  python -u "$root/${TRAIN_SCRIPT:-tools/train_fast_sam2.py}" "$config" "${work_dir_args[@]}" \
  --launcher slurm "$@"
