#!/usr/bin/env bash
# The main job: set up the environment, then `kedro run` with any extra arguments, e.g.
#   bash scripts/run.sh                      # the full default run (conf/base)
#   bash scripts/run.sh --env smoke          # a small subset, 2 epochs
#   bash scripts/run.sh --env notebook       # the notebook's configuration
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/kedro run "$@"
