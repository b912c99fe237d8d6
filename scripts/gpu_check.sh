#!/usr/bin/env bash
# One prepared check of a GPU machine, in about 9 minutes, as a new user would run things:
#   1. the test suite on CUDA, torch then JAX        (scripts/test_gpu.sh)
#   2. umodels demo
#   3. umodels train / evaluate / predict --precision bfloat16 on a small folder dataset
#   4. compile(jit_compile=True) on torch and on JAX
#   5. benchmarks/gpu.py (ours against plain PyTorch; JAX U-Net in a subprocess)
# Logs go to $OUT (default ./gpu-check): one file per phase, summary.txt written after every phase (so a
# run stopped early still says how far it got), gpu.jsonl from the benchmark. Run folders go to a
# temporary folder. Each phase has a time limit (LIMIT_<PHASE> seconds, defaults below); PHASES="demo
# jit_compile" runs only those phases (JIT_BACKENDS="torch": one backend), e.g. to try the script on a CPU.
# Needs a Python with the GPU builds of torch and JAX (PYTHON, default python3). Without Keras it installs
# the wheels carried in .whl/ (keras, namex, optree; scripts/gpu_wheels.sh fetches them) into /tmp/site, offline.
# Usage: bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu-check}
mkdir -p "$OUT"
WORK=$(mktemp -d)
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
if ! "$PYTHON" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('keras') is None)"; then
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "no Keras and no wheels in .whl/ to install it from" | tee "$OUT/summary.txt"; exit 1; }
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}"
umodels() { "$PYTHON" -m universal_models.cli "$@"; }

started=$(date +%s)
{
    echo "gpu_check.sh at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC')"
    nvidia-smi -L 2>&1 | head -2
    "$PYTHON" -c "import sys, torch, jax, keras; print('python', sys.version.split()[0], '| torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), '| jax', jax.__version__, jax.default_backend(), '| keras', keras.__version__)" 2>&1 | tail -1
} > "$OUT/summary.txt"

phase() {  # phase NAME DEFAULT_LIMIT COMMAND...: run with a time limit, log to $OUT/NAME.log, note the result
    local name=$1 limit_variable="LIMIT_${1^^}" limit
    limit=${!limit_variable:-$2}
    shift 2
    case " ${PHASES:-$name} " in *" $name "*) ;; *) return 0 ;; esac  # PHASES="demo jit_compile": only those
    echo "=== $name (at most ${limit} s) ==="
    local start=$(date +%s)
    timeout "$limit" bash -c '"$@"' phase "$@" > "$OUT/$name.log" 2>&1  # (bash -c: the functions too)
    local code=$?
    local outcome="ok"
    [ $code -eq 0 ] || outcome="FAILED (exit $code)"
    [ $code -eq 124 ] && outcome="TIMED OUT after ${limit} s"
    tail -n 15 "$OUT/$name.log"
    echo "$name: $outcome, $(( $(date +%s) - start )) s" | tee -a "$OUT/summary.txt"
}

folder_run() {  # 3: a folder of 24 generated 96 x 96 images with masks, trained in bfloat16, scored, predicted
    "$PYTHON" - "$WORK/folder" <<'PYTHON' || return 1
import sys
from pathlib import Path
import numpy as np
from PIL import Image
from universal_models.data import make_shapes
root = Path(sys.argv[1])
images, masks = make_shapes(24, 96, 96, seed=3)
for folder in ("images", "masks"):
    (root / folder).mkdir(parents=True, exist_ok=True)
for index, (image, mask) in enumerate(zip(images, masks)):
    Image.fromarray((np.clip(image[..., 0], 0, 1) * 255).astype(np.uint8)).save(root / "images" / f"{index:02d}.png")
    Image.fromarray(mask.astype(np.uint8)).save(root / "masks" / f"{index:02d}.png")
print("wrote", len(images), "images to", root)
PYTHON
    umodels train --model unet --option base_filters=16 --data "$WORK/folder" --val-split 4 --precision bfloat16 \
        --epochs 3 --batch-size 8 --patch-size 64 --output "$WORK/run_bf16" --verbose 2 || return 1
    grep -q '"precision": "bfloat16"' "$WORK/run_bf16/config.json" || { echo "config.json has no bfloat16"; return 1; }
    umodels evaluate "$WORK/run_bf16" || return 1
    umodels predict "$WORK/run_bf16" "$WORK/folder/images" --output "$WORK/predictions" --probabilities || return 1
    count=$(ls "$WORK/predictions"/*.png | wc -l)
    echo "predicted masks: $count"
    [ "$count" -eq 24 ]
}

jit_check() {  # 4: compile(jit_compile=True) trains on torch (eager plan, with a warning) and on JAX (XLA)
    for backend in ${JIT_BACKENDS:-torch jax}; do
        KERAS_BACKEND=$backend "$PYTHON" - <<'PYTHON' || return 1
import time, warnings
import numpy as np, keras
import universal_models as um
images = np.random.default_rng(0).random((16, 128, 128, 3), dtype=np.float32)
labels = np.random.default_rng(1).integers(0, 2, (16, 128, 128)).astype("int32")
model, _, _ = um.get_model("unet", 128, 128, 3, 2, base_filters=16)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
start = time.perf_counter()
history = model.fit(images, labels, batch_size=8, epochs=3, verbose=0).history["loss"]
print(keras.config.backend(), "jit_compile", model.jit_compile, "losses", [round(v, 4) for v in history],
      f"{time.perf_counter() - start:.1f} s", "warnings:", [str(w.message)[:60] for w in caught])
assert all(np.isfinite(history)), history
PYTHON
    done
}

export PYTHON WORK
export -f umodels folder_run jit_check
phase tests_torch 100 bash scripts/test_gpu.sh torch
phase tests_jax 100 bash scripts/test_gpu.sh jax
phase demo 60 umodels demo --output "$WORK/demo" --verbose 2
phase cli_bfloat16 60 folder_run
phase jit_compile 30 jit_check
phase gpu_benchmark 200 env KERAS_BACKEND=torch "$PYTHON" benchmarks/gpu.py --rounds 3 --json "$OUT/gpu.jsonl"
echo "total: $(( $(date +%s) - started )) s" | tee -a "$OUT/summary.txt"
rm -rf "$WORK"
