#!/usr/bin/env bash
# The test suite on a GPU machine, with the Python that has the GPU builds of the backends installed
# (no virtual environments are made: scripts/test.sh pins CPU builds).
# Usage: bash scripts/test_gpu.sh [torch] [jax]     (default: torch jax; PYTHON, TEST_WORKERS, PYTEST_ARGS)
#   torch: the whole suite on the CUDA device Keras picks; jax: as in CI, without the tests marked
#   backend_independent or pipeline. Each backend first checks that it really sees a GPU.
# The tests run float32 convolutions and products without TF32 (tests/conftest.py); every torch test
# runs under tests/device_guard.py as on a CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(torch jax)
workers=${TEST_WORKERS:-$(( $(nproc 2>/dev/null || echo 2) / 2 ))}
[ "$workers" -ge 1 ] || workers=1
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # several JAX workers share the GPU
failed=()
for backend in "${backends[@]}"; do
    case $backend in
        torch) check="import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.cuda.get_device_name(0))";
               marker=() ;;
        jax)   check="import jax; assert jax.default_backend() == 'gpu', f'JAX runs on {jax.default_backend()}'; print(jax.devices())";
               marker=(-m "not backend_independent and not pipeline") ;;
        *) echo "unknown backend $backend (torch, jax)" >&2; exit 2 ;;
    esac
    echo "=== tests on $backend (GPU) ==="
    if ! "$PYTHON" -c "$check"; then failed+=("$backend"); continue; fi
    start=$(date +%s)
    KERAS_BACKEND=$backend "$PYTHON" -m pytest tests -q -p no:cacheprovider -W ignore::DeprecationWarning \
        --durations=10 "${marker[@]}" -n "$workers" --dist loadscope --no-loadscope-reorder ${PYTEST_ARGS:-} || failed+=("$backend")
    echo "=== $backend: $(( $(date +%s) - start )) s ==="
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED on: ${failed[*]}" >&2
    exit 1
fi
echo "all tests passed on the GPU: ${backends[*]}"
