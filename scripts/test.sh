#!/usr/bin/env bash
# Set up the environments and run the test suite on each Keras backend, each in its own process.
# Usage: bash scripts/test.sh [torch] [jax] [tensorflow] [torch-oldest]   (default: all four)
#   torch:            the whole suite, newest Keras release
#   jax, tensorflow:  everything except tests marked backend_independent (same result on any backend)
#                     or pipeline (end-to-end runs of backend-agnostic code: CLI, run folders, fault injection)
#   torch-oldest:     torch with the oldest Keras release pyproject.toml supports, everything except the
#                     pipeline tests (the library's own code paths on that release; the CLI runs on top of them)
# Before the tests, pip resolves this package beside keras-hub (a dry run: nothing is installed), so a
# version conflict with Keras' own model library shows here rather than in a user's environment.
# Extra pytest arguments: PYTEST_ARGS="-x -k unet" bash scripts/test.sh torch
# Each backend's tests run in TEST_WORKERS parallel pytest workers (default: one per core, at most 2),
# each with one compute thread: most of a test's time is single-threaded (graph tracing, XLA
# compilation, Python), so two one-thread workers finish about twice as fast as one two-thread run.
set -uo pipefail
cd "$(dirname "$0")/.."
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(torch jax tensorflow torch-oldest)
# The environments are made before any test runs: the first backend's alone, then the others
# side by side. Measured on a fresh clone (2-core machine): installing the JAX and TensorFlow
# environments beside the torch tests slowed them from about 255 s to 385 s, while the same
# installs alone take about 75 s; all three installs at once took 220 s.
setup_start=$(date +%s)
bash scripts/setup.sh "${backends[0]}" || { echo "environment setup failed" >&2; exit 1; }
if [ ${#backends[@]} -gt 1 ]; then
    bash scripts/setup.sh "${backends[@]:1}" || { echo "environment setup failed" >&2; exit 1; }
fi
echo "=== environments: $(( $(date +%s) - setup_start )) s ==="

# keras-hub beside this package: resolved only (it pulls tensorflow-text and TensorFlow, too heavy to
# install everywhere). In the background: it waits on the network, not the CPU.
hub_log=$(mktemp)
first_venv=".venv-${backends[0]}"
"$first_venv/bin/python" -m pip install --dry-run --quiet --no-compile -e ".[torch]" keras-hub torch==2.13.0 \
    > "$hub_log" 2>&1 &
hub_pid=$!

cores=$(nproc 2>/dev/null || echo 1)
workers=${TEST_WORKERS:-$(( cores < 2 ? 1 : 2 ))}
parallel=()
# loadscope keeps a module (or class) on one worker; the order is tests/conftest.py's, longest first.
[ "$workers" -gt 1 ] && parallel=(-n "$workers" --dist loadscope --no-loadscope-reorder)
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1
# JAX: most of a test's time is XLA compiling its training step, and most of that is LLVM
# optimising each fused kernel. The tests compile with optimisation level 1 and XLA's classic
# loop emitters: the same programs, less optimised machine code (U-Net-8 training step: 10 s of
# compiling -> 6 s; the JAX suite 696 s -> 549 s). Level 0 is not used: it gave NaN in SegNet's
# second training step. Users and benchmarks/ get XLA's defaults.
# (XLA_FLAGS holds only --flags: XLA stops reading at the first word without "--", silently.)
export XLA_FLAGS="${XLA_FLAGS:---xla_cpu_multi_thread_eigen=false --xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false}"

# JAX: compiled programs are cached on disk for the run, so the workers and the subprocesses
# some tests start do not compile the same step twice.
export JAX_COMPILATION_CACHE_DIR="${JAX_COMPILATION_CACHE_DIR:-$(mktemp -d)}"
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0.5

# One suite after the other: side by side on a fresh clone, the JAX and TensorFlow suites had not
# finished after 1,090 s; one after the other they take about 1,060 s.
failed=()
# Lint first (a second or two): the configuration is in pyproject.toml.
echo "=== ruff check ==="
".venv-${backends[0]}/bin/ruff" check --quiet . || failed+=("ruff check")
for backend in "${backends[@]}"; do
    case $backend in
        torch) marker=() ;;
        torch-oldest) marker=(-m "not pipeline") ;;
        *) marker=(-m "not backend_independent and not pipeline") ;;
    esac
    echo "=== tests on $backend ==="
    start=$(date +%s)
    KERAS_BACKEND=${backend%-oldest} ".venv-$backend/bin/python" -m pytest tests -q -p no:cacheprovider \
        -W ignore::DeprecationWarning --durations=15 "${marker[@]}" "${parallel[@]}" ${PYTEST_ARGS:-} || failed+=("$backend")
    echo "=== $backend: $(( $(date +%s) - start )) s ==="
done
if wait "$hub_pid"; then
    echo "=== keras-hub resolves beside this package ==="
else
    echo "=== keras-hub does NOT resolve beside this package: ===" >&2
    grep -v "^WARNING: Location" "$hub_log" | tail -n 20 >&2
    failed+=("keras-hub resolution")
fi
rm -f "$hub_log"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED on: ${failed[*]}" >&2
    exit 1
fi
echo "all tests passed on: ${backends[*]}"
