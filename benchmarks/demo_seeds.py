"""`umodels demo` (its recipe, `universal_models.cli.DEMO_SETTINGS`) over several seeds.

Runs the demo itself once per seed, as `umodels demo --seed N` does, and prints one Markdown
row per seed: final full-size validation mean IoU, IoU per class, the training seconds (the
epochs' own times from the run's log, validation included, start-up and the final scoring
not) and the load average before and after the run. The demo's goal (docs/demo.md) is mean
IoU >= 0.90 on every seed within 2 minutes of training on 2 CPU cores.

    KERAS_BACKEND=torch python benchmarks/demo_seeds.py --seeds 0 1 2
    KERAS_BACKEND=torch python benchmarks/demo_seeds.py --seeds 0 --pictures   # also docs/images/demo_*.png

``--pictures`` writes the first seed's prediction overlays and training curves, shrunk to
small palette PNGs, as docs/images/demo_predictions.png and docs/images/demo_curves.png
(the pictures in the README). ``--runner keras`` runs every GraphModel through Keras' own
``Functional.call`` (the library before GraphModel), to compare the two runners' results.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

#: Width in pixels of the committed pictures (the demo draws them 900 px wide).
PICTURE_WIDTH = {"predictions.png": 400, "curves.png": 720}


def shrink_picture(source: str, target: str, width: int, colours: int = 256) -> int:
    """Resize ``source`` to ``width`` pixels and save it as a palette PNG; returns its size in bytes."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("RGB")
        height = round(image.height * width / image.width)
        small = image.resize((width, height), Image.LANCZOS)
        small = small.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        small.save(target, optimize=True)
    return os.path.getsize(target)


def training_seconds(run: str) -> float:
    with open(os.path.join(run, "log.csv"), encoding="utf-8") as handle:
        return sum(float(row["time"]) for row in csv.DictReader(handle))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", choices=["plan", "keras"], default="plan")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--pictures", action="store_true",
                        help="write the first seed's pictures to docs/images/demo_predictions.png and "
                             "demo_curves.png")
    args = parser.parse_args(argv)
    from keras.src.models.functional import Functional

    from universal_models.cli import main as umodels
    from universal_models.runtime.graph import GraphModel

    if args.runner == "keras":
        GraphModel.call = lambda self, inputs, training=None, mask=None, **kwargs: Functional.call(
            self, inputs, training=training, mask=mask, **kwargs)
    print(common.machine_line())
    rows = []
    for index, seed in enumerate(args.seeds):
        output = os.path.join(tempfile.mkdtemp(), "demo")
        load_before = os.getloadavg()[0]
        umodels(["demo", "--output", output, "--seed", str(seed), "--verbose", "2"])
        with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
            metrics = json.load(handle)
        rows.append([args.runner, seed, f"{metrics['mean_iou']:.4f}",
                     " / ".join(f"{item['iou']:.3f}" for item in metrics["per_class"]),
                     f"{training_seconds(output):.0f}", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}"])
        if args.pictures and index == 0:
            for name, width in PICTURE_WIDTH.items():
                target = os.path.join(ROOT, "docs", "images", f"demo_{name}")
                size = shrink_picture(os.path.join(output, name), target, width)
                print(f"wrote {target} ({size / 1024:.0f} KB)")
    header = ["runner", "seed", "mean IoU", "IoU per class (background / circle / rectangle / triangle)",
              "training s", "load before / after"]
    print(common.markdown_table(header, rows))


if __name__ == "__main__":
    main()
