"""Stateful segmentation metrics from accumulated confusion counts.

Each metric turns predictions into hard labels (argmax of a softmax output, a
threshold on a one-channel output), counts true positives, false positives and
false negatives per class over every ``update_state`` call, and computes its
score from the totals in ``result()``: the same number whether the data came
in one batch or many. With ``per_image=True`` it keeps, instead, the sum of
per-image scores and the number of images in which each class occurs.

Inputs follow the library's one convention (see
:class:`universal_models.losses.SegmentationLoss`): integer or one-hot
targets, ``from_logits``, ``ignore_index``, ``class_weights``, images or
sequences. Classes absent from both truth and prediction (no true positive,
false positive or false negative) are left out of the mean; if no class
occurs at all the score is 1 (nothing was there and nothing was predicted).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from .._validation import check_integer
from ..losses._convention import (
    SegmentationInputs,
    accumulation_dtype,
    reduce_pixels,
    safe_ratio,
    standardize,
    validate_class_weights,
    validate_options,
    weighted_class_mean,
)
from ..losses.base import check_number

#: Values of ``average``.
AVERAGES = ("macro", None)


class ConfusionMetric(keras.metrics.Metric):
    """Base class: accumulate per-class counts, score them in :meth:`result`.

    Subclasses define :meth:`scores` (per-class scores from counts).

    Args:
        n_classes: channels of the prediction (1 for a sigmoid output, as
            ``get_model``'s ``n_classes``). ``None`` reads it from the first
            batch.
        from_logits: ``y_pred`` holds logits. Only matters for the threshold
            of a one-channel output (argmax is the same either way).
        ignore_index: label whose pixels count nowhere (see the losses).
        class_weights: one weight per class (two for a one-channel output:
            background, foreground) for the mean over classes, normalised to
            sum to 1.
        per_image: score every image (every frame of a sequence) on its own
            and average the scores, instead of scoring the pooled counts.
        threshold: a one-channel output predicts foreground where its
            probability exceeds this (0 < threshold < 1).
        average: ``"macro"`` for the (weighted) mean over classes, ``None``
            for a vector of per-class scores (absent classes report 1).
        name, dtype: as in ``keras.metrics.Metric``; for float16 or bfloat16 the counts are kept
            in float32 (half-precision counts stop being exact at 2,048 or 256 pixels) and only the
            result is in ``dtype``.

    Raises:
        ValueError: on bad options; when updated, on inputs that do not fit
            the convention or a channel count other than ``n_classes``.
    """

    #: whether the score is per class (False: one score for all pixels, like accuracy)
    _per_class: bool = True

    def __init__(self, n_classes: int | None = None, *, from_logits: bool = False, ignore_index: int | None = None,
                 class_weights: Sequence[float] | None = None, per_image: bool = False, threshold: float = 0.5,
                 average: str | None = "macro", name: str | None = None, dtype: Any = None):
        super().__init__(name=name, dtype=dtype or "float32")
        validate_options(from_logits=from_logits, ignore_index=ignore_index, per_image=per_image)
        n_classes = check_integer("n_classes", n_classes, allow_none=True,
                                  expected="an integer >= 1 (1 for a sigmoid output) or None")
        if average not in AVERAGES:
            raise ValueError(f"average must be one of {AVERAGES}, got {average!r}")
        threshold = check_number("threshold", threshold, minimum=0.0, maximum=1.0, strict_minimum=True)
        if threshold == 1.0:
            raise ValueError("threshold must be < 1 (no probability exceeds 1)")
        self.n_classes = None if n_classes is None else int(n_classes)
        self.from_logits = bool(from_logits)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.class_weights = validate_class_weights(class_weights)
        self.per_image = bool(per_image)
        self.threshold = threshold
        self.average = average
        self._built = False
        if self.n_classes is not None:
            self._build(self.n_classes)

    # -- state ----------------------------------------------------------------------------------------------
    def _build(self, channels: int) -> None:
        classes = max(channels, 2)
        if self.class_weights is not None and len(self.class_weights) != classes:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} entries but the prediction has {classes} classes "
                f"({'background, foreground' if channels == 1 else 'one per channel'}); give {classes} weights."
            )
        self.n_classes = channels
        scored = self._scored_count(channels)

        def zeros(name, size):
            return self.add_variable(shape=(size,), initializer="zeros", dtype=self._counting_dtype, name=name)

        self.true_positives = zeros("true_positives", classes)
        self.false_positives = zeros("false_positives", classes)
        self.false_negatives = zeros("false_negatives", classes)
        self.score_sum = zeros("score_sum", scored)
        self.image_count = zeros("image_count", scored)
        self._built = True

    def _scored_count(self, channels: int) -> int:
        if not self._per_class:
            return 1
        return 1 if channels == 1 else channels

    def _weights(self) -> np.ndarray:
        classes = max(self.n_classes, 2)
        weights = np.full(classes, 1.0 / classes) if self.class_weights is None else np.asarray(self.class_weights)
        if self._per_class and self.n_classes == 1:
            return np.ones(1, dtype="float32")
        return weights.astype("float32")

    # -- counting -------------------------------------------------------------------------------------------
    def _hard(self, inputs: SegmentationInputs):
        """``(prediction, truth)`` as 0/1 class maps ``(..., max(C, 2))``."""
        if inputs.binary:
            foreground = ops.cast(inputs.probabilities() > self.threshold, self._counting_dtype)
            truth = ops.cast(inputs.target >= 0.5, self._counting_dtype)
            return (ops.concatenate([1.0 - foreground, foreground], axis=-1),
                    ops.concatenate([1.0 - truth, truth], axis=-1))
        classes = ops.arange(inputs.channels, dtype="int32")
        winner = ops.expand_dims(ops.cast(ops.argmax(inputs.y_pred, axis=-1), "int32"), -1)
        return ops.cast(ops.equal(winner, classes), self._counting_dtype), inputs.target

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add a batch. ``sample_weight`` may weigh images ``(batch,)`` or pixels ``(batch, height, width)``."""
        inputs = standardize(y_true, y_pred, from_logits=self.from_logits, ignore_index=self.ignore_index,
                             dtype=self._counting_dtype)
        if not self._built:
            self._build(inputs.channels)
        if inputs.channels != self.n_classes:
            raise ValueError(
                f"{self.name} was built for {self.n_classes} channels but y_pred has {inputs.channels}; "
                "use one metric object per output."
            )
        weights = inputs.valid
        if sample_weight is not None:
            sample_weight = ops.convert_to_tensor(sample_weight, dtype=self._counting_dtype)
            while len(sample_weight.shape) < len(weights.shape):
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        prediction, truth = self._hard(inputs)
        counts = [
            reduce_pixels(weights * prediction * truth, self.per_image),
            reduce_pixels(weights * prediction * (1.0 - truth), self.per_image),
            reduce_pixels(weights * (1.0 - prediction) * truth, self.per_image),
        ]
        counts = [inputs.flag_invalid_labels(count) for count in counts]
        if self.per_image:
            counts = [ops.reshape(count, (-1, count.shape[-1])) for count in counts]
            scores, present = self._scores_and_presence(*counts)
            self.score_sum.assign_add(ops.sum(scores * present, axis=0))
            self.image_count.assign_add(ops.sum(present, axis=0))
            counts = [ops.sum(count, axis=0) for count in counts]
        for variable, count in zip((self.true_positives, self.false_positives, self.false_negatives), counts):
            variable.assign_add(count)

    # -- scoring --------------------------------------------------------------------------------------------
    def scores(self, true_positives, false_positives, false_negatives):
        """Per-class scores from counts (all ``(..., classes)``); 1 where a class is absent."""
        raise NotImplementedError

    def _scores_and_presence(self, true_positives, false_positives, false_negatives):
        """Scores of the scored classes and whether each occurs (both ``(..., scored)``)."""
        if self.n_classes == 1:  # a binary output scores its foreground
            true_positives, false_positives, false_negatives = (
                count[..., 1:] for count in (true_positives, false_positives, false_negatives)
            )
        present = ops.cast(true_positives + false_positives + false_negatives > 0, self._counting_dtype)
        return self.scores(true_positives, false_positives, false_negatives), present

    def _combine(self, scores, present):
        """The result from the scored classes' scores: their weighted mean, or the vector."""
        if self.average is None:
            return scores
        return weighted_class_mean(scores, self._weights(), present, empty_value=1.0)

    def result(self):
        if not self._built:
            return ops.convert_to_tensor(0.0, dtype=self.dtype)
        if self.per_image:
            present = ops.cast(self.image_count > 0, self._counting_dtype)
            scores = safe_ratio(self.score_sum, self.image_count, empty_value=1.0)
        else:
            scores, present = self._scores_and_presence(
                self.true_positives, self.false_positives, self.false_negatives
            )
        # Counts made NaN by labels outside the classes (see the losses' convention) make the result NaN.
        return ops.cast(self._combine(scores, present) + 0.0 * ops.sum(self.true_positives), self.dtype)

    @property
    def _counting_dtype(self) -> str:
        """Counts and scores in float32 also for a half-precision ``dtype`` (float16 counts are exact only
        to 2,048, bfloat16 ones to 256); only :meth:`result` is in ``dtype``."""
        return accumulation_dtype(self.dtype)

    def get_config(self):
        return {
            **super().get_config(),
            "n_classes": self.n_classes,
            "from_logits": self.from_logits,
            "ignore_index": self.ignore_index,
            "class_weights": None if self.class_weights is None else list(self.class_weights),
            "per_image": self.per_image,
            "threshold": self.threshold,
            "average": self.average,
        }


@keras.saving.register_keras_serializable(package="universal_models")
class IoU(ConfusionMetric):
    """Intersection over union (Jaccard index) per class, and their mean.

    ``IoU_c = TP / (TP + FP + FN)`` from counts accumulated over all batches
    (or per image with ``per_image=True``). ``average="macro"`` (default) is
    the mean IoU over the classes that occur, weighted by ``class_weights``;
    ``average=None`` gives the per-class vector. A one-channel output reports
    the foreground IoU. Arguments: see :class:`ConfusionMetric`.

    Example:
        >>> import numpy as np
        >>> metric = IoU()
        >>> metric.update_state(np.array([[[0, 1], [1, 1]]]), np.eye(2)[[[[0, 1], [0, 1]]]])
        >>> round(float(metric.result()), 4)          # background 1/2, foreground 2/3
        0.5833
    """

    def __init__(self, n_classes: int | None = None, *, name: str = "iou", **kwargs):
        super().__init__(n_classes, name=name, **kwargs)

    def scores(self, true_positives, false_positives, false_negatives):
        return safe_ratio(true_positives, true_positives + false_positives + false_negatives)


@keras.saving.register_keras_serializable(package="universal_models")
class DiceCoefficient(ConfusionMetric):
    """Dice coefficient (F1 score) of hard predictions, per class and mean.

    ``D_c = 2 TP / (2 TP + FP + FN)``; averaged like :class:`IoU`. A
    one-channel output reports the foreground Dice. Arguments: see
    :class:`ConfusionMetric`.

    Example:
        >>> model.compile(optimizer="adam", loss="dice_loss", metrics=["dice_coefficient"])  # doctest: +SKIP
    """

    def __init__(self, n_classes: int | None = None, *, name: str = "dice_coefficient", **kwargs):
        super().__init__(n_classes, name=name, **kwargs)

    def scores(self, true_positives, false_positives, false_negatives):
        return safe_ratio(2.0 * true_positives, 2.0 * true_positives + false_positives + false_negatives)


@keras.saving.register_keras_serializable(package="universal_models")
class FBeta(ConfusionMetric):
    """F-beta score of hard predictions, per class and mean.

    ``F_c = (1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)``; ``beta=1`` is the
    Dice coefficient, ``beta > 1`` weighs recall more. Averaged like
    :class:`IoU`.

    Args:
        beta: ``b`` (> 0).
        n_classes, ...: see :class:`ConfusionMetric`.

    Example:
        >>> metric = FBeta(beta=2.0, n_classes=3)
    """

    def __init__(self, n_classes: int | None = None, *, beta: float = 1.0, name: str = "fbeta", **kwargs):
        self.beta = check_number("beta", beta, minimum=0.0, strict_minimum=True)
        super().__init__(n_classes, name=name, **kwargs)

    def scores(self, true_positives, false_positives, false_negatives):
        square = self.beta**2
        weighted = (1.0 + square) * true_positives
        return safe_ratio(weighted, weighted + square * false_negatives + false_positives)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}


