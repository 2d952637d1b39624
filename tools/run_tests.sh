#!/usr/bin/env bash
# The README's test command: set up the venv if missing, then run the whole test suite.
# Extra arguments go to pytest (e.g. `bash tools/run_tests.sh tests/test_models -x`).
set -eo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/tools/setup_env.sh"
cd "$root"
# one intra-op thread, for subprocesses too (see tests/conftest.py)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec python -m pytest "${@:-tests}"
