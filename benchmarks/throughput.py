"""Training and inference throughput, achieved GFLOP/s and peak memory of the models.

Run once per backend (each in its own virtual environment); prints a Markdown
table. Training is one epoch of ``model.fit`` (Adam, sparse categorical
cross-entropy), inference one ``model.predict`` over the same images; ONNX is
the model exported with :func:`universal_models.inference.export.export_onnx` and run by
onnxruntime (torch backend, ``--onnx``). Every figure is the median of
``--runs`` interleaved runs after one warm-up run. GFLOP/s uses the FLOPs of
:func:`benchmarks.common.keras_flops` (PyTorch's FlopCounterMode convention: 2
per multiply-add, convolutions only). Peak memory is the peak resident set
of the whole process during one training epoch (and one prediction):
framework, data and the activations kept for the backward pass. For the
recurrent model, images/s counts frames (sequences of ``TIMESTEPS`` frames).

    KERAS_BACKEND=torch python benchmarks/throughput.py                   # short default
    KERAS_BACKEND=torch python benchmarks/throughput.py --onnx --models testnet unet16 segnet16 fcn8 \\
        --sizes 64 128 256 512 --batches 4 16 --runs 5                    # full sweep
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402

#: name -> (registry name, options, is recurrent)
MODELS = {
    "testnet": ("testnet", {}, False),
    "unet16": ("unet", {"base_filters": 16}, False),
    "unet": ("unet", {}, False),
    "segnet16": ("segnet", {"base_filters": 16}, False),
    "segnet": ("segnet", {}, False),
    "fcn8": ("fcn8", {"fc_filters": 1024}, False),
    "lstm_unet": ("lstm_unet", {}, True),
}
TIMESTEPS = 4  # frames per sequence for the recurrent models


def model_and_data(key: str, size: int, count: int, timesteps: int = TIMESTEPS):
    """Model ``key`` for ``size x size x 3`` images (2 classes) and ``count`` random images
    (sequences of ``timesteps`` frames for recurrent models) with labels."""
    import universal_models as um

    name, options, recurrent = MODELS[key]
    model, _, _ = um.get_model(name, size, size, 3, 2, **options)
    frames = timesteps if recurrent else 1
    images, labels = common.synthetic_batch(count * frames, size, size, 3, 2)
    if recurrent:
        images = images.reshape(count, frames, size, size, 3)
        labels = labels.reshape(count, frames, size, size)
    return model, images, labels


def measure(key: str, size: int, batch: int, steps: int, runs: int, onnx: bool) -> dict:
    import keras

    recurrent = MODELS[key][2]
    count = batch * steps
    model, images, labels = model_and_data(key, size, count)
    train, infer = common.keras_runners(model, images, labels, batch)
    functions = {"train": train, "infer": infer}
    if onnx:
        from universal_models.inference.export import OnnxPredictor, export_onnx

        path = os.path.join(tempfile.mkdtemp(), f"{key}.onnx")
        try:
            export_onnx(model, path, input_shape=images.shape[1:], batch_size=batch)
        except Exception as error:  # reported in the table as "export failed"
            print(f"# {key}: ONNX export failed: {str(error).splitlines()[0][:300]}", file=sys.stderr)
        else:
            predictor = OnnxPredictor(path)
            functions["onnx"] = lambda: predictor.predict(images)
    timings = common.interleave(functions, runs=runs)
    frames = count * (images.shape[1] if recurrent else 1)  # images/s counts the frames of a sequence
    result = {task: frames / seconds for task, seconds in timings.items()}
    result["train_mib"] = common.peak_rss_during(train)
    result["infer_mib"] = common.peak_rss_during(infer)
    if recurrent:
        result["train_gflops"] = result["infer_gflops"] = None
    else:
        result["train_gflops"] = result["train"] * common.keras_flops(model, (size, size), train=True) / 1e9
        result["infer_gflops"] = result["infer"] * common.keras_flops(model, (size, size)) / 1e9
    keras.backend.clear_session()
    return result


def _number(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["testnet", "unet16", "segnet16"], choices=sorted(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[128])
    parser.add_argument("--batches", nargs="+", type=int, default=[8])
    parser.add_argument("--steps", type=int, default=2, help="batches per timed run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--onnx", action="store_true", help="also time the ONNX export with onnxruntime (torch)")
    common.add_memory_option(parser)
    args = parser.parse_args(argv)
    print(common.machine_line(common.apply_memory_option(args)))
    rows = []
    for key in args.models:
        for size in args.sizes:
            for batch in args.batches:
                r = measure(key, size, batch, args.steps, args.runs, args.onnx)
                unit = f"{TIMESTEPS}x" if MODELS[key][2] else ""
                rows.append([
                    key, f"{unit}{size}x{size}", batch, _number(r["train"]), _number(r["infer"]),
                    _number(r.get("onnx")) if "onnx" in r or not args.onnx else "export failed",
                    _number(r["train_gflops"], 0), _number(r["infer_gflops"], 0),
                    f"{r['train_mib']:.0f} / {r['infer_mib']:.0f}",
                ])
                print(f"# {key} {size} {batch}: {r}", file=sys.stderr, flush=True)
    print(common.markdown_table(
        ["model", "input", "batch", "train img/s", "infer img/s", "ONNX img/s", "train GFLOP/s",
         "infer GFLOP/s", "peak RSS MiB train / infer"], rows))


if __name__ == "__main__":
    main()
