"""The base class of the library's losses: shared options, input convention, config."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from .._validation import check_number  # noqa: F401  (re-exported: importable from here, as before)
from ._convention import SegmentationInputs, accumulation_dtype, standardize, validate_class_weights, validate_options


class SegmentationLoss(keras.losses.Loss):
    """Base class: one input convention for every segmentation loss.

    Subclasses implement :meth:`compute` on a
    :class:`~universal_models.losses._convention.SegmentationInputs`.

    Input convention (the same for every loss and metric of the library):
    ``y_pred`` is channels-last, ``(batch, height, width, channels)`` or
    ``(batch, time, height, width, channels)``; one channel is a sigmoid
    (binary) output, several channels a softmax output. ``y_true`` is one-hot
    (same shape) or integer labels (no channel axis, or a trailing axis of 1),
    detected from the shapes. For a one-channel output the classes are
    ``(background, foreground)``; region losses score the foreground only.

    Args:
        from_logits: ``y_pred`` holds logits; sigmoid (one channel) or softmax
            is applied inside, in a numerically stable way.
        ignore_index: integer label whose pixels count nowhere (neither in
            numerators nor denominators), e.g. 255. With one-hot targets it
            names the channel whose pixels are ignored.
        class_weights: one non-negative weight per class (two for a
            one-channel output: background, foreground), normalised to sum
            to 1. ``None`` weights classes equally.
        per_image: compute the loss per image (per frame for sequences) and
            average, instead of pooling the statistics of the whole batch.
            The loss then returns one value per image before Keras' reduction,
            so ``sample_weight`` weights images.
        name, reduction, dtype: as in ``keras.losses.Loss``; with ``dtype`` float16 or bfloat16 the
            loss is still computed in float32 (pixel sums overflow or stall in half precision) and
            only its value is cast to ``dtype``.

    Raises:
        ValueError: on a bad option here; on shapes that fit the convention
            nowhere, or a wrong number of class weights, when called.
    """

    def __init__(self, *, from_logits: bool = False, ignore_index: int | None = None,
                 class_weights: Sequence[float] | None = None, per_image: bool = False, name: str | None = None,
                 reduction: str | None = "sum_over_batch_size", dtype: Any = None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        validate_options(from_logits=from_logits, ignore_index=ignore_index, per_image=per_image)
        self.from_logits = bool(from_logits)
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self.class_weights = validate_class_weights(class_weights)
        self.per_image = bool(per_image)

    def call(self, y_true, y_pred):
        inputs = standardize(  # float32 sums also for a half-precision dtype (see accumulation_dtype)
            y_true, y_pred, from_logits=self.from_logits, ignore_index=self.ignore_index,
            dtype=accumulation_dtype(self.dtype),
        )
        return inputs.flag_invalid_labels(self.compute(inputs))

    def compute(self, inputs: SegmentationInputs):
        """The loss of standardised inputs: a scalar, or one value per image."""
        raise NotImplementedError

    @property
    def _shared_options(self) -> dict:
        return {"class_weights": self.class_weights, "per_image": self.per_image}

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "ignore_index": self.ignore_index,
            "class_weights": None if self.class_weights is None else list(self.class_weights),
            "per_image": self.per_image,
        }
