#!/usr/bin/env bash
# Create (or refresh) one virtual environment per Keras backend, with the package installed
# editable plus its test tools:  .venv-torch  .venv-jax  .venv-tensorflow
# Usage: bash scripts/setup.sh [torch] [jax] [tensorflow]      (default: torch)
# An environment is rebuilt only when pyproject.toml changed since it was made.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(torch)
stamp=$(sha256sum pyproject.toml | cut -c1-16)

setup_one() {
    local backend=$1 extras
    case $backend in
        torch) extras="torch,onnx,dev" ;;
        jax) extras="jax,dev" ;;
        tensorflow) extras="tensorflow,dev" ;;
        *) echo "unknown backend '$backend' (use torch, jax or tensorflow)" >&2; return 2 ;;
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
    "$venv/bin/python" -m pip install --quiet --no-compile -e "$root[$extras]"
    "$venv/bin/python" -m compileall -q -j 0 "$venv/lib" > /dev/null 2>&1 || true
    echo "$stamp" > "$venv/.stamp"
    echo "[$backend] ready: $(KERAS_BACKEND=$backend "$venv/bin/python" -c 'import keras; print("keras", keras.__version__, "on", keras.config.backend())')"
}

pids=()
for backend in "${backends[@]}"; do
    setup_one "$backend" > >(sed "s/^/[setup $backend] /") 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
