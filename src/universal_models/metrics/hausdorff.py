"""Hausdorff distance between predicted and true masks, for evaluation (numpy only)."""

from __future__ import annotations

import numpy as np

#: Elements of the temporary array of one block of the distance transform.
_BLOCK_ELEMENTS = 1 << 22


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the image border counts as outside).

    The boundary used by MONAI's and medpy's surface distances: ``mask`` minus
    its erosion by a 3x3 cross. Works on ``(..., height, width)``.

    Example:
        >>> mask_boundary(np.ones((3, 3), bool)).astype(int)
        array([[1, 1, 1],
               [1, 0, 1],
               [1, 1, 1]])
    """
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, [(0, 0)] * (mask.ndim - 2) + [(1, 1), (1, 1)], constant_values=False)
    interior = (
        padded[..., 1:-1, 1:-1] & padded[..., :-2, 1:-1] & padded[..., 2:, 1:-1]
        & padded[..., 1:-1, :-2] & padded[..., 1:-1, 2:]
    )
    return mask & ~interior


def _lower_envelope(values: np.ndarray) -> np.ndarray:
    """``out[r, p] = min_q values[r, q] + (p - q)^2`` for a ``(rows, n)`` array, in blocks of rows."""
    size = values.shape[-1]
    positions = np.arange(size, dtype="float64")
    cost = (positions[:, None] - positions[None, :]) ** 2
    block = max(1, _BLOCK_ELEMENTS // max(size * size, 1))
    out = np.empty_like(values)
    for start in range(0, values.shape[0], block):
        out[start : start + block] = np.min(values[start : start + block, None, :] + cost, axis=-1)
    return out


def distance_to(targets: np.ndarray) -> np.ndarray:
    """Euclidean distance of every pixel of a 2-D image to the nearest ``True`` of ``targets``.

    Exact (separable squared distance transform, Felzenszwalb & Huttenlocher
    2012); ``inf`` everywhere if ``targets`` is empty.

    Example:
        >>> distance_to(np.array([[True, False, False]]))
        array([[0., 1., 2.]])
    """
    targets = np.asarray(targets, dtype=bool)
    squared = np.where(targets, 0.0, np.inf)
    squared = _lower_envelope(squared)
    squared = _lower_envelope(squared.T).T
    return np.sqrt(squared)


def _hausdorff_2d(predicted: np.ndarray, truth: np.ndarray, percentile: float) -> float:
    predicted_edge, true_edge = mask_boundary(predicted), mask_boundary(truth)
    if not predicted_edge.any() and not true_edge.any():
        return 0.0
    if not predicted_edge.any() or not true_edge.any():
        return float("inf")
    forward = distance_to(true_edge)[predicted_edge]
    backward = distance_to(predicted_edge)[true_edge]
    if percentile == 100.0:
        return float(max(forward.max(), backward.max()))
    return float(max(np.percentile(forward, percentile), np.percentile(backward, percentile)))


def hausdorff_distance(predicted, truth, percentile: float = 100.0):
    """Hausdorff distance (HD, or HD95 with ``percentile=95``) between mask boundaries, in pixels.

    Follows MONAI's ``compute_hausdorff_distance``: the boundaries of both
    masks (:func:`mask_boundary`), the distance of every boundary pixel of one
    to the nearest boundary pixel of the other, in both directions; HD is the
    largest of these distances, HD95 the larger of the two directed 95th
    percentiles. (medpy's ``hd95`` takes the 95th percentile of both
    directions pooled, which can be a little smaller.) Distances are exact
    Euclidean distances between pixel centres.

    Args:
        predicted: predicted mask(s), ``(height, width)`` or
            ``(..., height, width)``; non-zero means inside. Threshold
            probabilities (or take ``labels == c`` per class) first.
        truth: true mask(s) of the same shape.
        percentile: 100 for HD, 95 for HD95 (any value in (0, 100]).

    Returns:
        A float for one image, else an array of shape ``(...)``, one distance
        per image: 0 when both masks are empty, ``inf`` when exactly one is.

    Raises:
        ValueError: if the shapes differ, the masks are not at least 2-D, or
            ``percentile`` is outside (0, 100].

    Example:
        >>> truth = np.zeros((8, 8), bool); truth[2:5, 2:5] = True
        >>> predicted = np.zeros((8, 8), bool); predicted[2:5, 2:7] = True
        >>> hausdorff_distance(predicted, truth)
        2.0
    """
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if predicted.shape != truth.shape:
        raise ValueError(
            f"predicted and true masks must have the same shape, got {predicted.shape} and {truth.shape}"
        )
    if predicted.ndim < 2:
        raise ValueError(f"masks must be (height, width) or (..., height, width), got shape {predicted.shape}")
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100] (100 for HD, 95 for HD95), got {percentile!r}")
    height, width = predicted.shape[-2:]
    pairs = zip(predicted.reshape(-1, height, width) != 0, truth.reshape(-1, height, width) != 0)
    distances = np.array([_hausdorff_2d(p, t, float(percentile)) for p, t in pairs], dtype="float64")
    if predicted.ndim == 2:
        return float(distances[0])
    return distances.reshape(predicted.shape[:-2])


__all__ = ["distance_to", "hausdorff_distance", "mask_boundary"]
