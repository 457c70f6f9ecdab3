#!/usr/bin/env bash
# The tests: set up the environment, lint, then the whole pytest suite (slow tests included).
# Needs CIFAR-10 for the pipeline tests: ../shared/data/cifar10-jpeg.tar.gz or CIFAR10_RAW_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
# jupyter: the notebook test executes notebooks/ in a real kernel; docs: the
# documentation test builds the site with mkdocs; jax: the JAX backend's tests (the GPU
# path and distributed training, on the CPU) run on what the jax extra installs.
bash scripts/setup.sh test,jupyter,docs,jax
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
export DO_NOT_TRACK=1 KEDRO_DISABLE_TELEMETRY=1
if [ -z "${CIFAR10_RAW_PATH:-}" ] && [ -f ../shared/data/cifar10-jpeg.tar.gz ]; then
  CIFAR10_RAW_PATH="$(cd ../shared/data && pwd)/cifar10-jpeg.tar.gz"
  export CIFAR10_RAW_PATH
fi
.venv/bin/ruff check src tests benchmarks notebooks
.venv/bin/ruff format --check src tests benchmarks notebooks docs
# One worker per core (pytest-xdist); `bash scripts/test.sh -n 0` runs in this process.
exec .venv/bin/python -m pytest -n auto "$@"
