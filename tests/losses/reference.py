"""Independent numpy references for every loss and metric, written from the papers.

These share no code with ``universal_models.losses``: float64 numpy, explicit
loops over images and classes, ignored pixels *removed* (the library masks
them), Lovász by sorting with numpy, distance maps with
``scipy.ndimage.distance_transform_edt``. They implement the same conventions
(documented in ``docs/losses.md``), so the library must agree with them to
float32 precision. Used by the tests and by ``tests/losses/reference_table.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


def sigmoid(values):
    return 1.0 / (1.0 + np.exp(-values))


def softmax(values):
    exponentials = np.exp(values - values.max(axis=-1, keepdims=True))
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


@dataclass
class Image:
    """One image (or the whole batch pooled), valid pixels only."""

    probabilities: np.ndarray  # (pixels, C)
    truth: np.ndarray  # (pixels, C): one-hot, or the foreground for C == 1
    logits: np.ndarray | None  # (pixels, C) when the inputs were logits


@dataclass
class Prepared:
    probabilities: np.ndarray  # (..., C)
    truth: np.ndarray  # (..., C)
    valid: np.ndarray  # (...) bool
    logits: np.ndarray | None
    channels: int

    @property
    def binary(self) -> bool:
        return self.channels == 1

    def images(self, per_image: bool) -> list[Image]:
        """Valid pixels per image (per frame), or of the whole batch as one."""
        channels = self.channels
        if per_image:
            height, width = self.valid.shape[-2:] if self.valid.ndim >= 3 else (self.valid.shape[-1], 1)
            shape = (-1, height * width)
        else:
            shape = (1, -1)
        probabilities = self.probabilities.reshape(shape + (channels,))
        truth = self.truth.reshape(shape + (channels,))
        valid = self.valid.reshape(shape)
        logits = None if self.logits is None else self.logits.reshape(shape + (channels,))
        return [
            Image(probabilities[i][valid[i]], truth[i][valid[i]], None if logits is None else logits[i][valid[i]])
            for i in range(valid.shape[0])
        ]


def prepare(y_true, y_pred, from_logits=False, ignore_index=None) -> Prepared:
    """The library's input convention, reimplemented plainly."""
    y_pred = np.asarray(y_pred, dtype="float64")
    y_true = np.asarray(y_true, dtype="float64")
    channels = y_pred.shape[-1]
    logits = y_pred if from_logits else None
    if from_logits:
        probabilities = sigmoid(y_pred) if channels == 1 else softmax(y_pred)
    else:
        probabilities = y_pred
    if y_true.shape == y_pred.shape and channels > 1:
        valid = np.ones(y_true.shape[:-1], bool)
        if ignore_index is not None:
            valid = y_true[..., ignore_index] == 0
        return Prepared(probabilities, y_true * valid[..., None], valid, logits, channels)  # ignored: no truth
    labels = y_true[..., 0] if y_true.ndim == y_pred.ndim else y_true
    valid = np.ones(labels.shape, bool) if ignore_index is None else labels != ignore_index
    if channels == 1:
        truth = np.where(valid, labels, 0.0)[..., None]
    else:
        truth = (labels[..., None] == np.arange(channels)).astype("float64")
    return Prepared(probabilities, truth, valid, logits, channels)


def class_weights(prepared: Prepared, weights) -> np.ndarray:
    count = max(prepared.channels, 2)
    weights = np.full(count, 1.0) if weights is None else np.asarray(weights, dtype="float64")
    return weights / weights.sum()


def region_weights(prepared: Prepared, weights) -> np.ndarray:
    return np.ones(1) if prepared.binary else class_weights(prepared, weights)


def ratio(numerator, denominator, smooth=0.0, empty=1.0):
    return empty if denominator + smooth == 0 else (numerator + smooth) / (denominator + smooth)


def _mean_over_images(function, prepared: Prepared, per_image: bool) -> float:
    return float(np.mean([function(image) for image in prepared.images(per_image)]))