@keras.saving.register_keras_serializable(package="universal_models")
class PixelAccuracy(ConfusionMetric):
    """Share of correctly classified pixels (that count).

    ``sum_c w_c TP_c / sum_c w_c (TP_c + FN_c)``: plain accuracy with equal
    ``class_weights`` (the default), balanced accuracy (mean recall) with
    weights ``1 / class frequency``. A one-channel output has two classes,
    background and foreground. Arguments: see :class:`ConfusionMetric`
    (``average`` does not apply).

    Example:
        >>> import numpy as np
        >>> metric = PixelAccuracy(ignore_index=255)
        >>> metric.update_state(np.array([[[0, 1], [255, 1]]]), np.eye(2)[[[[0, 0], [1, 1]]]])
        >>> round(float(metric.result()), 4)          # 2 of the 3 counted pixels
        0.6667
    """

    _per_class = False

    def __init__(self, n_classes: int | None = None, *, name: str = "pixel_accuracy", **kwargs):
        super().__init__(n_classes, name=name, **kwargs)

    def scores(self, true_positives, false_positives, false_negatives):
        weights = ops.convert_to_tensor(self._weights(), dtype=self._counting_dtype)
        correct = ops.sum(weights * true_positives, axis=-1, keepdims=True)
        counted = ops.sum(weights * (true_positives + false_negatives), axis=-1, keepdims=True)
        return safe_ratio(correct, counted)

    def _scores_and_presence(self, true_positives, false_positives, false_negatives):
        counted = ops.sum(true_positives + false_negatives, axis=-1, keepdims=True)
        present = ops.cast(counted > 0, self._counting_dtype)
        return self.scores(true_positives, false_positives, false_negatives), present

    def _combine(self, scores, present):
        return scores[0]


__all__ = ["AVERAGES", "ConfusionMetric", "DiceCoefficient", "FBeta", "IoU", "PixelAccuracy"]
