"""What ``torch.compile`` of Keras' training step costs and gains on torch, against the eager plan.

Each case runs in a fresh process (torch.compile's caches and settings are per process): a TestNet
(16 filters) on 64 x 64 x 2 images, batch 8, Adam, ``train_on_batch``; the first step (tracing and
compiling included) and the median of the next ``--steps`` steps:

- ``eager``: the GraphModel's plan (what ``compile(jit_compile=True)`` gives on torch);
- ``compiled``: Keras' ``jit_compile=True`` path (``torch.compile`` of the training step), forced
  past GraphModel's eager fallback, torch's defaults;
- ``compiled_static``: the same with ``torch._dynamo.config.automatic_dynamic_shapes = False``
  (every layer's frame compiled for its own shapes, no symbolic shapes);
- ``compiled_keras_runner``: ``compiled`` with the fast paths off (Keras' own runner and layers).

Run::

    KERAS_BACKEND=torch python benchmarks/torch_compile.py [--steps 5] [--cases eager compiled ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CASE = r"""
import json, statistics, sys, time
import numpy as np, keras, torch
case, steps = sys.argv[1], int(sys.argv[2])
if case == "compiled_static":
    import torch._dynamo
    torch._dynamo.config.automatic_dynamic_shapes = False
import universal_models as um
from universal_models.layers.fast_paths import use_fast_paths
with use_fast_paths(case != "compiled_keras_runner"):
    model, _, _ = um.get_model("testnet", 64, 64, 2, 3, base_filters=16)
    images = np.random.default_rng(0).normal(size=(8, 64, 64, 2)).astype("float32")
    labels = np.random.default_rng(1).integers(0, 3, (8, 64, 64)).astype("int32")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model._jit_compile = case != "eager"  # past GraphModel.jit_compile's eager fallback
    try:
        start = time.perf_counter()
        model.train_on_batch(images, labels)
        first = time.perf_counter() - start
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            model.train_on_batch(images, labels)
            times.append(time.perf_counter() - start)
        print(json.dumps({"case": case, "first_s": first, "step_ms": 1000 * statistics.median(times)}))
    except Exception as error:
        message = str(error).strip().splitlines()
        print(json.dumps({"case": case, "error": f"{type(error).__name__}: " + next(
            (line for line in message if "Error" in line or "truth value" in line), message[0] if message else "")}))
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["eager", "compiled", "compiled_static"],
                        choices=["eager", "compiled", "compiled_static", "compiled_keras_runner"])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    from benchmarks import common

    print(common.machine_line())
    rows = []
    for case in args.cases:
        completed = subprocess.run([sys.executable, "-W", "ignore", "-c", CASE, case, str(args.steps)],
                                   capture_output=True, text=True, cwd=ROOT)
        lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
        result = json.loads(lines[-1]) if lines else {"case": case, "error": completed.stderr.strip()[-200:]}
        print(f"# {result}", file=sys.stderr, flush=True)
        rows.append([case, f"{result['first_s']:.1f}" if "first_s" in result else "-",
                     f"{result['step_ms']:.0f}" if "step_ms" in result else "-", result.get("error", "")])
    print(common.markdown_table(["case", "first step (s)", "later steps, median (ms)", "error"], rows))


if __name__ == "__main__":
    main()
