"""How time and memory grow with image size (and, for recurrent models, sequence length).

For each model, trains (one ``fit`` epoch) and predicts a few images at every
size, interleaving the sizes, and reports seconds per image, peak memory
growth, and the exponent ``b`` of the least-squares fit ``time ~ pixels ** b``
(``b = 1`` is ideal: a fully convolutional model does the same work per
pixel; below 1 means fixed overheads still matter at the small sizes, above 1
means caches or memory bandwidth start to hurt). Memory is the peak resident
set during the first (cold) run at each size, above the process's resident set
before the sweep; sizes run in increasing order, so each peak includes what
the smaller sizes left allocated. Recurrent models are also
measured against the number of time steps at a fixed frame size.

    KERAS_BACKEND=torch python benchmarks/scaling.py                      # short default
    KERAS_BACKEND=torch python benchmarks/scaling.py --models unet16 segnet16 lstm_unet \\
        --sizes 64 128 256 512 --timesteps 2 4 8 16 --runs 3              # full sweep
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402
from benchmarks.throughput import MODELS, model_and_data  # noqa: E402


def _runners(key: str, size: int, batch: int, timesteps: int | None):
    model, images, labels = model_and_data(key, size, batch, timesteps or 1)
    return common.keras_runners(model, images, labels, batch)


def _exponent(x: list[float], y: list[float]) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def sweep(key: str, points: list[tuple[int, int | None]], batch: int, runs: int) -> list[dict]:
    """Time per image and peak memory at each ``(size, timesteps)`` point, interleaved."""
    functions, memory = {}, {}
    baseline = common.current_rss()
    for size, timesteps in points:
        train, infer = _runners(key, size, batch, timesteps)
        functions[(size, timesteps, "train")] = train
        functions[(size, timesteps, "infer")] = infer
        memory[(size, timesteps)] = (common.peak_rss_during(train) - baseline,
                                     common.peak_rss_during(infer) - baseline)
    timings = common.interleave(functions, runs=runs)
    return [
        {"size": size, "timesteps": timesteps,
         "train": timings[(size, timesteps, "train")] / batch, "infer": timings[(size, timesteps, "infer")] / batch,
         "train_mib": memory[(size, timesteps)][0], "infer_mib": memory[(size, timesteps)][1]}
        for size, timesteps in points
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["unet16"], choices=sorted(MODELS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--timesteps", nargs="+", type=int, default=[2, 4, 8],
                        help="sequence lengths for the recurrent models' time-step sweep")
    parser.add_argument("--frame-size", type=int, default=64, help="frame size of the time-step sweep")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    common.add_memory_option(parser)
    args = parser.parse_args(argv)
    print(common.machine_line(common.apply_memory_option(args)))
    rows, fits = [], []
    for key in args.models:
        recurrent = MODELS[key][2]
        # a sweep of one point has no exponent: a recurrent model with one --sizes value sweeps time only
        sweeps = [("pixels", [(size, 4 if recurrent else None) for size in args.sizes])] if len(args.sizes) > 1 else []
        if recurrent:
            sweeps.append(("time steps", [(args.frame_size, steps) for steps in args.timesteps]))
        for axis, points in sweeps:
            results = sweep(key, points, args.batch, args.runs)
            scale = [r["size"] ** 2 if axis == "pixels" else r["timesteps"] for r in results]
            for r in results:
                shape = f"{r['size']}x{r['size']}" + (f", {r['timesteps']} steps" if r["timesteps"] else "")
                rows.append([key, shape, f"{1e3 * r['train']:.1f}", f"{1e3 * r['infer']:.1f}",
                             f"{r['train_mib']:.0f}", f"{r['infer_mib']:.0f}"])
            fits.append([key, axis, f"{_exponent(scale, [r['train'] for r in results]):.2f}",
                         f"{_exponent(scale, [r['infer'] for r in results]):.2f}",
                         f"{_exponent(scale, [max(r['train_mib'], 1.0) for r in results]):.2f}"])
            print(f"# {key} {axis}: {results}", file=sys.stderr, flush=True)
    print(common.markdown_table(["model", "input", "train ms/image", "infer ms/image", "peak MiB over start, train",
                                 "peak MiB over start, infer"], rows))
    print()
    print(common.markdown_table(["model", "against", "time exponent train", "time exponent infer",
                                 "memory exponent train"], fits))


if __name__ == "__main__":
    main()