# ----------------------------------------------------------------------------------------------- pixel-wise
def focal(prepared: Prepared, gamma=2.0, alpha=None, weights=None, per_image=False) -> float:
    """Lin et al. 2017, eq. 5; gamma=0 and alpha=None is the cross-entropy."""
    weights = class_weights(prepared, weights)

    def one(image: Image) -> float:
        total, weight_sum = 0.0, 0.0
        for p, g in zip(image.probabilities, image.truth):
            if prepared.binary:
                terms = [(1 - g[0], 1 - p[0], 0), (g[0], p[0], 1)]  # (target, probability, class)
            else:
                terms = [(g[c], p[c], c) for c in range(prepared.channels)]
            loss, pixel_weight = 0.0, 0.0
            for target, probability, cls in terms:
                balance = 1.0 if alpha is None else (alpha if cls == 1 else 1 - alpha) if prepared.binary else alpha
                log_p = np.log(max(probability, 1e-7))
                loss -= target * balance * (1 - probability) ** gamma * log_p
                pixel_weight += target * weights[cls]
            total += pixel_weight * loss
            weight_sum += pixel_weight
        return total / weight_sum if weight_sum > 0 else 0.0

    return _mean_over_images(one, prepared, per_image)


def cross_entropy(prepared: Prepared, weights=None, per_image=False) -> float:
    return focal(prepared, gamma=0.0, alpha=None, weights=weights, per_image=per_image)


# ----------------------------------------------------------------------------------------------- region
def _absent_get_largest(raw: np.ndarray, present: np.ndarray) -> np.ndarray:
    weights = raw.copy()
    fallback = raw[present].max() if present.any() else 1.0
    weights[~present] = fallback
    return weights


def dice(prepared: Prepared, squared=True, smooth=1e-5, weighting=None, weights=None, per_image=False) -> float:
    """V-Net Dice (squared) or the common Dice; optional inverse-square class weighting, pooled."""
    weights = region_weights(prepared, weights)

    def one(image: Image) -> float:
        p, g = image.probabilities, image.truth
        power = 2 if squared else 1
        intersections = (p * g).sum(axis=0)
        denominators = (p**power).sum(axis=0) + (g**power).sum(axis=0)
        if weighting is None:
            return sum(w * (1 - ratio(2 * i, d, smooth)) for w, i, d in zip(weights, intersections, denominators))
        volume = (g**2).sum(axis=0)
        present = volume > 0
        raw = np.where(present, 1.0 / (np.where(present, volume, 1) + 1e-7), 0.0)
        pooled = _absent_get_largest(raw, present) * weights
        return 1 - ratio(2 * (pooled * intersections).sum(), (pooled * denominators).sum(), smooth)

    return _mean_over_images(one, prepared, per_image)


def generalized_dice(prepared: Prepared, smooth=1e-5, weights=None, per_image=False) -> float:
    """Sudre et al. 2017, eq. 2."""
    weights = region_weights(prepared, weights)

    def one(image: Image) -> float:
        p, g = image.probabilities, image.truth
        volume = g.sum(axis=0)
        present = volume > 0
        raw = np.where(present, 1.0 / np.where(present, volume, 1) ** 2, 0.0)
        pooled = _absent_get_largest(raw, present) * weights
        numerator = 2 * (pooled * (p * g).sum(axis=0)).sum()
        denominator = (pooled * (p.sum(axis=0) + volume)).sum()
        return 1 - ratio(numerator, denominator, smooth)

    return _mean_over_images(one, prepared, per_image)


def soft_counts(image: Image, classes: int):
    """Soft true positives, false positives, false negatives of each scored class."""
    for c in range(classes):
        p, g = image.probabilities[:, c], image.truth[:, c]
        yield (p * g).sum(), (p * (1 - g)).sum(), ((1 - p) * g).sum()


