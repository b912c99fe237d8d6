#!/usr/bin/env bash
# Download, on a machine with pip access, the wheels that scripts/gpu_check.sh installs on a GPU machine that
# has torch and JAX but no Keras (Python 3.12, x86-64): keras (the version pyproject.toml's range allows and
# the tests ran with), namex, optree, into the git-ignored .whl/ folder. Keras' other needs (numpy, absl-py,
# rich, h5py, ml-dtypes, packaging) are on such machines already.
# Usage: bash scripts/gpu_wheels.sh [KERAS_VERSION]   (default 3.13.2)
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "keras==${1:-3.13.2}" namex optree
ls -l .whl
