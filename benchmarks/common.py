"""Helpers shared by the benchmark scripts: data, timing, FLOPs, memory, tables.

Timing rules used everywhere: every measured function runs once to warm up,
then all functions of a comparison run in turn (the order rotated every
round, so that none always follows the same neighbour), ``runs`` rounds, and
the median of each is reported. Ratios come from one process and one run, so
a busy machine slows both sides alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np


# -- data --------------------------------------------------------------------------
def synthetic_batch(count: int, height: int, width: int, channels: int, n_classes: int, seed: int = 0):
    """Random images (float32, NHWC) and integer labels (int32) of the given size."""
    rng = np.random.default_rng(seed)
    images = rng.random((count, height, width, channels), dtype=np.float32)
    labels = rng.integers(0, n_classes, (count, height, width), dtype=np.int32)
    return images, labels


# -- timing ------------------------------------------------------------------------
def interleave(functions: dict[str, Callable[[], object]], runs: int, warmup: int = 1) -> dict[str, float]:
    """Median wall time in seconds of each function, measured in rotating turns."""
    names = list(functions)
    for _ in range(warmup):
        for name in names:
            functions[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            functions[name]()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def keras_runners(model, images: np.ndarray, labels: np.ndarray, batch_size: int, *,
                  loss: str = "sparse_categorical_crossentropy", jit_compile="auto"):
    """``(train, infer)`` closures: one epoch of ``model.fit`` and one ``model.predict`` over the data.

    ``loss="categorical_crossentropy"`` trains on one-hot labels instead of integers.
    """
    import keras

    targets = labels
    if loss == "categorical_crossentropy":
        n_classes = model.output_shape[-1]
        targets = np.eye(n_classes, dtype="float32")[labels]
    elif model.output_shape[-1] == 1:
        loss, targets = "binary_crossentropy", labels[..., None].astype("float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=jit_compile)

    def train() -> None:
        model.fit(images, targets, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)

    def infer() -> None:
        model.predict(images, batch_size=batch_size, verbose=0)

    return train, infer


# -- FLOPs -------------------------------------------------------------------------
def _parents(layer) -> list:
    nodes = getattr(layer, "_inbound_nodes", [])
    if not nodes:
        return []
    return [node.operation for node in nodes[0].parent_nodes]


def _forward_flops(layer) -> int:
    """Multiply-add FLOPs (x2) of one image through a convolution or dense layer; 0 otherwise."""
    import keras

    if isinstance(layer, keras.layers.Conv2DTranspose):
        height, width, in_channels = layer.input.shape[1:]
        kernel = int(np.prod(layer.kernel.shape))
        return 2 * height * width * kernel
    if isinstance(layer, keras.layers.Conv2D):
        height, width, _ = layer.output.shape[1:]
        kernel = int(np.prod(layer.kernel.shape))
        return 2 * height * width * kernel
    if isinstance(layer, keras.layers.Dense):
        positions = int(np.prod(layer.input.shape[1:-1])) if len(layer.input.shape) > 2 else 1
        return 2 * positions * int(np.prod(layer.kernel.shape))
    return 0


def keras_flops(model, spatial_size: Sequence[int], train: bool = False) -> int:
    """FLOPs of one image through ``model`` (2 per multiply-add), as PyTorch's FlopCounterMode counts.

    Only convolutions and matrix products count. For a training step, the
    backward pass adds, per such layer, one forward's worth for the weight
    gradient (when the weights are trainable) and one for the input gradient
    (when the input depends on trainable weights, i.e. not for the first
    layer). ``model`` must have a static input size; ``spatial_size`` is only
    checked against it.
    """
    if tuple(model.input_shape[1:3]) != tuple(spatial_size):
        raise ValueError(f"model input {model.input_shape} does not match size {tuple(spatial_size)}")
    needs_grad: set[str] = set()
    total = 0
    for layer in model.layers:
        parents = _parents(layer)
        input_needs_grad = any(parent.name in needs_grad for parent in parents)
        forward = _forward_flops(layer)
        trainable = bool(layer.trainable_weights)
        total += forward
        if train and forward:
            total += forward * (int(trainable) + int(input_needs_grad))
        if trainable or input_needs_grad:
            needs_grad.add(layer.name)
    return total


# -- memory ------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def peak_rss_during(function: Callable[[], object]) -> float:
    """Peak resident memory of the process (MiB) while ``function`` runs.

    Uses Linux's ``/proc/self/clear_refs`` to reset the high-water mark first,
    so the figure is the peak of this call, framework and data included (the
    growth over the RSS before the call would read 0 once allocators keep the
    memory of a warm-up run); returns NaN where that is not available.
    """
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return float("nan")
    function()
    return _status_kib("VmHWM") / 1024


def current_rss() -> float:
    """Resident memory of the process now (MiB)."""
    return _status_kib("VmRSS") / 1024


def add_memory_option(parser) -> None:
    """``--keep-memory``: run with :func:`universal_models.keep_freed_memory` (as ``umodels`` does)."""
    parser.add_argument("--keep-memory", action="store_true",
                        help="keep freed memory in the process (universal_models.keep_freed_memory), as umodels does")


def apply_memory_option(args) -> str:
    """Apply ``--keep-memory``; returns the allocator's description for the machine line."""
    if not getattr(args, "keep_memory", False):
        return "glibc malloc defaults"
    import universal_models as um

    return "keep_freed_memory()" if um.keep_freed_memory() else "keep_freed_memory() not available"


# -- reporting ---------------------------------------------------------------------
def fresh_process_json(code: str, environment: dict[str, str] | None = None):
    """Run Python ``code`` in a fresh interpreter and return its last output line, parsed as JSON.

    For measurements that must start from a new process (build time, allocator settings).
    """
    import json
    import subprocess
    import sys

    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={**os.environ, **(environment or {})})
    return json.loads(output.stdout.strip().splitlines()[-1])


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return "\n".join(lines)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line(allocator: str | None = None) -> str:
    """One line naming the CPU, core count, load average, library versions (and the allocator)."""
    import keras

    versions = [f"keras {keras.__version__}", f"backend {keras.config.backend()}"]
    backend_module = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}[keras.config.backend()]
    versions.append(f"{backend_module} {__import__(backend_module).__version__}")
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    if allocator:
        versions.append(f"allocator: {allocator}")
    return (f"Machine: {cpu_model()}, {os.cpu_count()} cores; load average before the run {load}; "
            + "; ".join(versions) + ".")
