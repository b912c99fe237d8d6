"""The input convention shared by every loss and metric of the library.

One function, :func:`standardize`, turns whatever the user passes as
``(y_true, y_pred)`` into a :class:`SegmentationInputs`: a float target with
the same shape as the prediction and a mask of the pixels that count. Losses
and metrics then only deal with that form.

The rules (also in ``docs/losses.md``):

* ``y_pred`` is channels-last, ``(batch, height, width, channels)`` for images
  or ``(batch, time, height, width, channels)`` for sequences (any rank >= 3
  works: everything before the last three axes is a leading index of images).
  One channel means a sigmoid (binary) output, several channels a softmax
  output. ``from_logits=True`` means that sigmoid/softmax still has to be
  applied.
* ``y_true`` is either one-hot (same shape as ``y_pred``) or integer labels
  (``y_pred``'s shape without the channel axis, or with a channel axis of 1).
  For a one-channel output both forms are the same: the foreground
  probability, 0 or 1 (soft values in between are accepted).
* ``ignore_index``: pixels whose label equals it count nowhere. With one-hot
  targets it names a class channel, and pixels of that class are ignored.
* Labels must be classes: integer labels in ``[0, channels)`` (``{0, 1}`` for a
  one-channel output, whose targets may also be soft values in ``[0, 1]``), or
  ``ignore_index``. Others (5, -1 or 255 for two classes) are an error when
  their values can be read at the call, that is when they are concrete
  (eager, not traced) and in host memory: a ``ValueError`` naming them. Inside
  traced graphs (``jax.jit``, ``tf.function``, ``torch.compile``), or for
  tensors on an accelerator (reading them would stall the device every step),
  the loss, or the metric's counts, becomes NaN instead, which the training
  loop's non-finite guard stops on.
* The *classes* are the channels for a softmax output and
  ``(background, foreground)`` for a one-channel output, so ``class_weights``
  has ``max(channels, 2)`` entries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import ops

from .._validation import is_integer

#: Probabilities are clipped to [EPSILON, 1] before a logarithm.
EPSILON = 1e-7


def accumulation_dtype(dtype: str) -> str:
    """The dtype losses and metrics compute in when asked for ``dtype``: float32 for float16 and bfloat16.

    A region loss sums over every pixel of a batch; in float16 a sum of more than 65,504 pixels is
    ``inf`` and Dice's ``inf / inf`` is NaN, and in bfloat16 (8 significant bits) sums of counts stop
    growing past 256. Inputs may be half precision (a mixed-precision model's outputs); the sums,
    ratios and counts are float32, and only the result is cast back to ``dtype``.

    Example:
        >>> accumulation_dtype("float16"), accumulation_dtype("float64")
        ('float32', 'float64')
    """
    return "float32" if dtype in ("float16", "bfloat16") else dtype


def validate_class_weights(class_weights: Sequence[float] | None) -> tuple[float, ...] | None:
    """Check per-class weights and normalise them to sum to 1.

    Args:
        class_weights: non-negative finite numbers with a positive sum, or ``None``.

    Returns:
        The normalised weights as a tuple of floats, or ``None``.

    Raises:
        ValueError: if a weight is negative or not finite, or all are zero.

    Example:
        >>> validate_class_weights([1, 3])
        (0.25, 0.75)
    """
    if class_weights is None:
        return None
    try:
        weights = np.asarray(class_weights, dtype="float64").reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"class_weights must be a sequence of numbers, one per class; got {class_weights!r}"
        ) from error
    if weights.size == 0 or not np.all(np.isfinite(weights)) or np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError(
            f"class_weights must be finite, non-negative and not all zero; got {list(class_weights)}. "
            "Give one weight per class, e.g. [0, 1, 1] to leave the background class out."
        )
    return tuple(float(weight) for weight in weights / weights.sum())


def validate_options(*, from_logits: Any, ignore_index: Any, per_image: Any) -> None:
    """Type checks of the options every loss and metric shares.

    Raises:
        ValueError: if ``from_logits``/``per_image`` are not booleans or
            ``ignore_index`` is not an integer or ``None``.
    """
    for name, value in (("from_logits", from_logits), ("per_image", per_image)):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}")
    if ignore_index is not None and not is_integer(ignore_index):
        raise ValueError(f"ignore_index must be an integer label (e.g. 255) or None, got {ignore_index!r}")


def image_axes(rank: int) -> tuple[int, ...]:
    """The pixel axes of one image: height and width (just one for rank-3 inputs)."""
    return (-3, -2) if rank >= 4 else (-2,)


def reduce_pixels(values, per_image: bool):
    """Sum over pixels, keeping the class axis.

    Returns ``(classes,)`` when ``per_image`` is False, else
    ``(leading..., classes)``: one row per image (per frame for sequences).
    """
    rank = len(values.shape)
    if per_image:
        return ops.sum(values, axis=image_axes(rank))
    return ops.sum(values, axis=tuple(range(rank - 1)))


def safe_ratio(numerator, denominator, smooth: float = 0.0, empty_value: float = 1.0):
    """``(numerator + smooth) / (denominator + smooth)``; ``empty_value`` where that is 0/0.

    The denominator is replaced before the division too, so neither the value
    nor its gradient is ever NaN.
    """
    denominator = denominator + smooth
    nonzero = denominator > 0
    safe = ops.where(nonzero, denominator, ops.ones_like(denominator))
    return ops.where(nonzero, (numerator + smooth) / safe, ops.full_like(denominator, empty_value))


def weighted_class_mean(scores, weights, present=None, empty_value: float = 0.0):
    """Weighted mean over the last (class) axis, ``weights`` summing to 1.

    With ``present`` (a 0/1 mask shaped like ``scores``) only those classes
    count, their weights renormalised; the mean is ``empty_value`` where no
    class is present.
    """
    weights = ops.convert_to_tensor(np.asarray(weights, dtype="float32"), dtype=scores.dtype)
    if present is None:
        return ops.sum(scores * weights, axis=-1)
    weights = weights * present
    return safe_ratio(ops.sum(scores * weights, axis=-1), ops.sum(weights, axis=-1), empty_value=empty_value)


@dataclass(frozen=True)
class SegmentationInputs:
    """``(y_true, y_pred)`` after :func:`standardize`.

    Attributes:
        y_pred: the prediction as given (logits or probabilities), float, ``(..., C)``.
        target: float, same shape: one-hot for ``C > 1``, foreground for ``C == 1``;
            zero on ignored pixels.
        valid: float ``(..., 1)``: 1 where the pixel counts, 0 where it is ignored.
        from_logits: whether ``y_pred`` holds logits.
    """

    y_pred: Any
    target: Any
    valid: Any
    from_logits: bool
    label_error: Any = None

    def flag_invalid_labels(self, value):
        """``value``, or NaN if the labels held values outside the classes that could not be refused when given.

        ``label_error`` is ``None`` when the labels were checked at the call
        (they were readable, and fine), else a scalar: 0, or NaN when some
        label lay outside the classes. Every loss and metric passes its
        result (or counts) through here.
        """
        if self.label_error is None:
            return value
        return value + ops.cast(self.label_error, value.dtype)

    @property
    def channels(self) -> int:
        """Channels of the prediction (1 for a sigmoid output)."""
        return int(self.y_pred.shape[-1])

    @property
    def binary(self) -> bool:
        """True for a one-channel (sigmoid) prediction."""
        return self.channels == 1

    @property
    def n_classes(self) -> int:
        """Classes in the sense of ``class_weights``: 2 for a binary output."""
        return max(self.channels, 2)

    @property
    def rank(self) -> int:
        return len(self.y_pred.shape)

    def probabilities(self):
        """``(..., C)`` probabilities: sigmoid/softmax of logits, else ``y_pred``."""
        if not self.from_logits:
            return self.y_pred
        return ops.sigmoid(self.y_pred) if self.binary else ops.softmax(self.y_pred, axis=-1)

    def class_probabilities(self):
        """``(..., n_classes)``: a binary output becomes ``[1 - p, p]``."""
        probabilities = self.probabilities()
        if not self.binary:
            return probabilities
        return ops.concatenate([1.0 - probabilities, probabilities], axis=-1)

    def class_log_probabilities(self):
        """``(..., n_classes)`` log-probabilities, stable for any logit.

        From logits: ``log_softmax``, or ``[log_sigmoid(-z), log_sigmoid(z)]``
        for one channel, exact for logits of any size. From probabilities:
        the log of the probability clipped to ``[EPSILON, 1]``, so 0 and 1
        give finite values (and a zero gradient where clipped).
        """
        if self.from_logits:
            if self.binary:
                return ops.concatenate([ops.log_sigmoid(-self.y_pred), ops.log_sigmoid(self.y_pred)], axis=-1)
            return ops.log_softmax(self.y_pred, axis=-1)
        return ops.log(ops.clip(self.class_probabilities(), EPSILON, 1.0))

    def class_target(self):
        """``(..., n_classes)`` target: a binary target becomes ``[1 - g, g]`` (zero where ignored)."""
        if not self.binary:
            return self.target
        return ops.concatenate([(1.0 - self.target) * self.valid, self.target], axis=-1)

    def logits(self):
        """``(..., C)`` logits; probabilities are turned back into logits (clipped)."""
        if self.from_logits:
            return self.y_pred
        probabilities = ops.clip(self.y_pred, EPSILON, 1.0 - EPSILON)
        return ops.log(probabilities) - ops.log(1.0 - probabilities)

    def class_weights(self, normalised: tuple[float, ...] | None) -> np.ndarray:
        """The per-class weights for these inputs (uniform if ``None``), checked against ``n_classes``."""
        if normalised is None:
            return np.full(self.n_classes, 1.0 / self.n_classes, dtype="float32")
        if len(normalised) != self.n_classes:
            kind = "(background, foreground) for a one-channel output" if self.binary else "one per channel"
            raise ValueError(
                f"class_weights has {len(normalised)} entries but the prediction has {self.n_classes} classes "
                f"({kind}); give {self.n_classes} weights."
            )
        return np.asarray(normalised, dtype="float32")

    def region_weights(self, normalised: tuple[float, ...] | None) -> np.ndarray:
        """Weights of the classes that region losses score.

        Region losses (Dice, IoU, Tversky ...) score every channel of a softmax
        output but only the foreground of a one-channel output, so the weights
        are the class weights, or ``[1.0]`` for a binary output (after checking
        that ``class_weights`` has two entries).
        """
        weights = self.class_weights(normalised)
        return np.ones(1, dtype="float32") if self.binary else weights


def _readable_now(tensor) -> bool:
    """Whether ``tensor``'s values can be read here without tracing or a device synchronisation.

    True for concrete (eager, not traced) tensors in host memory: numpy arrays,
    CPU tensors of eager PyTorch, JAX arrays outside ``jit``, TensorFlow eager
    tensors. False inside traced graphs and for tensors on an accelerator.
    """
    backend = keras.config.backend()
    if isinstance(tensor, np.ndarray) or backend == "numpy":
        return True
    if backend == "torch":
        import torch

        if not isinstance(tensor, torch.Tensor) or torch.compiler.is_compiling() or torch.jit.is_tracing():
            return False
        return tensor.device.type == "cpu"
    if backend == "jax":
        import jax

        if not isinstance(tensor, jax.Array) or isinstance(tensor, jax.core.Tracer):
            return False
        return all(device.platform == "cpu" for device in tensor.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.executing_eagerly() and hasattr(tensor, "numpy") and "CPU" in str(tensor.device).upper()
    return False


def _check_labels(values, low: float, high: float, ignore_index: int | None, what: str):
    """``SegmentationInputs.label_error`` for labels that must lie in ``[low, high]`` (or be ``ignore_index``).

    Raises ``ValueError`` naming the bad values when they can be read now
    (:func:`_readable_now`); returns ``None`` then, else a scalar that is NaN
    when a label is outside the range.
    """
    if not _readable_now(values):
        bad = ops.logical_or(ops.less(values, low), ops.greater(values, high))
        if ignore_index is not None:
            bad = ops.logical_and(bad, ops.not_equal(values, ops.cast(ignore_index, values.dtype)))
        return ops.where(ops.any(bad), float("nan"), 0.0)
    array = np.asarray(ops.convert_to_numpy(values))
    if array.size == 0 or (array.min() >= low and array.max() <= high):  # the common case: two reductions
        return None
    bad = (array < low) | (array > high)
    if ignore_index is not None:
        bad &= array != ignore_index
    if not bad.any():
        return None
    found = np.unique(array[bad])
    listed = ", ".join(f"{value:g}" for value in found[:8]) + (" ..." if found.size > 8 else "")
    pixels = f"{int(bad.sum())} pixel{'s' if bad.sum() > 1 else ''}"
    raise ValueError(
        f"y_true holds {'values' if found.size > 1 else 'the value'} {listed} ({pixels}) outside "
        f"{what}. Fix the labels (0/255 binary masks: divide by 255), give the model more classes, or pass "
        "ignore_index=<label> to leave such pixels out of the loss and the metrics."
    )


def _static_shape_mismatch(true_shape, pred_shape) -> bool:
    return any(a is not None and b is not None and a != b for a, b in zip(true_shape, pred_shape))


def standardize(y_true, y_pred, *, from_logits: bool = False, ignore_index: int | None = None,
                dtype: str = "float32") -> SegmentationInputs:
    """Bring ``(y_true, y_pred)`` into the library's one form.

    Args:
        y_true: one-hot target shaped like ``y_pred``, or integer labels shaped
            like ``y_pred`` without its channel axis (or with a channel axis of
            1). Labels must lie in ``[0, channels)`` (in ``[0, 1]`` for one
            channel) or equal ``ignore_index``; see the module docstring for
            what happens to others.
        y_pred: ``(batch, ..., channels)`` logits or probabilities, rank >= 3.
        from_logits: whether ``y_pred`` holds logits.
        ignore_index: label of pixels that count nowhere; with one-hot targets,
            the index of the channel whose pixels are ignored.
        dtype: float type of the computation.

    Returns:
        A :class:`SegmentationInputs`.

    Raises:
        ValueError: if the shapes fit none of the forms above, the channel
            count is unknown, ``ignore_index`` names no channel of a one-hot
            target, or readable labels lie outside the classes.

    Example:
        >>> inputs = standardize(np.array([[[1, 0]]]), np.full((1, 1, 2, 3), 1 / 3))
        >>> tuple(inputs.target.shape)
        (1, 1, 2, 3)
    """
    y_pred = ops.convert_to_tensor(y_pred, dtype=dtype)
    integer = "int" in str(getattr(y_true, "dtype", ""))
    y_true = ops.convert_to_tensor(y_true, dtype="int32" if integer else None)  # jax has no int64 by default
    pred_rank, true_rank = len(y_pred.shape), len(y_true.shape)
    channels = y_pred.shape[-1]
    if pred_rank < 3:
        raise ValueError(
            f"y_pred must be (batch, height, width, channels) or (batch, time, height, width, channels); got "
            f"shape {tuple(y_pred.shape)}. Add the channel axis (1 for a binary output)."
        )
    if channels is None:
        raise ValueError(f"the channel axis of y_pred must have a known size; got shape {tuple(y_pred.shape)}")
    if true_rank == pred_rank - 1:
        labels = y_true
    elif true_rank == pred_rank and y_true.shape[-1] == channels:
        labels = None
    elif true_rank == pred_rank and y_true.shape[-1] == 1:
        labels = ops.squeeze(y_true, axis=-1)
    else:
        raise ValueError(
            f"y_true of shape {tuple(y_true.shape)} does not fit y_pred of shape {tuple(y_pred.shape)}: give "
            f"one-hot targets shaped like y_pred, or integer labels shaped {tuple(y_pred.shape[:-1])} "
            f"(optionally with a trailing axis of 1)."
        )
    spatial = y_true.shape if labels is None else labels.shape
    if _static_shape_mismatch(spatial, y_pred.shape[:-1]):
        raise ValueError(
            f"y_true of shape {tuple(y_true.shape)} and y_pred of shape {tuple(y_pred.shape)} differ in batch or "
            "image size; crop or resize one of them (models here return their input's size)."
        )

    if channels == 1:
        target = ops.cast(ops.expand_dims(labels, -1) if labels is not None else y_true, dtype)
        error = _check_labels(target, 0.0, 1.0, ignore_index,
                              "[0, 1]: a one-channel (sigmoid) prediction takes targets 0 (background) to 1 "
                              "(foreground)")
        if ignore_index is None:
            return SegmentationInputs(y_pred, target, ops.ones_like(target), from_logits, error)
        valid = ops.cast(ops.not_equal(target, float(ignore_index)), dtype)
        return SegmentationInputs(y_pred, target * valid, valid, from_logits, error)

    if labels is None:
        target = ops.cast(y_true, dtype)
        if ignore_index is None:
            return SegmentationInputs(y_pred, target, ops.ones_like(target[..., :1]), from_logits)
        if not 0 <= ignore_index < channels:
            raise ValueError(
                f"ignore_index={ignore_index} with one-hot targets must name one of the {channels} channels; "
                "pass integer labels to ignore a label value outside the classes (such as 255)."
            )
        valid = 1.0 - target[..., ignore_index : ignore_index + 1]
        return SegmentationInputs(y_pred, target * valid, valid, from_logits)

    labels = ops.expand_dims(ops.cast(labels, "int32"), -1)
    error = _check_labels(labels, 0, channels - 1, ignore_index,
                          f"the classes 0 ... {channels - 1} of a prediction with {channels} channels")
    target = ops.cast(ops.equal(labels, ops.arange(channels, dtype="int32")), dtype)
    if ignore_index is None:
        return SegmentationInputs(y_pred, target, ops.ones_like(target[..., :1]), from_logits, error)
    valid = ops.cast(ops.not_equal(labels, ignore_index), dtype)
    return SegmentationInputs(y_pred, target * valid, valid, from_logits, error)


__all__ = [
    "EPSILON",
    "accumulation_dtype",
    "SegmentationInputs",
    "image_axes",
    "reduce_pixels",
    "safe_ratio",
    "standardize",
    "validate_class_weights",
    "validate_options",
    "weighted_class_mean",
]
