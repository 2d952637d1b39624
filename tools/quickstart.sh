#!/usr/bin/env bash
# The README's main command: FastSAM2's staged distillation recipe end to end on CPU (~15 min, 2 cores).
#   1. set up the venv if missing;  2. write the toy dataset (COCO-panoptic, YouTube-VIS, DAVIS formats)
#      and its offline prompt / clip files;  3. save the untrained model (the reference);
#   4. train the tiny FastSAM2 through stages 1 -> 4 (backbone distillation, interactive, VOS, joint)
#      against a tiny RANDOM-INIT SAM2 teacher, each stage starting from the previous checkpoint;
#   5. evaluate untrained vs trained: NoC / mIoU@k (click protocol), J&F (DAVIS protocol), PQ;
#   6. draw overlays (panoptic + interactive image, tracked video) and the loss curves.
# Env: OUT_DIR (pictures + summary, default outputs/quickstart), WORK_DIR (logs, checkpoints).
set -eo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/setup_env.sh"
set -eo pipefail  # setup_env.sh restores the caller's shell options: stop at the first failure
cd "$root"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
out="${OUT_DIR:-outputs/quickstart}"
work="${WORK_DIR:-work_dirs/quickstart}"
toy=configs/fastsam2/toy
start=$(date +%s)
mkdir -p "$out" "$work"

cat <<'EOF'
================================================================================================
 NOTE: the SAM2 teacher in this quickstart is a tiny RANDOMLY INITIALISED SAM2 (no weights can be
 downloaded here). The run exercises the whole distillation recipe, but what the student learns
 comes from the toy ground truth. Real training needs a SAM2 checkpoint:
   python tools/train_fast_sam2.py configs/fastsam2/stage1_backbone_distill.py --stage 1 \
       --teacher-config configs/sam2.1/sam2.1_hiera_t.yaml --teacher-checkpoint PATH/sam2.1_hiera_tiny.pt
================================================================================================
EOF

if [ ! -f data/toy/davis2017/ImageSets/2017/val.txt ]; then
  python tools/data/make_toy_dataset.py data/toy --seed 0
fi
if [ ! -f data/toy/annotations/ytvis_interactive_meta.pkl ]; then
  python tools/dataset_converters/coco_to_interactive_prompts.py \
    data/toy/coco/annotations/panoptic_train2017.json data/toy/annotations/fastsam2_interactive.json \
    --panoptic-dir data/toy/coco/annotations/panoptic_train2017
  python tools/dataset_converters/ytvis_to_interactive_clips.py \
    data/toy/youtube_vis_2019/train.json data/toy/annotations/ytvis_interactive_meta.pkl --clip-length 2 4
fi

python tools/misc/save_init_checkpoint.py "$toy/stage4_tiny_toy.py" "$work/untrained.pth"

prev=""
for stage in 1 2 3 4; do
  cfg=$(ls "$toy"/stage${stage}_*.py)
  python tools/train_fast_sam2.py "$cfg" --stage "$stage" --allow-random-teacher \
    --work-dir "$work/stage$stage" ${prev:+--load-from "$prev"}
  prev=$(ls -t "$work/stage$stage"/iter_*.pth | head -n 1)
done
trained="$prev"

python tools/evaluation/compare_checkpoints.py \
  --configs "$toy/eval_interactive_toy.py" "$toy/eval_vos_toy.py" "$toy/eval_panoptic_toy.py" \
  --checkpoints "untrained=$work/untrained.pth" "trained=$trained" \
  --work-dir "$work/eval" --out "$out/metrics.json" --table "$out/metrics.md"

# pictures: a toy val image (panoptic; a click and a box on its first thing), the tracked toy video
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
python demo/demo.py "$img" --task panoptic --config "$toy/eval_panoptic_toy.py" --checkpoint "$trained" \
  --image-size 256 --out-dir "$out"
python demo/demo.py "$img" --task interactive_image --config "$toy/eval_panoptic_toy.py" \
  --checkpoint "$trained" --image-size 256 --points "$click; -" --boxes "-; $box" --texts "-; -" \
  --out-dir "$out"
seq=$(head -n 1 data/toy/davis2017/ImageSets/2017/val.txt)
python tools/analysis/draw_vos_results.py "data/toy/davis2017/JPEGImages/480p/$seq" \
  "$work/eval/eval_vos_toy/trained/results/$seq" --out "$out/vos_$seq.png"
python tools/analysis/plot_loss_curves.py "$work"/stage{1,2,3,4} --labels stage1 stage2 stage3 stage4 \
  --out "$out/loss_curves.png"

echo "untrained vs trained (toy val splits):"
cat "$out/metrics.md"
echo "quickstart done in $(( $(date +%s) - start )) s: metrics in $out/metrics.md (untrained vs trained),"
echo "pictures in $out/ (panoptic, interactive, vos_$seq.png, loss_curves.png). The teacher was RANDOM."
