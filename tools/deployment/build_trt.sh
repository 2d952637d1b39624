#!/usr/bin/env bash
# Build TensorRT engines (fp16) from the ONNX graphs of tools/deployment/export_onnx.py.
#
#   bash tools/deployment/build_trt.sh ONNX_DIR [MAX_OBJECTS] [MAX_POINTS]
#
# ONNX_DIR holds encoder.onnx / decoder.onnx (either may be missing). The encoder has a fixed
# input size (the export's --image-size); the decoder gets a dynamic-shape profile over objects
# (1..MAX_OBJECTS, default 16, optimised for 1) and points per object (1..MAX_POINTS, default 8,
# optimised for 2). Engines go beside the graphs: encoder_fp16.engine, decoder_fp16.engine.
# Needs TensorRT's trtexec on PATH (or TRTEXEC=/path/to/trtexec); see docs/deployment.md.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 3 ]]; then
    echo "usage: $0 ONNX_DIR [MAX_OBJECTS] [MAX_POINTS]" >&2
    exit 2
fi
DIR=$1
MAX_N=${2:-16}
MAX_P=${3:-8}
TRTEXEC=${TRTEXEC:-trtexec}
if ! command -v "$TRTEXEC" >/dev/null 2>&1; then
    echo "error: TensorRT's trtexec was not found ('$TRTEXEC' is not on PATH). Install TensorRT" \
         "(e.g. the NVIDIA TensorRT container or the tensorrt package's bin/) and add trtexec to" \
         "PATH, or set TRTEXEC=/path/to/trtexec." >&2
    exit 1
fi
if [[ ! -f "$DIR/encoder.onnx" && ! -f "$DIR/decoder.onnx" ]]; then
    echo "error: neither $DIR/encoder.onnx nor $DIR/decoder.onnx exists; run" \
         "tools/deployment/export_onnx.py --out-dir $DIR first" >&2
    exit 1
fi
for v in "$MAX_N" "$MAX_P"; do
    if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: MAX_OBJECTS and MAX_POINTS must be positive integers, got '$v'" >&2
        exit 2
    fi
done

if [[ -f "$DIR/encoder.onnx" ]]; then
    echo "building $DIR/encoder_fp16.engine"
    "$TRTEXEC" --onnx="$DIR/encoder.onnx" --fp16 --saveEngine="$DIR/encoder_fp16.engine"
fi

if [[ -f "$DIR/decoder.onnx" ]]; then
    # the mask grid (h, w) of mask_input and the embedding size are fixed by the export; read them
    read -r C H W < <(python - "$DIR/decoder.onnx" <<'PY'
import sys
import onnx
dims = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim]
        for i in onnx.load(sys.argv[1]).graph.input}
print(dims['image_embed'][1], *dims['mask_input'][1:])
PY
)
    shapes() {  # N P -> the shape list of every dynamic input
        echo "image_embed:1x${C}x${H}x${W},point_coords:$1x$2x2,point_labels:$1x$2,boxes:$1x4,box_valid:$1,mask_input:$1x${H}x${W},mask_valid:$1"
    }
    echo "building $DIR/decoder_fp16.engine (objects 1..$MAX_N, points 1..$MAX_P)"
    "$TRTEXEC" --onnx="$DIR/decoder.onnx" --fp16 --saveEngine="$DIR/decoder_fp16.engine" \
        --minShapes="$(shapes 1 1)" --optShapes="$(shapes 1 2)" \
        --maxShapes="$(shapes "$MAX_N" "$MAX_P")"
fi
