"""Segmentation scores from a confusion matrix (numpy; for reports, not training).

The confusion matrix is accumulated image by image, so a folder of any size is
scored in bounded memory; Dice and IoU per class, their means and the pixel
accuracy all follow from it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def confusion_matrix(truth: np.ndarray, prediction: np.ndarray, n_classes: int) -> np.ndarray:
    """Pixel counts ``matrix[true class, predicted class]``.

    Args:
        truth: integer labels, any shape.
        prediction: integer labels of the same shape.
        n_classes: number of classes.

    Returns:
        ``int64 (n_classes, n_classes)``.

    Raises:
        ValueError: shapes differ, or a label lies outside ``[0, n_classes)``.

    Example:
        >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).tolist()
        [[1, 0], [1, 1]]
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.shape != prediction.shape:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} must have the same shape.")
    for name, labels in (("truth", truth), ("prediction", prediction)):
        if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
            raise ValueError(
                f"{name} has labels in [{labels.min()}, {labels.max()}], outside [0, {n_classes}) for "
                f"n_classes={n_classes}."
            )
    flat = truth.astype(np.int64).ravel() * n_classes + prediction.astype(np.int64).ravel()
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.maximum(denominator, 1), np.nan)


def scores_from_confusion(matrix: np.ndarray, class_names: Sequence[str] | None = None) -> dict:
    """Pixel accuracy, IoU and Dice per class and their means.

    A class that is absent from both truth and prediction has no IoU or Dice
    (``None`` in the result) and does not count in the means.

    Args:
        matrix: ``(n_classes, n_classes)`` counts, rows = truth.
        class_names: a name per class (default ``"0"``, ``"1"`` ...).

    Returns:
        A JSON-ready dict: ``pixel_accuracy``, ``mean_iou``, ``mean_dice``,
        ``mean_iou_foreground`` (classes 1..), ``per_class`` (list of dicts
        with ``class``, ``name``, ``iou``, ``dice``, ``precision``, ``recall``,
        ``pixels``) and ``confusion_matrix``.

    Example:
        >>> scores = scores_from_confusion(np.array([[8, 2], [0, 10]]))
        >>> round(scores["pixel_accuracy"], 2), round(scores["per_class"][1]["iou"], 3)
        (0.9, 0.833)
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    n_classes = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names for {n_classes} classes.")
    true_positive = np.diag(matrix).astype(np.float64)
    truth_total = matrix.sum(axis=1).astype(np.float64)
    predicted_total = matrix.sum(axis=0).astype(np.float64)
    iou = _ratio(true_positive, truth_total + predicted_total - true_positive)
    dice = _ratio(2 * true_positive, truth_total + predicted_total)
    precision = _ratio(true_positive, predicted_total)
    recall = _ratio(true_positive, truth_total)

    def clean(value):
        return None if np.isnan(value) else float(value)

    def mean(values):
        values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else None

    total = matrix.sum()
    return {
        "pixel_accuracy": float(true_positive.sum() / total) if total else None,
        "mean_iou": mean(iou),
        "mean_dice": mean(dice),
        "mean_iou_foreground": mean(iou[1:]) if n_classes > 1 else None,
        "per_class": [
            {"class": index, "name": names[index], "iou": clean(iou[index]), "dice": clean(dice[index]),
             "precision": clean(precision[index]), "recall": clean(recall[index]),
             "pixels": int(truth_total[index])}
            for index in range(n_classes)
        ],
        "confusion_matrix": matrix.tolist(),
    }
