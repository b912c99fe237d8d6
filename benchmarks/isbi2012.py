"""ISBI 2012 EM segmentation with `umodels train`: one U-Net per loss, within a wall-clock budget.

Trains on slices 0-24 and validates on slices 25-29 of ``../shared/data/isbi2012``
(label 255 = cell interior -> class 1, 0 = membrane -> class 0), once per loss,
each run stopped by ``--time-limit`` before the budget is exceeded. Then it
reads every run's ``metrics.json`` (the best epoch by validation mean IoU,
scored on the five full 512 x 512 validation slices, tiled with overlap) and
writes a Markdown table and a JSON file, and copies the prediction overlays of
the best run into ``docs/images/``.

Run it on a quiet machine, niced if the machine is shared::

    nice -n 10 python benchmarks/isbi2012.py --minutes 19 --threads 1

The budget is wall-clock time, so a busy machine trains fewer epochs: the
table records epochs and minutes of every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "isbi2012"
LOSSES = ("cross_entropy", "ce_dice_loss", "focal_loss")


def train_command(data: Path, loss: str, output: Path, minutes: float, seed: int, base_filters: int = 16,
                  epochs: int = 22) -> list[str]:
    """The `umodels train` command line of one run (also printed in the docs).

    ``epochs`` is what fits in the budget on one core of the project's machine, so that the
    cosine learning-rate schedule decays to its end; ``--time-limit`` still stops a slower run.
    """
    return [
        "umodels", "train", "--model", "unet", "--option", f"base_filters={base_filters}", "--option", "depth=4",
        "--data", str(data), "--images-dir", "image", "--masks-dir", "label", "--val-split", "5",
        "--class-names", "membrane,interior",
        "--loss", loss, "--epochs", str(epochs), "--time-limit", str(minutes), "--patch-size", "128",
        "--batch-size", "4", "--learning-rate", "1e-3", "--lr-schedule", "cosine", "--rotation", "15",
        "--monitor", "val_mean_iou",
        "--tile-size", "256", "--overlap", "32", "--seed", str(seed), "--output", str(output), "--verbose", "2",
        "--overwrite",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES))
    parser.add_argument("--minutes", type=float, default=19.0, help="wall-clock budget per run (<= 20)")
    parser.add_argument("--threads", type=int, help="OMP_NUM_THREADS for the runs (default: the backend's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--base-filters", type=int, default=16, help="U-Net width (filters of the first level)")
    parser.add_argument("--epochs", type=int, default=22, help="epochs of the cosine schedule (what fits the budget)")
    parser.add_argument("--output", type=Path, default=ROOT / "runs" / "isbi2012")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--table-only", action="store_true",
                        help="train nothing: rewrite the table from the results file and the run folders")
    args = parser.parse_args(argv)
    if not (args.data / "image").is_dir():
        print(f"ISBI 2012 data not found at {args.data} (expected image/ and label/); nothing to do.")
        return 1
    environment = dict(os.environ)
    if args.threads:
        environment["OMP_NUM_THREADS"] = str(args.threads)
    rows = []
    for loss in [] if args.table_only else args.losses:
        output = args.output / loss
        command = train_command(args.data, loss, output, args.minutes, args.seed, args.base_filters, args.epochs)
        print("$", " ".join(command), flush=True)
        started = time.monotonic()
        runner = [sys.executable, "-m", "universal_models.cli"] + command[1:]
        completed = subprocess.run(runner, env=environment)
        minutes = (time.monotonic() - started) / 60
        if completed.returncode != 0:
            print(f"run with {loss} failed (exit {completed.returncode})")
            return completed.returncode
        metrics = json.loads((output / "metrics.json").read_text())
        history = (output / "log.csv").read_text().strip().splitlines()
        column = history[0].split(",").index("time")
        training_minutes = sum(float(line.split(",")[column]) for line in history[1:]) / 60
        per_class = {entry["class"]: entry for entry in metrics["per_class"]}
        rows.append({
            "loss": loss, "date": time.strftime("%Y-%m-%d %H:%M"), "load_average": os.getloadavg()[0],
            "epochs": len(history) - 1, "best_epoch": metrics["epoch"], "minutes": round(minutes, 1),
            "training_minutes": round(training_minutes, 1),
            "backend": metrics["backend"], "pixel_accuracy": metrics["pixel_accuracy"],
            "iou_membrane": per_class[0]["iou"], "iou_interior": per_class[1]["iou"], "mean_iou": metrics["mean_iou"],
            "dice_membrane": per_class[0]["dice"], "command": " ".join(command),
        })
    args.results.mkdir(parents=True, exist_ok=True)
    results = args.results / "isbi2012.json"
    if results.exists():  # keep earlier runs of other losses (rerun one loss with --losses NAME)
        rerun = {row["loss"] for row in rows}
        rows = [row for row in json.loads(results.read_text()) if row["loss"] not in rerun] + rows
        rows.sort(key=lambda row: LOSSES.index(row["loss"]) if row["loss"] in LOSSES else len(LOSSES))
    for row in rows:  # rows of runs that predate the column
        log = args.output / row["loss"] / "log.csv"
        if "training_minutes" not in row and log.exists():
            lines = log.read_text().strip().splitlines()
            column = lines[0].split(",").index("time")
            row["training_minutes"] = round(sum(float(line.split(",")[column]) for line in lines[1:]) / 60, 1)
    results.write_text(json.dumps(rows, indent=2))
    lines = [
        "| loss | epochs (best) | training min | total min | pixel accuracy | IoU membrane | IoU interior | mean IoU "
        "| Dice membrane |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| `{row['loss']}` | {row['epochs']} ({row['best_epoch']}) | {row.get('training_minutes', 'n/a')} | "
            f"{row['minutes']} | "
            f"{row['pixel_accuracy']:.4f} | {row['iou_membrane']:.4f} | {row['iou_interior']:.4f} | "
            f"{row['mean_iou']:.4f} | {row['dice_membrane']:.4f} |"
        )
    table = "\n".join(lines)
    (args.results / "isbi2012.md").write_text(table + "\n")
    print(table)
    best = max(rows, key=lambda row: row["mean_iou"])
    if not (args.output / best["loss"] / "predictions.png").exists():
        return 0
    images = ROOT / "docs" / "images"
    images.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    # The overlays as JPEG (a tenth of the PNG's size, for the repository); curves as they are.
    with Image.open(args.output / best["loss"] / "predictions.png") as picture:
        picture.convert("RGB").save(images / "isbi2012_predictions.jpg", quality=85)
    write_small_overlay(images / "isbi2012_predictions.jpg", images / "isbi2012_prediction_small.png")
    shutil.copy(args.output / best["loss"] / "curves.png", images / "isbi2012_curves.png")
    return 0


def write_small_overlay(source: Path, target: Path, width: int = 600) -> int:
    """The first validation slice's row (image, truth, prediction) of the overlays, as a small
    palette PNG for the README; returns its size in bytes."""
    from PIL import Image

    with Image.open(source) as picture:
        picture = picture.convert("RGB")
        rows = max(1, round(picture.height / (picture.width / 3)))  # three square panels a row
        first = picture.crop((0, 0, picture.width, picture.height // rows))
        height = round(first.height * width / first.width)
        small = first.resize((width, height), Image.LANCZOS).quantize(256, method=Image.Quantize.MEDIANCUT,
                                                                       dither=Image.Dither.NONE)
        small.save(target, optimize=True)
    return target.stat().st_size


if __name__ == "__main__":
    sys.exit(main())
