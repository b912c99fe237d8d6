#!/usr/bin/env bash
# Create (or refresh) one virtual environment per Keras backend, with the package installed
# editable plus its test tools:  .venv-torch  .venv-jax  .venv-tensorflow
# Usage: bash scripts/setup.sh [torch] [jax] [tensorflow]      (default: torch)
# An environment is rebuilt only when pyproject.toml changed since it was made.
# UMODELS_BYTECODE=lazy skips byte-compiling the installed packages (scripts/test.sh does this and
# lets its test processes write the .pyc files of what they import); the default, compile, makes
# them all, also for an environment made lazily before.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
python=${PYTHON:-python3}
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(torch)
stamp=$(sha256sum pyproject.toml | cut -c1-16)
bytecode=${UMODELS_BYTECODE:-compile}
case $bytecode in compile|lazy) ;; *) echo "UMODELS_BYTECODE must be compile or lazy, got '$bytecode'" >&2; exit 2 ;; esac

byte_compile() {
    # pip byte-compiles what it installs on one core; compileall does the same on every core.
    # The .pyc files matter: with PYTHONDONTWRITEBYTECODE set (as on our CI machines) Python
    # would otherwise compile torch's or TensorFlow's sources again in every process.
    "$1/bin/python" -m compileall -q -j 0 "$1/lib" > /dev/null 2>&1 || true
    touch "$1/.compiled"
}

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
        if [ "$bytecode" = compile ] && [ ! -f "$venv/.compiled" ]; then
            echo "[$backend] byte-compiling $venv"
            byte_compile "$venv"
        fi
        echo "[$backend] environment up to date: $venv"
        return 0
    fi
    echo "[$backend] creating $venv"
    rm -rf "$venv"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet --no-compile -e "$root[$extras]"
    [ "$bytecode" = lazy ] || byte_compile "$venv"
    echo "$stamp" > "$venv/.stamp"
    # Lazy: .pyc files go to $venv/pycache (see scripts/test.sh); this first import starts filling it.
    local python_env=()
    [ "$bytecode" = compile ] || python_env=(-u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX="$venv/pycache")
    echo "[$backend] ready: $(env "${python_env[@]}" KERAS_BACKEND=$backend "$venv/bin/python" -c 'import keras; print("keras", keras.__version__, "on", keras.config.backend())')"
}

pids=()
for backend in "${backends[@]}"; do
    setup_one "$backend" > >(sed "s/^/[setup $backend] /") 2>&1 &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