def tversky(prepared: Prepared, alpha=0.5, beta=0.5, gamma=1.0, smooth=1e-5, weights=None, per_image=False):
    """Salehi et al. 2017 (alpha on false positives); gamma != 1: Abraham & Khan 2019, exponent 1/gamma."""
    weights = region_weights(prepared, weights)

    def one(image: Image) -> float:
        return sum(w * (1 - ratio(tp, tp + alpha * fp + beta * fn, smooth)) ** (1.0 / gamma)
                   for w, (tp, fp, fn) in zip(weights, soft_counts(image, len(weights))))

    return _mean_over_images(one, prepared, per_image)


def fbeta(prepared: Prepared, beta=1.0, smooth=1e-5, weights=None, per_image=False) -> float:
    weights = region_weights(prepared, weights)

    def one(image: Image) -> float:
        return sum(w * (1 - ratio((1 + beta**2) * tp, (1 + beta**2) * tp + beta**2 * fn + fp, smooth))
                   for w, (tp, fp, fn) in zip(weights, soft_counts(image, len(weights))))

    return _mean_over_images(one, prepared, per_image)


# ----------------------------------------------------------------------------------------------- Lovász
def lovasz_grad(truth_sorted: np.ndarray) -> np.ndarray:
    """Berman et al. 2018, Algorithm 1 (gradient of the Lovász extension of the Jaccard loss)."""
    total = truth_sorted.sum()
    intersection = total - np.cumsum(truth_sorted)
    union = total + np.cumsum(1 - truth_sorted)
    jaccard = 1 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def _lovasz_flat(errors: np.ndarray, truth: np.ndarray) -> float:
    if errors.size == 0:
        return 0.0
    order = np.argsort(-errors, kind="stable")
    return float(np.dot(errors[order], lovasz_grad(truth[order])))


def lovasz_softmax(prepared: Prepared, weights=None, per_image=False) -> float:
    weights = region_weights(prepared, weights)

    def one(image: Image) -> float:
        if prepared.binary:
            return _lovasz_flat(np.abs(image.truth[:, 0] - image.probabilities[:, 0]), image.truth[:, 0])
        losses, used = [], []
        for c, w in enumerate(weights):
            g = image.truth[:, c]
            if g.sum() == 0:
                continue  # classes="present"
            losses.append(_lovasz_flat(np.abs(g - image.probabilities[:, c]), g))
            used.append(w)
        return float(np.dot(losses, used) / np.sum(used)) if used and np.sum(used) > 0 else 0.0

    return _mean_over_images(one, prepared, per_image)


def lovasz_hinge(prepared: Prepared, per_image=False) -> float:
    def one(image: Image) -> float:
        g = image.truth[:, 0]
        if image.logits is not None:
            logits = image.logits[:, 0]
        else:
            p = np.clip(image.probabilities[:, 0], 1e-7, 1 - 1e-7)
            logits = np.log(p) - np.log(1 - p)
        errors = np.maximum(1 - logits * (2 * g - 1), 0.0)
        return _lovasz_flat(errors, g)

    return _mean_over_images(one, prepared, per_image)


# ----------------------------------------------------------------------------------------------- Hausdorff
def distance_field(mask: np.ndarray) -> np.ndarray:
    """Distance to the mask boundary from both sides, 0 for a mask with no boundary (MONAI)."""
    mask = mask.astype(bool)
    if not mask.any() or mask.all():
        return np.zeros(mask.shape)
    return ndimage.distance_transform_edt(mask) + ndimage.distance_transform_edt(~mask)


