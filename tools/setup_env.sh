#!/usr/bin/env bash
# Create (if missing or outdated) and activate the FastSAM2 virtual environment, then install `seg`.
# Source it (`source tools/setup_env.sh`) or run it. Settings (environment variables):
#   FASTSAM2_VENV        where the venv lives (default: ~/.cache/fastsam2/venv, shared by clones so
#                        CI on a reused machine is fast)
#   FASTSAM2_FIND_LINKS  folder with a prebuilt mmcv 2.1.0 wheel (default: ../shared/wheels beside the repo)
# The venv is rebuilt when requirements.txt or this script change (a stamp file records their hash).
set -euo pipefail
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_venv="${FASTSAM2_VENV:-$HOME/.cache/fastsam2/venv}"
_links="${FASTSAM2_FIND_LINKS:-$_root/../shared/wheels}"
_stamp_want="$(cat "$_root/requirements.txt" "$_root/tools/setup_env.sh" "$_root/tools/build_mmcv_wheel.sh" | sha256sum | cut -c1-16)"
_stamp_file="$_venv/.fastsam2-stamp"

if [ ! -f "$_stamp_file" ] || [ "$(cat "$_stamp_file")" != "$_stamp_want" ]; then
  echo "[setup_env] building venv at $_venv" >&2
  _t0=$(date +%s)
  rm -rf "$_venv"
  python3.11 -m venv "$_venv"
  _pip() { "$_venv/bin/python" -m pip -q --disable-pip-version-check "$@"; }
  _pip install --upgrade pip
  _pip install "$(grep '^torch==' "$_root/requirements.txt")" "$(grep '^torchvision==' "$_root/requirements.txt")"
  # mmcv 2.1.0 with compiled ops: a matching prebuilt wheel if one is there, else build it (~35 min).
  if [ -d "$_links" ] && _pip install --find-links "$_links" --only-binary mmcv mmcv==2.1.0; then
    echo "[setup_env] mmcv from prebuilt wheel in $_links" >&2
  else
    echo "[setup_env] no matching mmcv wheel in '$_links': building from the PyPI sdist" >&2
    _whl_dir="$(mktemp -d)"
    PYTHON="$_venv/bin/python" bash "$_root/tools/build_mmcv_wheel.sh" "$_whl_dir"
    _pip install "$_whl_dir"/mmcv-2.1.0-*.whl
  fi
  _pip install -r "$_root/requirements.txt"
  # sam2 is an sdist whose setup.py imports torch: build it inside this venv, without CUDA extension.
  SAM2_BUILD_CUDA=0 _pip install --no-build-isolation sam2==1.1.0
  echo "$_stamp_want" > "$_stamp_file"
  echo "[setup_env] venv ready in $(( $(date +%s) - _t0 )) s" >&2
fi

# `seg` itself: editable, no deps, so every clone points the shared venv at its own sources.
_log="$(mktemp)"
if ! "$_venv/bin/python" -m pip -q --disable-pip-version-check install --no-deps --no-build-isolation \
    -e "$_root" >"$_log" 2>&1; then
  cat "$_log" >&2; rm -f "$_log"; echo "[setup_env] installing seg from $_root failed" >&2; exit 1
fi
rm -f "$_log"
export PATH="$_venv/bin:$PATH"
export VIRTUAL_ENV="$_venv"
set +euo pipefail
