#!/usr/bin/env bash
# Creates .venv (if missing) and installs the project with the given extras, e.g.
#   bash scripts/setup.sh          # runtime only
#   bash scripts/setup.sh test     # plus pytest and ruff
#   bash scripts/setup.sh gpu      # plus JAX with CUDA, for NVIDIA GPUs (--env gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python_bin="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python_bin" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
spec="."
[ -n "$extras" ] && spec=".[$extras]"
.venv/bin/python -m pip install --quiet --editable "$spec"
