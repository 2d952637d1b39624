#!/usr/bin/env bash
# Build an mmcv 2.1.0 wheel with compiled ops for the current torch (>= 2.13 needs C++20).
# mmcv 2.1.0's setup.py hard-codes -std=c++14/17, which torch >= 2.13 headers reject; this script takes
# the PyPI sdist, switches those flags to -std=c++20 and builds the wheel. CUDA ops are built only
# where a CUDA toolkit (nvcc) and a target GPU architecture exist. Takes ~35 min on 2 cores.
# Usage: PYTHON=/path/to/venv/bin/python bash tools/build_mmcv_wheel.sh OUT_DIR
set -euo pipefail
out="${1:?usage: build_mmcv_wheel.sh OUT_DIR}"
py="${PYTHON:-python3}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# mmcv's setup.py imports pkg_resources (gone from setuptools >= 70) and torch (so no build isolation).
"$py" -m pip -q install "setuptools<70" wheel ninja numpy
"$py" -m pip -q download --no-deps --no-binary :all: --no-build-isolation -d "$work" mmcv==2.1.0
tar -xzf "$work"/mmcv-2.1.0.tar.gz -C "$work"
src="$work/mmcv-2.1.0"
sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/setup.py"
grep -q -- '-std=c++20' "$src/setup.py" || { echo "patch of -std flag failed" >&2; exit 1; }
# CUDA kernels need nvcc, a CUDA torch, and target architectures: a visible GPU or TORCH_CUDA_ARCH_LIST
# (e.g. "8.6;8.9" for RTX 3090/4090). Otherwise build the CPU ops only (what the GPU machines carry).
if command -v nvcc >/dev/null 2>&1 && "$py" -c 'import os, sys, torch; sys.exit(0 if torch.version.cuda and (torch.cuda.is_available() or os.environ.get("TORCH_CUDA_ARCH_LIST")) else 1)'; then
  export FORCE_CUDA=1
else
  export FORCE_CUDA=0
fi
echo "[build_mmcv_wheel] FORCE_CUDA=$FORCE_CUDA" >&2
(cd "$src" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" "$py" -m pip wheel --no-build-isolation --no-deps -w "$out" .)
ls "$out"/mmcv-2.1.0-*.whl
