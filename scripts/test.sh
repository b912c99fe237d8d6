#!/usr/bin/env bash
# Set up the environments and run the test suite on each Keras backend, each in its own process.
# Usage: bash scripts/test.sh [torch] [jax] [tensorflow]   (default: all three)
#   torch:            the whole suite
#   jax, tensorflow:  everything except tests marked backend_independent (same result on any backend)
# Extra pytest arguments: PYTEST_ARGS="-x -k unet" bash scripts/test.sh torch
set -uo pipefail
cd "$(dirname "$0")/.."
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(torch jax tensorflow)
bash scripts/setup.sh "${backends[@]}" || { echo "environment setup failed" >&2; exit 1; }

failed=()
for backend in "${backends[@]}"; do
    marker=()
    [ "$backend" = torch ] || marker=(-m "not backend_independent")
    echo "=== tests on $backend ==="
    start=$(date +%s)
    KERAS_BACKEND=$backend ".venv-$backend/bin/python" -m pytest tests -q -p no:cacheprovider \
        -W ignore::DeprecationWarning "${marker[@]}" ${PYTEST_ARGS:-} || failed+=("$backend")
    echo "=== $backend: $(( $(date +%s) - start )) s ==="
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED on: ${failed[*]}" >&2
    exit 1
fi
echo "all tests passed on: ${backends[*]}"
