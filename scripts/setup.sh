#!/usr/bin/env bash
# Create (or refresh) one virtual environment per Keras backend, with the package installed
# editable plus its test tools:  .venv-torch  .venv-jax  .venv-tensorflow  (newest Keras release)
# and .venv-torch-oldest (torch with the oldest Keras release pyproject.toml supports).
# Usage: bash scripts/setup.sh [torch] [jax] [tensorflow] [torch-oldest]      (default: torch)
# An environment is rebuilt only when pyproject.toml or this script changed since it was made.
#
# PyTorch: the package admits any torch>=2.4, but this script installs the CPU build torch==2.13.0
# explicitly (it lies on the project's machines; a bare `pip install torch` would download a
# multi-GB CUDA build). On a GPU machine install the torch (or JAX) build for your CUDA first, then
# `pip install -e .` keeps it (README, "Training on a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(torch)
stamp=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
# The oldest supported Keras: the lower bound of the keras requirement in pyproject.toml.
oldest_keras=$(sed -n 's/^ *"keras>=\([0-9.]*\)".*/\1/p' pyproject.toml | head -n 1)
torch_build="torch==2.13.0"

setup_one() {
    local backend=$1 extras pins=()
    case $backend in
        torch) extras="torch,onnx,dev"; pins=("$torch_build") ;;
        torch-oldest) extras="torch,dev"; pins=("$torch_build" "keras==$oldest_keras") ;;
        jax) extras="jax,dev" ;;
        tensorflow) extras="tensorflow,dev" ;;
        *) echo "unknown environment '$backend' (use torch, jax, tensorflow or torch-oldest)" >&2; return 2 ;;
    esac
    local venv="$root/.venv-$backend"
    if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp" ]; then
        echo "[$backend] environment up to date: $venv"
        return 0
    fi
    echo "[$backend] creating $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    # pip byte-compiles what it installs on one core; compileall does the same on every core.
    # The .pyc files matter: with PYTHONDONTWRITEBYTECODE set (as on our CI machines) Python
    # would otherwise compile torch's or TensorFlow's sources again in every process.
    "$venv/bin/python" -m pip install --quiet --no-compile "${pins[@]}" -e "$root[$extras]"
    "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" > /dev/null 2>&1 || true
    echo "$stamp" > "$venv/.stamp"
    local keras_backend=${backend%-oldest}
    echo "[$backend] ready: $(KERAS_BACKEND=$keras_backend "$venv/bin/python" -c 'import keras; print("keras", keras.__version__, "on", keras.config.backend())')"
}

pids=()
for backend in "${backends[@]}"; do
    setup_one "$backend" > >(sed "s/^/[setup $backend] /") 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
