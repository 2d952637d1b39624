#!/usr/bin/env bash
# Build the shared base venv of FastSAM2's heavy, pinned packages at BASE (called by tools/setup_env.sh
# when no base matches requirements.txt). It never holds `seg`: each checkout's venv layers on it.
# Order: torch/torchvision; mmcv 2.1.0 with compiled ops (a prebuilt wheel from FIND_LINKS, else
# tools/build_mmcv_wheel.sh, ~35 min); requirements.txt; sam2 (sdist, SAM2_BUILD_CUDA=0).
# Usage: bash tools/build_base_venv.sh BASE FIND_LINKS
set -euo pipefail
base="${1:?usage: build_base_venv.sh BASE FIND_LINKS}"
links="${2:?usage: build_base_venv.sh BASE FIND_LINKS}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rm -rf "$base"
python3.11 -m venv "$base"
_pip() { "$base/bin/python" -m pip -q --disable-pip-version-check "$@"; }
_pip install --upgrade pip
_pip install "$(grep '^torch==' "$root/requirements.txt")" "$(grep '^torchvision==' "$root/requirements.txt")"
if [ -d "$links" ] && _pip install --find-links "$links" --only-binary mmcv mmcv==2.1.0; then
  echo "[build_base_venv] mmcv from prebuilt wheel in $links" >&2
else
  echo "[build_base_venv] no matching mmcv wheel in '$links': building from the PyPI sdist" >&2
  whl_dir="$(mktemp -d)"
  PYTHON="$base/bin/python" bash "$root/tools/build_mmcv_wheel.sh" "$whl_dir"
  _pip install "$whl_dir"/mmcv-2.1.0-*.whl
fi
_pip install -r "$root/requirements.txt"
# sam2 is an sdist whose setup.py imports torch: build it inside this venv, without CUDA extension.
SAM2_BUILD_CUDA=0 _pip install --no-build-isolation sam2==1.1.0
