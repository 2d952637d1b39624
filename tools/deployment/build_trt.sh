#!/usr/bin/env bash
# Build TensorRT engines (fp16) from the ONNX graphs of tools/deployment/export_onnx.py.
#
#   bash tools/deployment/build_trt.sh ONNX_DIR [MAX_OBJECTS] [MAX_POINTS] [MAX_ENTRIES]
#
# ONNX_DIR holds any of encoder.onnx, decoder.onnx, video_prompt.onnx, video_step.onnx. The
# encoder has a fixed input size (the export's --image-size); the other graphs get dynamic-shape
# profiles over objects (1..MAX_OBJECTS, default 16, optimised for 1), points per object
# (1..MAX_POINTS, default 8, optimised for 2) and, for video_step, memory entries per object
# (1..MAX_ENTRIES, default long_capacity + short_capacity of ONNX_DIR/video.json, the most the
# memory holds; optimised for the maximum). Inputs without dynamic axes (the embedding, and the
# frame and warp keys of the video graphs of a model with a mask warp) keep their exported shapes.
# Engines go beside the graphs: <graph>_fp16.engine.
# Needs TensorRT's trtexec on PATH (or TRTEXEC=/path/to/trtexec); see docs/deployment.md.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 4 ]]; then
    echo "usage: $0 ONNX_DIR [MAX_OBJECTS] [MAX_POINTS] [MAX_ENTRIES]" >&2
    exit 2
fi
DIR=$1
MAX_N=${2:-16}
MAX_P=${3:-8}
MAX_M=${4:-}
TRTEXEC=${TRTEXEC:-trtexec}
if ! command -v "$TRTEXEC" >/dev/null 2>&1; then
    echo "error: TensorRT's trtexec was not found ('$TRTEXEC' is not on PATH). Install TensorRT" \
         "(e.g. the NVIDIA TensorRT container or the tensorrt package's bin/) and add trtexec to" \
         "PATH, or set TRTEXEC=/path/to/trtexec." >&2
    exit 1
fi
GRAPHS=()
for g in encoder decoder video_prompt video_step; do
    [[ -f "$DIR/$g.onnx" ]] && GRAPHS+=("$g")
done
if [[ ${#GRAPHS[@]} -eq 0 ]]; then
    echo "error: $DIR holds none of encoder.onnx, decoder.onnx, video_prompt.onnx," \
         "video_step.onnx; run tools/deployment/export_onnx.py --out-dir $DIR first" >&2
    exit 1
fi
if [[ -f "$DIR/video_step.onnx" && -z "$MAX_M" ]]; then
    if [[ ! -f "$DIR/video.json" ]]; then
        echo "error: $DIR/video.json (written with video_step.onnx) is missing; give MAX_ENTRIES" >&2
        exit 1
    fi
    MAX_M=$(python -c "import json, sys; m = json.load(open(sys.argv[1]))['memory']; \
print(m['long_capacity'] + m['short_capacity'])" "$DIR/video.json")
fi
for v in "$MAX_N" "$MAX_P" ${MAX_M:+"$MAX_M"}; do
    if ! [[ "$v" =~ ^[1-9][0-9]*$ ]]; then
        echo "error: MAX_OBJECTS, MAX_POINTS and MAX_ENTRIES must be positive integers, got '$v'" >&2
        exit 2
    fi
done

# three lines, the min / opt / max "name:d0xd1x..." of every input of a graph: the dynamic axes
# (named in the export) at 1 / the optimum / the maximum of num_objects, num_points, num_entries
profiles() {  # GRAPH M_MAX
    python - "$DIR/$1.onnx" "$MAX_N" "$MAX_P" "$2" <<'PY'
import sys
import onnx
inputs = onnx.load(sys.argv[1]).graph.input
n, p, m = sys.argv[2:5]
for sizes in (dict(num_objects=1, num_points=1, num_entries=1),
              dict(num_objects=1, num_points=2, num_entries=m),
              dict(num_objects=n, num_points=p, num_entries=m)):
    print(','.join(i.name + ':' + 'x'.join(str(sizes[d.dim_param]) if d.dim_param
                                            else str(d.dim_value)
                                            for d in i.type.tensor_type.shape.dim)
                   for i in inputs))
PY
}

for g in "${GRAPHS[@]}"; do
    engine="$DIR/${g}_fp16.engine"
    if [[ $g == encoder ]]; then
        echo "building $engine"
        "$TRTEXEC" --onnx="$DIR/$g.onnx" --fp16 --saveEngine="$engine"
        continue
    fi
    m_max=${MAX_M:-1}
    case $g in
        video_step) ranges="objects 1..$MAX_N, memory entries 1..$m_max" ;;
        *) ranges="objects 1..$MAX_N, points 1..$MAX_P" ;;
    esac
    { read -r min_shapes; read -r opt_shapes; read -r max_shapes; } < <(profiles "$g" "$m_max")
    echo "building $engine ($ranges)"
    "$TRTEXEC" --onnx="$DIR/$g.onnx" --fp16 --saveEngine="$engine" \
        --minShapes="$min_shapes" --optShapes="$opt_shapes" --maxShapes="$max_shapes"
done
