#!/usr/bin/env bash
# The README's main command: set up the venv if missing, build the tiny model and run panoptic and
# interactive inference on a COCO sample image (or a generated one), writing overlay PNGs to
# outputs/quickstart/. Weights are random until a trained checkpoint is given (CHECKPOINT=path).
set -eo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/setup_env.sh"
cd "$root"
out="${OUT_DIR:-outputs/quickstart}"
img="$root/../shared/data/coco_panoptic_sample/input_images/000000142238.jpg"
if [ ! -f "$img" ]; then
  img="$out/generated.jpg"
  mkdir -p "$out"
  python - "$img" <<'PY'
import sys, cv2, numpy as np
rng = np.random.default_rng(0)
img = np.full((427, 640, 3), 90, np.uint8)
for _ in range(6):
    cv2.circle(img, tuple(int(v) for v in rng.integers(60, 380, 2)), int(rng.integers(20, 60)),
               tuple(int(v) for v in rng.integers(0, 255, 3)), -1)
cv2.imwrite(sys.argv[1], img)
PY
fi
ckpt=()
[ -n "${CHECKPOINT:-}" ] && ckpt=(--checkpoint "$CHECKPOINT")
cfg="${CONFIG:-configs/rapsam/rapsam_tiny_coco_panoptic.py}"
# random weights score nothing above the usual 0.8 mask threshold: show every segment
python demo/demo.py "$img" --task panoptic --config "$cfg" "${ckpt[@]}" --image-size 512 \
  --score-thr 0.0 --out-dir "$out"
python demo/demo.py "$img" --task interactive_image --config "$cfg" "${ckpt[@]}" --image-size 512 \
  --points "320,200,1 100,80,0; 500,300,1" --boxes "250,150,400,300; -" --texts "person; -" \
  --out-dir "$out"
echo "overlays in $out/"
