"""What a training run reports: the epoch log, the full-size evaluation and ``metrics.json``."""

from __future__ import annotations

import collections
import csv
import json
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from ..inference.evaluation import confusion_matrix, scores_from_confusion
from ..inference.loading import load_model
from ..inference.tiled import (
    fixed_input_size,
    keras_predictor,
    labels_from_probabilities,
    predict_images,
)
from .checkpoint import read_checkpoint_state
from .config import TrainConfig, evaluation_tiles
from .data import DataSplit, load_data
from .folder import (
    atomic_write,
    atomic_write_text,
)


def write_log(path: Path, history: Sequence[dict]) -> None:
    """Write the per-epoch history as CSV (rewritten whole, atomically, from the checkpointed history)."""
    keys: list[str] = []
    for row in history:
        keys += [key for key in row if key not in keys]

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)

    atomic_write(path, write)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


def evaluate_model(model: keras.Model, source, n_classes: int, *, tile_size, overlap: int, batch_size: int = 4,
                   class_names: Sequence[str] | None = None, keep: int = 0):
    """Score ``model`` on every sample of ``source`` at full size (tiled, blended).

    Args:
        model: a segmentation model.
        source: samples with masks (``ArraySource``, ``SegmentationFolder``).
        n_classes: number of classes (2 for a one-channel sigmoid model).
        tile_size, overlap, batch_size: see :func:`~universal_models.inference.tiled.predict_tiled`.
        class_names: names for the report.
        keep: also return the first ``keep`` ``(image, truth, prediction)``
            triples (for plots).

    Returns:
        ``(scores, kept)``: :func:`~universal_models.inference.evaluation.scores_from_confusion`
        of all pixels, plus ``n_images``; and the kept samples.
    """
    predictor = keras_predictor(model)
    any_size = not all(fixed_input_size(model))
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    kept = []
    samples = collections.deque()  # (image, truth) of the images in flight

    def images():
        for index in range(len(source)):
            samples.append(source.load(index))
            yield samples[-1][0]

    predictions = predict_images(predictor, images(), tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                                 fit_to_image=any_size)  # tiles of consecutive images share model calls
    for probabilities in predictions:
        image, truth = samples.popleft()
        prediction = labels_from_probabilities(probabilities)
        matrix += confusion_matrix(truth, prediction, n_classes)
        if len(kept) < keep:
            kept.append((image, truth, prediction))
    scores = scores_from_confusion(matrix, class_names)
    scores["n_images"] = len(source)
    return scores, kept


def finish_run(folder: Path, config: TrainConfig, data: DataSplit | None = None) -> dict:
    """Curves, prediction overlays and ``metrics.json`` of a finished (or stopped) run."""
    from .plotting import plot_history, plot_predictions

    data = data or load_data(config)
    state = read_checkpoint_state(folder / "last.keras") or {"history": []}
    if state["history"]:
        plot_history(state["history"], folder / "curves.png")
    checkpoint = folder / ("best.keras" if (folder / "best.keras").exists() else "last.keras")
    model = load_model(checkpoint)
    tile, overlap = evaluation_tiles(config)
    if all(fixed_input_size(model)):  # models built for one size (recurrent ones) get tiles of that size
        tile = fixed_input_size(model)
        overlap = min(overlap, min(tile) // 2)
    n_classes = max(data.n_classes, 2)
    scores, kept = evaluate_model(model, data.validation, n_classes, tile_size=tile, overlap=overlap,
                                  batch_size=config.batch_size, class_names=data.class_names[:n_classes], keep=4)
    best = read_checkpoint_state(checkpoint) or {}
    metrics = {"model": config.model, "data": config.data, "checkpoint": checkpoint.name,
               "epoch": best.get("epoch"), "monitor": config.monitor, "backend": keras.config.backend(),
               "tile_size": list(tile), "overlap": overlap, **scores}
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2, default=_json_default))
    if kept:
        if data.sequence:  # show the last frame of each sequence
            kept = [(image[-1], truth[-1], prediction[-1]) for image, truth, prediction in kept]
        names = [str(data.validation.name(i)) for i in range(len(kept))]
        plot_predictions(*zip(*kept), folder / "predictions.png", titles=names)
    return metrics
