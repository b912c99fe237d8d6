"""Compare every loss and metric of the library with independent reference implementations.

Three kinds of reference, on random inputs (logits N(0, 2), random labels,
20% ignored pixels where the configuration ignores) in every configuration of
the input convention (binary and multi-class; labels, labels with a channel
axis, one-hot; probabilities and logits; pooled and per image; ignored pixels;
class weights; images and sequences; a class absent from the batch):

* ``tests/losses/reference.py``: float64 numpy written from the papers, no
  code shared with the library (loops over images and classes, ignored pixels
  removed rather than masked, Lovász with numpy sorting, distance maps with
  scipy);
* Keras' own built-ins where their conventions match ours (cross-entropies,
  focal cross-entropies, Dice, Tversky, MeanIoU);
* scipy for distance transforms and Hausdorff distances.

MONAI and segmentation_models_pytorch are not dependencies; MONAI's published
test values are reproduced in ``tests/losses/test_values.py`` and listed here.

It lives beside the references it runs and is not collected by pytest (no ``test_`` prefix).
Usage, from the repository root (one backend per process; prints a Markdown table; about a minute
per backend with ``--seeds 5``)::

    KERAS_BACKEND=torch python -m tests.losses.reference_table --seeds 5 --save torch.json
    python -m tests.losses.reference_table --merge torch.json jax.json tensorflow.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import keras
import numpy as np
from scipy import ndimage
from scipy.spatial.distance import directed_hausdorff

import universal_models  # noqa: F401  (chooses the backend)
from universal_models import losses as L
from universal_models import metrics as M

from . import reference as R
from .cases import CONFIGURATIONS, LOSS_PAIRS, applicable, make_case

Row = dict  # name, reference, cases, max_abs, max_rel


def _row(name: str, reference: str, pairs: list[tuple[float, float]]) -> Row:
    ours, theirs = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    absolute = np.abs(ours - theirs)
    relative = absolute / np.maximum(np.abs(theirs), 1e-12)
    return {"name": name, "reference": reference, "cases": len(pairs),
            "max_abs": float(absolute.max()), "max_rel": float(relative.max())}


def against_paper_references(seeds: int) -> list[Row]:
    rows = []
    for pair in LOSS_PAIRS:
        values = []
        for index, configuration in enumerate(CONFIGURATIONS):
            if not applicable(pair, configuration):
                continue
            for seed in range(seeds):
                case = make_case(configuration, seed=1000 * seed + index)
                values.append((pair.library_value(case), pair.reference_value(case)))
        rows.append(_row(pair.name, "numpy (paper)", values))
    for kind, make in (("iou", lambda **o: M.IoU(**o)), ("dice", lambda **o: M.DiceCoefficient(**o)),
                       ("fbeta", lambda **o: M.FBeta(beta=2.0, **o)), ("accuracy", lambda **o: M.PixelAccuracy(**o))):
        values = []
        for index, configuration in enumerate(CONFIGURATIONS):
            for seed in range(seeds):
                case = make_case(configuration, seed=1000 * seed + index)
                weights = case.options.get("class_weights")
                metric = make(from_logits=case.configuration.from_logits, ignore_index=case.configuration.ignore_index,
                              class_weights=weights)
                metric.update_state(case.y_true, case.y_pred)
                prepared = case.reference_inputs()
                expected = (R.pixel_accuracy(prepared, weights) if kind == "accuracy"
                            else R.region_metric(prepared, kind, beta=2.0, weights=weights))
                values.append((float(metric.result()), expected))
        rows.append(_row(f"metric {kind}", "numpy", values))
    return rows


def _mean(values) -> float:
    return float(np.mean(keras.ops.convert_to_numpy(values)))


def against_keras(seeds: int) -> list[Row]:
    collected: dict[tuple[str, str], list] = {}

    def add(name, reference, ours, theirs):
        collected.setdefault((name, reference), []).append((float(ours), float(theirs)))

    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        logits = rng.normal(0, 2, (2, 8, 9, 3)).astype("float32")
        probabilities = R.softmax(logits).astype("float32")
        labels = rng.integers(0, 3, (2, 8, 9))
        one_hot = np.eye(3, dtype="float32")[labels]
        binary_logits, mask = logits[..., :1], (labels[..., None] == 1).astype("float32")
        binary = R.sigmoid(binary_logits).astype("float32")
        add("cross_entropy", "keras categorical_crossentropy", L.CrossEntropyLoss(from_logits=True)(labels, logits),
            _mean(keras.losses.categorical_crossentropy(one_hot, logits, from_logits=True)))
        add("cross_entropy", "keras sparse_categorical_crossentropy",
            L.CrossEntropyLoss(from_logits=True)(labels, logits),
            _mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)))
        add("cross_entropy", "keras binary_crossentropy", L.CrossEntropyLoss(from_logits=True)(mask, binary_logits),
            _mean(keras.losses.binary_crossentropy(mask, binary_logits, from_logits=True)))
        add("focal", "keras categorical_focal_crossentropy", L.FocalLoss(alpha=0.25)(labels, probabilities),
            _mean(keras.losses.categorical_focal_crossentropy(one_hot, probabilities, alpha=0.25)))
        add("focal", "keras binary_focal_crossentropy", L.FocalLoss(alpha=0.25)(mask, binary),
            _mean(keras.losses.binary_focal_crossentropy(mask, binary, apply_class_balancing=True, alpha=0.25)))
        add("dice (common, smooth 0)", "keras Dice", L.DiceLoss(squared=False, smooth=0)(mask, binary),
            keras.losses.Dice()(mask, binary))
        # keras' tversky() puts alpha on false negatives (its docstring says false positives): swapped here
        add("tversky (smooth 0)", "keras Tversky, alpha/beta swapped",
            L.TverskyLoss(alpha=0.3, beta=0.7, smooth=0)(mask, binary),
            keras.losses.Tversky(alpha=0.7, beta=0.3)(mask, binary))
        ours, theirs = M.IoU(), keras.metrics.MeanIoU(num_classes=3)
        ours.update_state(labels, probabilities)
        theirs.update_state(labels, probabilities.argmax(-1))
        add("metric iou", "keras MeanIoU", ours.result(), theirs.result())
    return [_row(name, reference, values) for (name, reference), values in collected.items()]


def against_scipy(seeds: int) -> list[Row]:
    from universal_models.losses import _functional as F

    transform, hausdorff, hausdorff95 = [], [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        masks = rng.random((4, 17, 23)) < 0.7
        ours = keras.ops.convert_to_numpy(F.squared_distance_transform(masks.astype("float32")))
        for mask, result in zip(masks, ours):
            expected = ndimage.distance_transform_edt(mask) ** 2
            transform.append((float(np.abs(result - expected).max()), 0.0))
        predicted, truth = (ndimage.binary_opening(rng.random((31, 29)) < 0.5) for _ in range(2))
        edges = [np.argwhere(M.mask_boundary(m)) for m in (predicted, truth)]
        expected = max(directed_hausdorff(edges[0], edges[1])[0], directed_hausdorff(edges[1], edges[0])[0])
        hausdorff.append((M.hausdorff_distance(predicted, truth), expected))
        hausdorff95.append((M.hausdorff_distance(predicted, truth, percentile=95), R.hausdorff(predicted, truth, 95)))
    return [
        _row("squared distance transform (largest error per map)", "scipy distance_transform_edt", transform),
        _row("hausdorff_distance HD", "scipy directed_hausdorff", hausdorff),
        _row("hausdorff_distance HD95", "scipy EDT + numpy percentile", hausdorff95),
    ]


PUBLISHED = [
    ("DiceLoss(squared=False, smooth=1e-5, from_logits=True)", L.DiceLoss(squared=False, from_logits=True), 0.307576),
    ("DiceLoss(squared=True, smooth=1e-5, from_logits=True)", L.DiceLoss(squared=True, from_logits=True), 0.178337),
    ("TverskyLoss(alpha=0.3, beta=0.7, from_logits=True)", L.TverskyLoss(alpha=0.3, beta=0.7, from_logits=True),
     0.3589),
]


def published_values() -> list[tuple[str, float, float]]:
    logits = np.array([[[[1.0], [-1.0]], [[-1.0], [1.0]]]], dtype="float32")
    truth = np.array([[[[1.0], [0.0]], [[1.0], [1.0]]]], dtype="float32")
    return [(name, published, float(loss(truth, logits))) for name, loss, published in PUBLISHED]


def markdown(results: dict[str, dict]) -> str:
    backends = list(results)
    header = "| compared | reference | cases | " + " | ".join(f"max abs diff ({b})" for b in backends) + " |"
    lines = [header, "|" + "---|" * (3 + len(backends))]
    first = results[backends[0]]
    for index, row in enumerate(first["rows"]):
        cells = [f"{results[b]['rows'][index]['max_abs']:.1e}" for b in backends]
        lines.append(f"| {row['name']} | {row['reference']} | {row['cases']} | " + " | ".join(cells) + " |")
    lines += ["", "MONAI's published values (one sigmoid channel, logits [[1, -1], [-1, 1]], truth [[1, 0], [1, 1]]):",
              "", "| loss | published | " + " | ".join(backends) + " |", "|" + "---|" * (2 + len(backends))]
    for index, (name, published, _) in enumerate(first["published"]):
        cells = [f"{results[b]['published'][index][2]:.6f}" for b in backends]
        lines.append(f"| {name} | {published} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="random inputs per configuration (default 5)")
    parser.add_argument("--save", type=Path, help="also write the results as JSON (for --merge)")
    parser.add_argument("--merge", type=Path, nargs="+", help="print one table from several saved runs")
    args = parser.parse_args(argv)
    if args.merge:
        results = {}
        for path in args.merge:
            saved = json.loads(path.read_text())
            results[saved["backend"]] = saved
        print(markdown(results))
        return 0
    start = time.perf_counter()
    rows = against_paper_references(args.seeds) + against_keras(args.seeds) + against_scipy(args.seeds)
    result = {"backend": keras.config.backend(), "keras": keras.__version__, "rows": rows,
              "published": published_values(), "seconds": round(time.perf_counter() - start, 1)}
    if args.save:
        args.save.write_text(json.dumps(result, indent=1))
    print(f"backend {result['backend']}, keras {result['keras']}, {args.seeds} seeds, {result['seconds']} s\n")
    print(markdown({result["backend"]: result}))
    worst = max(row["max_abs"] for row in rows if "transform" not in row["name"] and "hausdorff" not in row["name"])
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
