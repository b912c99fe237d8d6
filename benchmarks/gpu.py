"""Ours against plain PyTorch on a GPU: U-Net and SegNet, training and inference, float32 and bfloat16.

One process on the torch backend times, interleaved in rounds (``benchmarks/common.py``'s rules:
one warm-up, the order rotated every round, medians), for each model:

- ours: the library's model (a ``GraphModel``: the plan) in float32 and under ``mixed_bfloat16``;
- Keras' runner: the same graph and weights as a plain ``keras.Model`` (Keras' functional runner),
  float32 and ``mixed_bfloat16``;
- the plain-PyTorch twins of ``benchmarks/torch_reference.py`` (same architecture and weights,
  checked), in NCHW and in ``channels_last`` memory, float32 and under ``torch.autocast`` to
  bfloat16, trained with ``torch.optim.Adam`` and cross-entropy on logits.

A timed run is ``--steps`` training steps (``train_on_batch`` for ours, on tensors already on the
device) or ``--steps`` inference batches (``predict_on_batch``; the twins: softmax and a copy of the
probabilities to the host, what ``predict_on_batch`` returns), ended by a device synchronisation.
Then the same model on the JAX backend (float32 and ``mixed_bfloat16``) runs in a subprocess
(Keras fixes its backend per process), timed the same way but not interleaved with the torch runs.

Reported per variant: images/s, peak device memory of one run (PyTorch's allocator:
``max_memory_allocated``; JAX: the device's ``peak_bytes_in_use``), achieved TFLOP/s (the model's
convolution FLOPs, counted from the Keras model by ``benchmarks.common.keras_flops``, the count
PyTorch's FlopCounterMode gives the twin: 2 per multiply-add, a training step 3x the forward less
the first layer's input gradient), and the ratio to the PyTorch twin in channels_last memory at
the same precision. PyTorch's defaults apply (cuDNN convolutions in TF32 for float32; cuDNN
autotuning off unless ``--cudnn-benchmark``), printed in the machine line.

Run::

    KERAS_BACKEND=torch python benchmarks/gpu.py                  # paper width, 256 x 256, batch 16 (~5 min on a GPU)
    KERAS_BACKEND=torch python benchmarks/gpu.py --smoke          # tiny, seconds, any device (CI runs this)
    KERAS_BACKEND=torch python benchmarks/gpu.py --models unet --rounds 3 --json results.jsonl
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


from benchmarks import common  # noqa: E402

#: --models name -> (library model, options), as torch_reference.TWINS has them (checked there; this table
#: also serves the JAX subprocess, which has no torch to import torch_reference with)
MODELS = {"unet": ("unet", {}), "segnet": ("segnet", {}), "unet16": ("unet", {"base_filters": 16}),
          "segnet16": ("segnet", {"base_filters": 16}), "testnet": ("testnet", {})}
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
SMOKE = dict(models=["unet16", "segnet16"], size=32, batch=2, steps=1, rounds=1)


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["unet", "segnet"], choices=sorted(MODELS))
    parser.add_argument("--size", type=int, default=256, help="image height and width")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8, help="batches per timed run")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each variant (median reported)")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    parser.add_argument("--jax-models", nargs="*", choices=sorted(MODELS),
                        help="models also timed on the JAX backend, in a subprocess (default: unet; unet16 with "
                             "--smoke; none: --jax-models with no name)")
    parser.add_argument("--no-keras-runner", dest="keras_runner", action="store_false",
                        help="leave out Keras' own functional runner")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny settings for a CPU (CI): " + ", ".join(f"{k}={v}" for k, v in SMOKE.items()))
    parser.add_argument("--json", metavar="FILE", help="also append one JSON line per result to FILE")
    parser.add_argument("--jax-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    if args.jax_models is None:
        args.jax_models = ["unet16"] if args.smoke else ["unet"]
    return args


# -- shared ------------------------------------------------------------------------------
def flops_per_image(key: str, size: int) -> tuple[int, int]:
    """(training step, forward) FLOPs of one image, counted from the Keras model."""
    import universal_models as um

    name, options = MODELS[key]
    model, _, _ = um.get_model(name, size, size, 3, 2, **options)
    return common.keras_flops(model, (size, size), train=True), common.keras_flops(model, (size, size))


def build_model(key: str, size: int, policy: str = "float32"):
    """The library model ``key`` under the dtype policy ``policy`` (built there, policy restored)."""
    import keras

    import universal_models as um

    name, options = MODELS[key]
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model, _, _ = um.get_model(name, size, size, 3, 2, **options)
    finally:
        keras.config.set_dtype_policy(previous)
    return model


def result_row(backend: str, variant: str, key: str, precision: str, args, seconds: dict, memory: dict,
               flops: tuple[int, int]) -> dict:
    images = args.batch * args.steps
    row = {"backend": backend, "variant": variant, "model": key, "precision": precision, "size": args.size,
           "batch": args.batch}
    for task, task_flops in (("train", flops[0]), ("infer", flops[1])):
        if task not in seconds:
            continue
        rate = images / seconds[task]
        row.update({f"{task}_images_per_s": rate, f"{task}_tflops": rate * task_flops / 1e12,
                    f"{task}_peak_gib": memory.get(task, float("nan")) / 2**30})
    return row


# -- the torch process -----------------------------------------------------------------------
def _synchronize(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory(torch, device, function) -> float:
    """Peak bytes the caching allocator handed out during ``function()`` (NaN off CUDA)."""
    if device.type != "cuda":
        function()
        return float("nan")
    _synchronize(torch, device)
    torch.cuda.reset_peak_memory_stats(device)
    function()
    _synchronize(torch, device)
    return float(torch.cuda.max_memory_allocated(device))


def _keras_functions(model, images, labels, steps: int, torch, device):
    import keras

    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")

    def train() -> None:
        for index in range(steps):
            model.train_on_batch(images[index], labels[index])  # returns the loss: one sync per step
        _synchronize(torch, device)

    def infer() -> None:
        for index in range(steps):
            model.predict_on_batch(images[index])  # numpy probabilities
        _synchronize(torch, device)

    return train, infer


def _twin_functions(reference, images, labels, steps: int, channels_last: bool, bfloat16: bool, torch, device):
    import torch.nn.functional as functional

    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    reference = reference.to(device=device, memory_format=memory_format)
    inputs = [batch.permute(0, 3, 1, 2).contiguous(memory_format=memory_format) for batch in images]
    targets = [batch.long() for batch in labels]
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bfloat16)

    def train() -> None:
        reference.train()
        for index in range(steps):
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = functional.cross_entropy(reference(inputs[index]), targets[index])
            loss.backward()
            optimizer.step()
        _synchronize(torch, device)

    def infer() -> None:
        reference.eval()
        with torch.inference_mode(), autocast():
            for index in range(steps):
                torch.softmax(reference(inputs[index]), dim=1).float().cpu()
        _synchronize(torch, device)

    return train, infer


def torch_model_results(key: str, args) -> list[dict]:
    import keras
    import torch
    from keras.src.backend.torch.core import get_device

    from benchmarks.torch_reference import TWINS, build_twins, check_twins, plain_keras_model

    assert TWINS[key][:2] == MODELS[key], (key, TWINS[key][:2], MODELS[key])
    device = torch.device(get_device())
    # the twins are checked at a small size with float32 convolutions (TF32 is not float32's tolerance)
    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        small, small_reference = build_twins(key, 32, logits=True)
        probe, _ = common.synthetic_batch(2, 32, 32, 3, 2, seed=1)
        check_twins(small, small_reference, probe, float64_twin=lambda: build_twins(key, 32, logits=True)[0])
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    model, reference = build_twins(key, args.size)
    images, labels = common.synthetic_batch(args.batch * args.steps, args.size, args.size, 3, 2)
    batches = [keras.ops.convert_to_tensor(images[i * args.batch:(i + 1) * args.batch]) for i in range(args.steps)]
    label_batches = [keras.ops.convert_to_tensor(labels[i * args.batch:(i + 1) * args.batch])
                     for i in range(args.steps)]
    variants: dict[tuple[str, str, str], tuple] = {}
    for precision in args.precisions:
        policy = PRECISIONS[precision]
        ours = model if policy == "float32" else build_model(key, args.size, policy)
        if ours is not model:
            ours.set_weights(model.get_weights())
        variants[("torch", "ours", precision)] = _keras_functions(ours, batches, label_batches, args.steps, torch,
                                                                  device)
        if args.keras_runner:
            variants[("torch", "keras_runner", precision)] = _keras_functions(
                plain_keras_model(ours), batches, label_batches, args.steps, torch, device)
        for channels_last in (False, True):
            import copy

            twin = copy.deepcopy(reference)
            name = "pytorch_channels_last" if channels_last else "pytorch_nchw"
            variants[("torch", name, precision)] = _twin_functions(
                twin, batches, label_batches, args.steps, channels_last, precision == "bfloat16", torch, device)
    functions, memory = {}, {}
    for (_backend, variant, precision), (train, infer) in variants.items():
        for task, function in (("train", train), ("infer", infer)):
            label = f"{variant}|{precision}|{task}"
            function()  # first call: builds, compiles, moves kernels
            memory[label] = _peak_memory(torch, device, function)
            functions[label] = function
    seconds = common.interleave(functions, runs=args.rounds, warmup=0)
    flops = flops_per_image(key, args.size)
    rows = []
    for (backend, variant, precision) in variants:
        labels_of = {task: f"{variant}|{precision}|{task}" for task in ("train", "infer")}
        rows.append(result_row(backend, variant, key, precision, args,
                               {task: seconds[label] for task, label in labels_of.items()},
                               {task: memory[label] for task, label in labels_of.items()}, flops))
    return rows


# -- the JAX subprocess ----------------------------------------------------------------------
def jax_worker(args) -> list[dict]:
    """The models on the JAX backend (run in a process whose KERAS_BACKEND is jax); one row per model and
    precision, timed in rounds of ``--steps`` steps, medians."""
    import statistics

    import jax
    import keras

    rows = []
    for key in args.jax_models:
        flops = flops_per_image(key, args.size)
        images, labels = common.synthetic_batch(args.batch * args.steps, args.size, args.size, 3, 2)
        batches = [jax.device_put(images[i * args.batch:(i + 1) * args.batch]) for i in range(args.steps)]
        label_batches = [jax.device_put(labels[i * args.batch:(i + 1) * args.batch]) for i in range(args.steps)]
        for precision in args.precisions:
            model = build_model(key, args.size, PRECISIONS[precision])
            model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
            seconds, memory = {}, {}
            for task in ("train", "infer"):
                def run(task=task) -> None:
                    for index in range(args.steps):
                        if task == "train":
                            model.train_on_batch(batches[index], label_batches[index])
                        else:
                            model.predict_on_batch(batches[index])
                run()  # compiles
                times = []
                for _ in range(args.rounds):
                    start = time.perf_counter()
                    run()
                    times.append(time.perf_counter() - start)
                seconds[task] = statistics.median(times)
                stats = jax.devices()[0].memory_stats() or {}
                memory[task] = float(stats.get("peak_bytes_in_use", float("nan")))
            rows.append(result_row("jax", "ours", key, precision, args, seconds, memory, flops))
    return rows


def jax_results(args, argv) -> list[dict]:
    """:func:`jax_worker` in a subprocess with ``KERAS_BACKEND=jax``; its rows (an error row if it fails)."""
    environment = {**os.environ, "KERAS_BACKEND": "jax", "XLA_PYTHON_CLIENT_PREALLOCATE": "false"}
    command = [sys.executable, os.path.abspath(__file__), "--jax-worker", *argv]
    started = time.perf_counter()
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, cwd=ROOT)
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["(no output)"]
        print(f"# JAX subprocess failed ({time.perf_counter() - started:.0f} s): {tail[0]}", file=sys.stderr)
        return [{"backend": "jax", "variant": "ours", "model": key, "error": tail[0]} for key in args.jax_models]
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


# -- report ----------------------------------------------------------------------------------
def _format(value, digits=0) -> str:
    return "n/a" if value is None or value != value else f"{value:,.{digits}f}"


def table(rows: list[dict]) -> str:
    """Markdown table; ratios are to the PyTorch twin in channels_last memory at the same precision."""
    baseline = {(row["model"], row["precision"]): row for row in rows
                if row.get("variant") == "pytorch_channels_last" and row.get("backend") == "torch"}
    lines = []
    for row in rows:
        if "error" in row:
            lines.append([row["model"], f"{row['backend']} {row['variant']}", "", row["error"]] + [""] * 8)
            continue
        reference = baseline.get((row["model"], row["precision"]), {})
        cells = [row["model"], f"{row['backend']} {row['variant']}", row["precision"]]
        for task in ("train", "infer"):
            rate = row.get(f"{task}_images_per_s")
            ratio = rate / reference[f"{task}_images_per_s"] if reference and rate else None
            cells += [_format(rate, 1), _format(ratio, 2), _format(row.get(f"{task}_tflops"), 2),
                      _format(row.get(f"{task}_peak_gib"), 2)]
        lines.append(cells)
    header = ["model", "runner", "precision", "train img/s", "train / PyTorch CL", "train TFLOP/s", "train peak GiB",
              "infer img/s", "infer / PyTorch CL", "infer TFLOP/s", "infer peak GiB"]
    return common.markdown_table(header, lines)


def device_line() -> str:
    import torch
    from keras.src.backend.torch.core import get_device

    device = torch.device(get_device())
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return (f"Device: {name} (torch {torch.__version__}, CUDA {torch.version.cuda}); cuDNN TF32 "
                f"{torch.backends.cudnn.allow_tf32}, matmul TF32 {torch.backends.cuda.matmul.allow_tf32}, "
                f"cuDNN benchmark {torch.backends.cudnn.benchmark}.")
    return f"Device: {device.type} (no GPU: sizes for a smoke run only, not a GPU figure)."


def main(argv=None) -> list[dict]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_arguments(argv)
    import keras

    if args.jax_worker:
        rows = jax_worker(args)
        for row in rows:
            print(json.dumps(row), flush=True)
        return rows
    if keras.config.backend() != "torch":
        raise SystemExit("benchmarks/gpu.py runs on the torch backend (JAX in a subprocess): KERAS_BACKEND=torch")
    import torch

    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    print(common.machine_line())
    print(device_line())
    started = time.perf_counter()
    rows = []
    for key in args.models:
        rows += torch_model_results(key, args)
        keras.backend.clear_session()  # the next model's runs get the memory
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        print(f"# {key} on torch: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    if args.jax_models:
        worker_argv = [item for item in argv if item != "--smoke"] + (
            [f"--{name.replace('_', '-')}={value}" for name, value in
             (("size", args.size), ("batch", args.batch), ("steps", args.steps), ("rounds", args.rounds))]
            + ["--precisions", *args.precisions, "--jax-models", *args.jax_models])
        rows += jax_results(args, worker_argv)
        print(f"# JAX: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    for key in args.models:
        train, forward = flops_per_image(key, args.size)
        print(f"{key} at {args.size} x {args.size}: {forward / 1e9:.1f} GFLOP per image forward, "
              f"{train / 1e9:.1f} per training step")
    print(table(rows))
    if args.json:
        with open(args.json, "a", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
    print(f"total {time.perf_counter() - started:.0f} s")
    return rows


if __name__ == "__main__":
    main()
