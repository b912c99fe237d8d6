"""Where the time goes: PyTorch profiler tables of our model and its PyTorch twin.

Profiles one training epoch (``model.fit``) or one ``model.predict`` of the
library model on the torch backend and the same work done by the
hand-written twin from ``torch_reference.py``, and prints the operators
sorted by their own CPU time. ``UNIVERSAL_MODELS_FAST_PATHS=0`` profiles the
generic ``keras.ops`` code instead of the layers' fast paths (the "before").

    KERAS_BACKEND=torch python benchmarks/profile_torch.py unet16 train --threads 1
    UNIVERSAL_MODELS_FAST_PATHS=0 KERAS_BACKEND=torch python benchmarks/profile_torch.py segnet16 infer
    KERAS_BACKEND=torch python benchmarks/profile_torch.py unet16 train --batch 16 --convolutions

``--convolutions`` replaces the operator tables by one row per convolution
backward call of a training step, side by side for the two models: input and
output-gradient shapes, the memory layout PyTorch receives (``NCHW``
contiguous, ``NHWC`` = channels-last, ``other``) and the wall time of the call.

The ``phases`` task times the parts of one training step by hand (forward,
loss, backward, optimizer), median of ``--steps`` interleaved repetitions, for
three contestants on the same batch and weights: the model as the library
builds it (a ``GraphModel``, run by its plan on torch), the same model run by
Keras' own functional runner (a plain ``keras.Model``), and the PyTorch twin;
plus one ``model.fit`` step of each Keras model::

    KERAS_BACKEND=torch python benchmarks/profile_torch.py segnet phases --batch 16 --steps 7 --keep-memory
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from torch.profiler import ProfilerActivity, profile  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from benchmarks import common, torch_reference  # noqa: E402


def _layout(tensor: torch.Tensor) -> str:
    if tensor.is_contiguous():
        return "NCHW"
    return "NHWC" if tensor.is_contiguous(memory_format=torch.channels_last) else "other"


class _ConvolutionBackwardTimer(TorchDispatchMode):
    """Records shape, layout and wall time of every ``aten.convolution_backward`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, float]] = []  # (convolution, input layout, seconds)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is not torch.ops.aten.convolution_backward.default:
            return func(*args, **(kwargs or {}))
        start = time.perf_counter()
        result = func(*args, **(kwargs or {}))
        seconds = time.perf_counter() - start
        inputs, weight, transposed = args[1], args[2], args[7]
        height, width = inputs.shape[2:]
        channels_out = weight.shape[1] * args[9] if transposed else weight.shape[0]
        kind = "transposed " if transposed else ""
        kernel = f"{kind}{weight.shape[2]}x{weight.shape[3]}"
        description = f"{height}x{width}, {inputs.shape[1]} -> {channels_out}, {kernel}"
        self.calls.append((description, _layout(inputs), seconds))
        return result


def convolution_table(ours, theirs, runs: int = 3) -> str:
    """Median wall time of each convolution's backward call in one training step, ours and the twin's."""
    timings = {}
    for name, function in (("ours", ours), ("twin", theirs)):
        function()  # warm-up
        per_run = []
        for _ in range(runs):
            timer = _ConvolutionBackwardTimer()
            with timer:
                function()
            per_run.append(timer.calls)
        timings[name] = per_run
    if len(timings["ours"][0]) != len(timings["twin"][0]):
        raise RuntimeError("the two models made a different number of convolution backward calls")
    rows, totals = [], {"ours": 0.0, "twin": 0.0}
    for index in range(len(timings["ours"][0])):
        medians = {name: statistics.median(run[index][2] for run in timings[name]) for name in timings}
        for name in totals:
            totals[name] += medians[name]
        description, layout, _ = timings["ours"][0][index]
        rows.append([f"{description} ({layout})", timings["twin"][0][index][1],
                     f"{1e3 * medians['ours']:.1f}", f"{1e3 * medians['twin']:.1f}",
                     f"{medians['twin'] / medians['ours']:.2f}"])
    rows.append(["all convolutions", "", f"{1e3 * totals['ours']:.1f}", f"{1e3 * totals['twin']:.1f}",
                 f"{totals['twin'] / totals['ours']:.2f}"])
    return common.markdown_table(
        ["convolution backward (input, ours' layout)", "twin's layout", "ms ours", "ms twin", "twin / ours"], rows)


def phases_table(model, reference, images, labels, repetitions: int) -> str:
    """Milliseconds per phase of one training step (median of ``repetitions``, interleaved)."""
    import keras
    import torch.nn.functional as functional

    contestants = {"ours (GraphModel)": model, "ours, Keras' runner": torch_reference.plain_keras_model(model)}
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    steps = {}
    for name, network in contestants.items():
        network.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        network.fit(images, labels, batch_size=len(images), epochs=1, verbose=0)  # builds the optimizer

        def step(network=network):
            marks = [time.perf_counter()]
            predictions = network(x, training=True)
            marks.append(time.perf_counter())
            network.zero_grad()
            loss = network._compute_loss(x=x, y=y, y_pred=predictions, sample_weight=None, training=True)
            marks.append(time.perf_counter())
            loss.backward()
            marks.append(time.perf_counter())
            variables = network.trainable_weights[:]
            with torch.no_grad():
                network.optimizer.apply([variable.value.grad for variable in variables], variables)
            marks.append(time.perf_counter())
            network.fit(images, labels, batch_size=len(images), epochs=1, verbose=0, shuffle=False)
            marks.append(time.perf_counter())
            return [later - earlier for earlier, later in zip(marks, marks[1:])]

        steps[name] = step
    x_nchw, y_long = x.permute(0, 3, 1, 2).contiguous(), y.long()
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    reference.train()

    def twin_step():
        marks = [time.perf_counter()]
        logits = reference(x_nchw)
        marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        loss = functional.cross_entropy(logits, y_long)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        return [later - earlier for earlier, later in zip(marks, marks[1:])] + [float("nan")]

    steps["PyTorch twin"] = twin_step
    timings: dict[str, list[list[float]]] = {name: [] for name in steps}
    for function in steps.values():
        function()  # warm-up
    for _ in range(repetitions):
        for name, function in steps.items():
            timings[name].append(function())
    rows = []
    for name, runs in timings.items():
        medians = [1e3 * statistics.median(column) for column in zip(*runs)]
        cells = [f"{value:.1f}" for value in medians[:4]] + [f"{sum(medians[:4]):.1f}"]
        cells.append("-" if medians[4] != medians[4] else f"{medians[4]:.1f}")
        rows.append([name] + cells)
    return common.markdown_table(["", "forward ms", "loss ms", "backward ms", "optimizer ms", "sum ms",
                                  "one fit step ms"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(torch_reference.TWINS))
    parser.add_argument("task", choices=["train", "infer", "phases"])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (1 is steadier on a busy machine)")
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--convolutions", action="store_true",
                        help="time each convolution's backward call of one training step (median of 3) instead")
    common.add_memory_option(parser)
    args = parser.parse_args(argv)
    allocator = common.apply_memory_option(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(common.machine_line(allocator))
    model, reference = torch_reference.build_twins(args.model, args.size)
    if args.task == "phases":
        images, labels = common.synthetic_batch(args.batch, args.size, args.size, 3, 2)
        print(f"\n{args.model}, {args.size}x{args.size}, batch {args.batch}, median of {args.steps} steps\n")
        print(phases_table(model, reference, images, labels, args.steps))
        return
    images, labels = common.synthetic_batch(args.batch * args.steps, args.size, args.size, 3, 2)
    ours = common.keras_runners(model, images, labels, args.batch)
    theirs = torch_reference._reference_runners(reference, images, labels, args.steps, channels_last=False)
    if args.convolutions:
        if args.task != "train":
            parser.error("--convolutions times backward calls: use the train task")
        print(f"\n{args.model}, {args.size}x{args.size}, batch {args.batch}, {args.steps} steps per run, "
              "median of 3 runs\n")
        print(convolution_table(ours[0], theirs[0]))
        return
    index = 0 if args.task == "train" else 1
    for name, function in (("ours (Keras, torch backend)", ours[index]), ("PyTorch twin", theirs[index])):
        function()  # warm-up
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            function()
        print(f"\n## {name}: {args.model} {args.task}, {args.size}x{args.size}, batch {args.batch}, "
              f"{args.steps} steps")
        print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows,
                                            max_name_column_width=45))


if __name__ == "__main__":
    main()
