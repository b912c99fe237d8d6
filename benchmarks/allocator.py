"""Elementwise PyTorch operations on large activations, with and without keep_freed_memory().

Each measurement runs in a fresh process, once with glibc's default settings
and once after :func:`universal_models.keep_freed_memory`, on NHWC tensors of
16 images of 128 x 128 pixels (16 and 64 channels: 17 MB and 67 MB): the
operations that allocate their output (what Keras layers do) pay for fresh
memory with the defaults, the in-place one does not.

    python benchmarks/allocator.py
    python benchmarks/allocator.py --runs 50 --threads 1
    python benchmarks/allocator.py --models unet16 unet segnet   # also whole models, fresh processes

Prints a Markdown table of median milliseconds (and, with --models, one of images/s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402  (no Keras import: the backend is chosen in the children)

_CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {src!r})
import torch
if {keep!r}:
    from universal_models.allocator import keep_freed_memory
    assert keep_freed_memory()
if {threads!r}:
    torch.set_num_threads({threads!r})
results = {{}}
for channels in (16, 64):
    x = torch.randn(16, 128, 128, channels)
    scale, shift = torch.rand(channels) + 0.5, torch.randn(channels)
    operations = {{
        "relu (new output)": lambda: torch.relu(x),
        "multiply-add per channel (new output)": lambda: torch.addcmul(shift, x, scale),
        "relu in place": lambda: torch.relu_(x),
    }}
    for name, operation in operations.items():
        operation(); operation()
        times = []
        for _ in range({runs!r}):
            start = time.perf_counter()
            operation()
            times.append(time.perf_counter() - start)
        results[f"{{name}}, {{channels}} channels"] = 1e3 * statistics.median(times)
print(json.dumps(results))
"""


_MODEL_CHILD = """
import json, sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {src!r})
import universal_models as um
if {keep!r}:
    assert um.keep_freed_memory()
if {threads!r}:
    import torch
    torch.set_num_threads({threads!r})
from benchmarks import common
name, options = {model!r}
model, _, _ = um.get_model(name, 128, 128, 3, 2, **options)
images, labels = common.synthetic_batch({batch!r} * {steps!r}, 128, 128, 3, 2)
train, infer = common.keras_runners(model, images, labels, {batch!r})
timings = common.interleave({{"train": train, "infer": infer}}, runs={runs!r})
print(json.dumps({{task: {batch!r} * {steps!r} / seconds for task, seconds in timings.items()}}))
"""

#: models of the process-level comparison: name and options for get_model
MODELS = {"unet16": ("unet", {"base_filters": 16}), "unet": ("unet", {}),
          "segnet16": ("segnet", {"base_filters": 16}), "segnet": ("segnet", {})}


def _measure_model(key: str, keep: bool, runs: int, threads: int | None, batch: int, steps: int) -> dict:
    return _run_child(_MODEL_CHILD.format(root=ROOT, src=os.path.join(ROOT, "src"), keep=keep, threads=threads,
                                          model=MODELS[key], batch=batch, steps=steps, runs=runs))


def compare_models(keys: list[str], pairs: int, runs: int, threads: int | None, batch: int, steps: int) -> list:
    """Images/s of ``fit`` and ``predict`` with and without kept memory: one fresh process per
    measurement, the two settings alternating ``pairs`` times (medians over the processes)."""
    rows = []
    for key in keys:
        measured = {False: [], True: []}
        for pair in range(pairs):
            for keep in ((False, True) if pair % 2 == 0 else (True, False)):
                measured[keep].append(_measure_model(key, keep, runs, threads, batch, steps))
        medians = {keep: {task: statistics.median(r[task] for r in results) for task in ("train", "infer")}
                   for keep, results in measured.items()}
        rows.append([key, *(f"{medians[keep][task]:.2f}" for task in ("train", "infer") for keep in (False, True)),
                     *(f"{medians[True][task] / medians[False][task]:.2f}" for task in ("train", "infer"))])
    return rows


def _measure(keep: bool, runs: int, threads: int | None) -> dict:
    return _run_child(_CHILD.format(src=os.path.join(ROOT, "src"), keep=keep, runs=runs, threads=threads))


def _run_child(code: str):
    """Run ``code`` in a fresh Python process, with kept memory allowed there."""
    return common.fresh_process_json(code, {"UNIVERSAL_MODELS_KEEP_MEMORY": "1"})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--models", nargs="*", default=[], choices=sorted(MODELS),
                        help="also compare fit and predict of these models, fresh processes alternating")
    parser.add_argument("--pairs", type=int, default=3, help="processes per setting for --models")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="batches per timed fit or predict")
    parser.add_argument("--model-runs", type=int, default=3, help="timed runs per process for --models")
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    print(common.machine_line())
    default, kept = _measure(False, args.runs, args.threads), _measure(True, args.runs, args.threads)
    rows = [[name, f"{default[name]:.2f}", f"{kept[name]:.2f}", f"{default[name] / kept[name]:.1f}"]
            for name in default]
    print(common.markdown_table(["operation on 16 x 128 x 128 x C float32", "ms, glibc defaults",
                                 "ms, keep_freed_memory()", "speed-up"], rows))
    if args.models:
        rows = compare_models(args.models, args.pairs, args.model_runs, args.threads, args.batch, args.steps)
        print()
        print(common.markdown_table(
            ["model, 128 x 128, batch " + str(args.batch), "train img/s, defaults", "train img/s, kept",
             "infer img/s, defaults", "infer img/s, kept", "train speed-up", "infer speed-up"], rows))


if __name__ == "__main__":
    main()
