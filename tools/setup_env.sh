#!/usr/bin/env bash
# Create (if missing or outdated) and activate this checkout's virtual environment, with `seg`
# installed editable from this checkout. Source it (`source tools/setup_env.sh`) or run it.
#
# Two layers keep it both per checkout and fast:
#   base venv      ~/.cache/fastsam2/base-<hash>: torch, mmcv with compiled ops, requirements.txt and
#                  sam2, shared by every checkout whose requirements.txt and build scripts hash to
#                  <hash> (built once by tools/build_base_venv.sh; never holds `seg`).
#   checkout venv  <repo>/.venv (gitignored): a bare venv whose site-packages points at the base's (a
#                  .pth file) and which holds only `seg`, editable from this checkout. `import seg` in
#                  it is therefore this checkout's code, whatever other clones install.
# Settings (environment variables):
#   FASTSAM2_VENV        the checkout venv (default: <repo>/.venv)
#   FASTSAM2_BASE_DIR    where base venvs live (default: ~/.cache/fastsam2); the 3 most recently used
#                        are kept
#   FASTSAM2_FIND_LINKS  folder with a prebuilt mmcv 2.1.0 wheel (default: ../shared/wheels beside the repo)
set -euo pipefail
_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_venv="${FASTSAM2_VENV:-$_root/.venv}"
_base_dir="${FASTSAM2_BASE_DIR:-$HOME/.cache/fastsam2}"
_links="${FASTSAM2_FIND_LINKS:-$_root/../shared/wheels}"
_hash() { cat "$@" | sha256sum | cut -c1-16; }
_base="$_base_dir/base-$(_hash "$_root/requirements.txt" "$_root/tools/build_base_venv.sh" \
  "$_root/tools/build_mmcv_wheel.sh")"

# 1. the base, built under a lock so that two checkouts never build the same one at once
mkdir -p "$_base_dir"
(
  flock 9
  if [ ! -f "$_base/.fastsam2-complete" ]; then
    echo "[setup_env] building base venv $_base" >&2
    _t0=$(date +%s)
    bash "$_root/tools/build_base_venv.sh" "$_base" "$_links"
    echo "[setup_env] base venv ready in $(( $(date +%s) - _t0 )) s" >&2
  fi
  touch "$_base/.fastsam2-complete"  # complete; its time is the last use: the pruning below keeps recently used bases
  # shellcheck disable=SC2012  # names are ours (base-<hex>)
  ls -1dt "$_base_dir"/base-*/.fastsam2-complete 2>/dev/null | tail -n +4 | while read -r _old; do
    echo "[setup_env] removing unused base venv $(dirname "$_old")" >&2
    rm -rf "$(dirname "$_old")"
  done
) 9>"$_base_dir/.base.lock"
_base_site="$("$_base/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"

# 2. the checkout venv: recreated when missing or layered on another base
_marker="$_venv/.fastsam2-checkout-venv"
if [ -e "$_venv" ] && [ ! -f "$_marker" ]; then
  echo "[setup_env] $_venv exists but was not made by tools/setup_env.sh: remove it or set" \
    "FASTSAM2_VENV to another path" >&2
  exit 1
fi
if [ ! -f "$_marker" ] || [ "$(cat "$_marker")" != "$_base_site" ]; then
  rm -rf "$_venv"
  python3.11 -m venv --without-pip "$_venv"
  _site="$("$_venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
  echo "$_base_site" > "$_site/_fastsam2_base.pth"  # the base's packages, after the venv's own
  echo "$_base_site" > "$_marker"
fi

# 3. `seg`, editable from this checkout (pip comes from the base); redone when the packaging
# changes or `seg` resolves anywhere else (without importing it: find_spec runs no package code)
_seg_stamp="$_root $(_hash "$_root/pyproject.toml" "$_root/setup.py")"
_seg_at() { (cd / && env -u PYTHONPATH "$_venv/bin/python" -c \
  'import importlib.util as u; s = u.find_spec("seg"); print(s.origin if s else "")'); }
if [ "$(cat "$_venv/.fastsam2-seg" 2>/dev/null)" != "$_seg_stamp" ] \
    || [ "$(_seg_at)" != "$_root/seg/__init__.py" ]; then
  _log="$(mktemp)"
  if ! "$_venv/bin/python" -m pip -q --disable-pip-version-check install --no-deps \
      --no-build-isolation -e "$_root" >"$_log" 2>&1; then
    cat "$_log" >&2; rm -f "$_log"; echo "[setup_env] installing seg from $_root failed" >&2; exit 1
  fi
  rm -f "$_log"
  if [ "$(_seg_at)" != "$_root/seg/__init__.py" ]; then
    echo "[setup_env] seg in $_venv resolves to '$(_seg_at)', not $_root/seg" >&2; exit 1
  fi
  echo "$_seg_stamp" > "$_venv/.fastsam2-seg"
fi
export PATH="$_venv/bin:$_base/bin:$PATH"
export VIRTUAL_ENV="$_venv"
set +euo pipefail
