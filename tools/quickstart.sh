#!/usr/bin/env bash
# The README's main command, end to end on CPU in a few minutes:
#   1. set up the venv if missing;  2. write the toy dataset (real COCO-panoptic format) to data/toy;
#   3. train the tiny RapSAM on it (mmengine Runner, ITERS iterations, default 300);
#   4. evaluate panoptic quality on the toy val split (tools/test.py);
#   5. run panoptic + interactive (click, box, text) inference with the trained checkpoint and write
#      overlay PNGs to outputs/quickstart/.
# Env: ITERS (training iterations), OUT_DIR (overlays), WORK_DIR (logs + checkpoints).
set -eo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/setup_env.sh"
cd "$root"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
iters="${ITERS:-300}"
out="${OUT_DIR:-outputs/quickstart}"
work="${WORK_DIR:-work_dirs/quickstart}"
cfg=configs/rapsam/rapsam_tiny_toy.py

[ -f data/toy/coco/annotations/panoptic_val2017.json ] || python tools/data/make_toy_dataset.py data/toy --seed 0
python tools/train.py "$cfg" --work-dir "$work" \
  --cfg-options "train_cfg.max_iters=$iters" "train_cfg.val_interval=$iters" \
  "param_scheduler.1.end=$iters" "default_hooks.checkpoint.interval=$iters"
ckpt="$work/iter_$iters.pth"
python tools/test.py "$cfg" "$ckpt" --work-dir "$work/test"

# a toy val image and a click + box on its first thing segment (from the panoptic json)
read -r img click box <<<"$(python - <<'PY'
import json
d = json.load(open('data/toy/coco/annotations/panoptic_val2017.json'))
ann = d['annotations'][0]
things = {c['id'] for c in d['categories'] if c['isthing']}
x, y, w, h = next(s['bbox'] for s in ann['segments_info'] if s['category_id'] in things)
print(f"data/toy/coco/val2017/{ann['file_name'][:-4]}.jpg {x + w / 2:.0f},{y + h / 2:.0f},1 "
      f"{x:.0f},{y:.0f},{x + w:.0f},{y + h:.0f}")
PY
)"
python demo/demo.py "$img" --task panoptic --config "$cfg" --checkpoint "$ckpt" --image-size 256 \
  --out-dir "$out"
python demo/demo.py "$img" --task interactive_image --config "$cfg" --checkpoint "$ckpt" \
  --image-size 256 --points "$click; -" --boxes "-; $box" --texts "-; -" --out-dir "$out"
echo "quickstart done: metrics in $work/test, overlays in $out/"