def hausdorff_dt(prepared: Prepared, alpha=2.0, weights=None, per_image=False) -> float:
    """Karimi & Salcudean 2019, eq. 8, per class, mean over valid pixels."""
    weights = region_weights(prepared, weights)
    probabilities, truth, valid = prepared.probabilities, prepared.truth, prepared.valid
    height, width = valid.shape[-2:]
    probabilities = probabilities.reshape((-1, height, width, prepared.channels))
    truth = truth.reshape((-1, height, width, prepared.channels))
    valid = valid.reshape((-1, height, width))
    errors = np.zeros(probabilities.shape)
    for image in range(probabilities.shape[0]):
        for c in range(prepared.channels):
            p, g = probabilities[image, ..., c], truth[image, ..., c]
            distance = distance_field(g > 0.5) ** alpha + distance_field(p > 0.5) ** alpha
            errors[image, ..., c] = (p - g) ** 2 * distance
    groups = [[i] for i in range(errors.shape[0])] if per_image else [list(range(errors.shape[0]))]
    results = []
    for group in groups:
        pixels = errors[group][valid[group]]  # (valid pixels, C)
        means = pixels.mean(axis=0) if len(pixels) else np.zeros(prepared.channels)
        results.append(float(np.dot(weights, means)))
    return float(np.mean(results))


# ----------------------------------------------------------------------------------------------- metrics
def confusion(prepared: Prepared, threshold=0.5):
    """Per-class true positives, false positives, false negatives of hard predictions (valid pixels)."""
    if prepared.binary:
        predicted = (prepared.probabilities[..., 0] > threshold).astype(int)
        truth = (prepared.truth[..., 0] >= 0.5).astype(int)
        classes = 2
    else:
        predicted = prepared.probabilities.argmax(axis=-1)
        truth = prepared.truth.argmax(axis=-1)
        classes = prepared.channels
    predicted, truth = predicted[prepared.valid], truth[prepared.valid]
    counts = np.zeros((3, classes))
    for c in range(classes):
        counts[0, c] = np.sum((predicted == c) & (truth == c))
        counts[1, c] = np.sum((predicted == c) & (truth != c))
        counts[2, c] = np.sum((predicted != c) & (truth == c))
    return counts


def region_metric(prepared: Prepared, kind: str, beta=1.0, weights=None) -> float:
    """Mean over occurring classes of IoU / Dice / F-beta from pooled counts (1 when none occurs)."""
    tp, fp, fn = confusion(prepared)
    if prepared.binary:
        tp, fp, fn, weights = tp[1:], fp[1:], fn[1:], np.ones(1)
    else:
        weights = class_weights(prepared, weights)
    if kind == "iou":
        scores = [ratio(t, t + p + n) for t, p, n in zip(tp, fp, fn)]
    elif kind == "dice":
        scores = [ratio(2 * t, 2 * t + p + n) for t, p, n in zip(tp, fp, fn)]
    else:
        scores = [ratio((1 + beta**2) * t, (1 + beta**2) * t + beta**2 * n + p) for t, p, n in zip(tp, fp, fn)]
    present = (tp + fp + fn) > 0
    if not present.any():
        return 1.0
    return float(np.dot(weights[present], np.asarray(scores)[present]) / weights[present].sum())


def pixel_accuracy(prepared: Prepared, weights=None) -> float:
    tp, _, fn = confusion(prepared)
    weights = class_weights(prepared, weights)
    return ratio(np.dot(weights, tp), np.dot(weights, tp + fn))


def hausdorff(predicted: np.ndarray, truth: np.ndarray, percentile=100.0) -> float:
    """Boundary Hausdorff distance with scipy (erosion by a cross, EDT to the other boundary)."""
    structure = ndimage.generate_binary_structure(2, 1)
    edges = [mask & ~ndimage.binary_erosion(mask, structure, border_value=0) for mask in (predicted, truth)]
    if not edges[0].any() and not edges[1].any():
        return 0.0
    if not edges[0].any() or not edges[1].any():
        return float("inf")
    forward = ndimage.distance_transform_edt(~edges[1])[edges[0]]
    backward = ndimage.distance_transform_edt(~edges[0])[edges[1]]
    return float(max(np.percentile(forward, percentile), np.percentile(backward, percentile)))
