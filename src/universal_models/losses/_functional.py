"""Segmentation losses as pure functions on ``keras.ops``.

Every function takes a :class:`~._convention.SegmentationInputs` (made once by
:func:`~._convention.standardize`) and keyword options, and returns the loss:
a scalar when ``per_image`` is False, else one value per image (shaped like
the leading axes: ``(batch,)`` for images, ``(batch, time)`` for sequences).
The ``Loss`` classes in this package are thin wrappers around them.

Conventions shared by all (see ``docs/losses.md``):

* Pixel-wise losses (cross-entropy, focal) are averaged over the pixels that
  count, each weighted by the weight of its true class (PyTorch's weighted
  mean), so the result does not depend on how the weights are scaled.
* Region losses (Dice, Tversky, Lovász, Hausdorff) score each class and take
  the weighted mean over classes; for a one-channel output they score the
  foreground only. A class absent from both truth and prediction scores as
  perfect, so it adds 0 to the loss and never a NaN.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from ._convention import EPSILON, SegmentationInputs, image_axes, reduce_pixels, safe_ratio, weighted_class_mean

#: A stand-in for an infinite squared distance in the distance transform. Larger
#: than H^2 + W^2 for any image this side of 70 000 pixels.
_FAR = 1e10


def _to_scalar_or_images(values, per_image: bool):
    """Drop the unit class axis left by pixel-wise reductions."""
    values = ops.squeeze(values, axis=-1)
    return values if per_image else ops.reshape(values, ())


def _as_tensor(weights: np.ndarray, like):
    """Host-side weights as a tensor of ``like``'s dtype on the backend's device.

    ``tensor * ndarray`` would make numpy convert the tensor instead, which fails for a tensor on a GPU.
    """
    return ops.convert_to_tensor(weights, dtype=like.dtype)


# --------------------------------------------------------------------------- pixel-wise
def _pixel_weighted_mean(pixel_losses, inputs: SegmentationInputs, weights: np.ndarray, per_image: bool):
    """Mean of ``pixel_losses (..., 1)`` over valid pixels, weighted by the true class's weight."""
    class_weights = _as_tensor(weights, pixel_losses)
    pixel_weights = ops.sum(inputs.class_target() * class_weights, axis=-1, keepdims=True) * inputs.valid
    total = reduce_pixels(pixel_losses * pixel_weights, per_image)
    return _to_scalar_or_images(safe_ratio(total, reduce_pixels(pixel_weights, per_image), empty_value=0.0), per_image)


def cross_entropy(inputs: SegmentationInputs, *, class_weights=None, per_image: bool = False):
    """Binary or categorical cross-entropy, ``-sum_k t_k log p_k`` per pixel.

    Log-probabilities come from ``log_sigmoid``/``log_softmax`` of logits
    (exact for any logit), or from probabilities clipped to ``[1e-7, 1]``.
    """
    weights = inputs.class_weights(class_weights)
    pixel_losses = -ops.sum(inputs.class_target() * inputs.class_log_probabilities(), axis=-1, keepdims=True)
    return _pixel_weighted_mean(pixel_losses, inputs, weights, per_image)


def _focal_factor(remainder, gamma: float):
    """``remainder ** gamma`` with finite gradients, also for ``gamma < 1`` at 0."""
    if gamma == 0:
        return ops.ones_like(remainder)
    safe = ops.maximum(remainder, 1e-30)
    return ops.where(remainder > 0, ops.power(safe, gamma), ops.zeros_like(remainder))


def focal(inputs: SegmentationInputs, *, gamma: float = 2.0, alpha: float | None = None, class_weights=None,
          per_image: bool = False):
    """Focal loss (Lin et al. 2017): ``-sum_k t_k a_k (1 - p_k)^gamma log p_k`` per pixel.

    ``a_k`` is ``[1 - alpha, alpha]`` for a one-channel output (alpha weights
    the foreground) and the scalar ``alpha`` for a softmax output; ``1``
    without ``alpha``.
    """
    weights = inputs.class_weights(class_weights)
    remainder = ops.clip(1.0 - inputs.class_probabilities(), 0.0, 1.0)
    terms = inputs.class_target() * _focal_factor(remainder, gamma) * inputs.class_log_probabilities()
    if alpha is not None:
        balance = [1.0 - alpha, alpha] if inputs.binary else [alpha] * inputs.n_classes
        terms = terms * _as_tensor(np.asarray(balance, dtype="float32"), terms)
    return _pixel_weighted_mean(-ops.sum(terms, axis=-1, keepdims=True), inputs, weights, per_image)


# --------------------------------------------------------------------------- region
def _masked_probabilities(inputs: SegmentationInputs):
    return inputs.probabilities() * inputs.valid


def inverse_weights(amount, epsilon: float = 0.0):
    """``1 / (amount + epsilon)`` per class; absent classes get the largest present weight.

    ``amount`` is ``(..., classes)`` (a class volume, or its square). A class
    with ``amount == 0`` would get an infinite (or ``1 / epsilon``) weight and
    swamp the others, so, as in MONAI's GeneralizedDiceLoss, it gets the
    largest weight among the present classes, or 1 when no class is present.
    """
    present = amount > 0
    weights = ops.where(present, 1.0 / (ops.where(present, amount, ops.ones_like(amount)) + epsilon), 0.0)
    largest = ops.max(weights, axis=-1, keepdims=True)
    fallback = ops.where(largest > 0, largest, ops.ones_like(largest))
    return ops.where(present, weights, fallback)


def dice(inputs: SegmentationInputs, *, squared: bool = True, smooth: float = 1e-5, weighting: str | None = None,
         class_weights=None, per_image: bool = False):
    """Dice loss ``1 - D`` with ``D = (2 sum p g + s) / (sum p^2 + sum g^2 + s)``.

    ``squared=False`` puts ``sum p + sum g`` in the denominator. Without
    ``weighting`` the loss is the class-weighted mean of ``1 - D_c``; with
    ``weighting="inverse_square"`` the classes are pooled inside one ratio
    with weights ``w_c / (sum g_c^2 + 1e-7)``.
    """
    weights = inputs.region_weights(class_weights)
    prediction, truth = _masked_probabilities(inputs), inputs.target
    intersection = reduce_pixels(prediction * truth, per_image)
    if squared:
        truth_amount = reduce_pixels(truth * truth, per_image)
        denominator = reduce_pixels(prediction * prediction, per_image) + truth_amount
    else:
        truth_amount = reduce_pixels(truth, per_image)
        denominator = reduce_pixels(prediction, per_image) + truth_amount
    if weighting is None:
        return weighted_class_mean(1.0 - safe_ratio(2.0 * intersection, denominator, smooth), weights)
    pooled = inverse_weights(reduce_pixels(truth * truth, per_image), EPSILON) * _as_tensor(weights, truth)
    return 1.0 - safe_ratio(
        2.0 * ops.sum(pooled * intersection, axis=-1), ops.sum(pooled * denominator, axis=-1), smooth
    )


def generalized_dice(inputs: SegmentationInputs, *, smooth: float = 1e-5, class_weights=None,
                     per_image: bool = False):
    """Generalised Dice loss (Sudre et al. 2017) with weights ``1 / (sum g_c)^2``.

    ``1 - (2 sum_c w_c sum p g + s) / (sum_c w_c sum (p + g) + s)``; classes
    absent from the truth get the largest weight of the present classes.
    """
    weights = inputs.region_weights(class_weights)
    prediction, truth = _masked_probabilities(inputs), inputs.target
    volume = reduce_pixels(truth, per_image)
    pooled = inverse_weights(volume * volume) * _as_tensor(weights, truth)
    intersection = reduce_pixels(prediction * truth, per_image)
    denominator = reduce_pixels(prediction, per_image) + volume
    return 1.0 - safe_ratio(
        2.0 * ops.sum(pooled * intersection, axis=-1), ops.sum(pooled * denominator, axis=-1), smooth
    )


def tversky(inputs: SegmentationInputs, *, alpha: float = 0.5, beta: float = 0.5, exponent: float = 1.0,
            smooth: float = 1e-5, class_weights=None, per_image: bool = False):
    """Tversky loss, ``(1 - T_c) ** exponent`` averaged over classes.

    ``T_c = (TP + s) / (TP + alpha FP + beta FN + s)`` with soft counts:
    ``alpha`` weights false positives and ``beta`` false negatives (Salehi et
    al. 2017, MONAI). ``exponent = 1 / gamma`` gives the focal Tversky loss.
    """
    weights = inputs.region_weights(class_weights)
    prediction, truth = _masked_probabilities(inputs), inputs.target
    true_positives = reduce_pixels(prediction * truth, per_image)
    false_positives = reduce_pixels(prediction * (1.0 - truth), per_image)
    false_negatives = reduce_pixels((1.0 - prediction) * truth * inputs.valid, per_image)
    index = safe_ratio(true_positives, true_positives + alpha * false_positives + beta * false_negatives, smooth)
    losses = 1.0 - index
    if exponent != 1.0:
        safe = ops.maximum(losses, EPSILON)
        losses = ops.where(losses > 0, ops.power(safe, exponent), ops.zeros_like(losses))
    return weighted_class_mean(losses, weights)


# --------------------------------------------------------------------------- Lovász
def _pixels_by_image(values, per_image: bool):
    """``(..., C)`` -> ``(images, pixels, C)``; a single "image" when not ``per_image``."""
    channels = values.shape[-1]
    if not per_image:
        return ops.reshape(values, (1, -1, channels))
    if len(values.shape) == 3:
        return values
    shape = ops.shape(values)
    return ops.reshape(values, (-1, shape[-3] * shape[-2], channels))


def _restore_images(values, reference, per_image: bool):
    """Per-image values ``(images,)`` back to the leading shape (or a scalar)."""
    if not per_image:
        return ops.reshape(values, ())
    rank = len(reference.shape)
    return ops.reshape(values, ops.shape(reference)[: rank - 1 - len(image_axes(rank))])


def lovasz_gradient(sorted_truth):
    """Gradient of the Lovász extension of the Jaccard loss (Berman et al. 2018, Alg. 1).

    ``sorted_truth`` is ``(images, pixels, C)``, the 0/1 truth of each class
    in the order of decreasing error. Union is never 0: it is at least the
    number of true pixels, or the position + 1 when there are none.
    """
    total = ops.sum(sorted_truth, axis=1, keepdims=True)
    intersection = total - ops.cumsum(sorted_truth, axis=1)
    union = total + ops.cumsum(1.0 - sorted_truth, axis=1)
    jaccard = 1.0 - intersection / union
    return ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=1)


def _lovasz_extension(errors, truth, valid, per_image: bool):
    """``sum_i sorted_errors_i * lovasz_gradient_i`` per image and class, ignored pixels sorted last.

    ``errors`` must be >= 0 on valid pixels; returns ``(images, C)``.
    """
    errors, truth = _pixels_by_image(errors * valid, per_image), _pixels_by_image(truth, per_image)
    valid = _pixels_by_image(valid, per_image)
    order = ops.argsort(-ops.where(valid > 0, errors, -ops.ones_like(errors)), axis=1)
    order = ops.stop_gradient(order)
    sorted_errors = ops.take_along_axis(errors, order, axis=1)
    gradient = ops.stop_gradient(lovasz_gradient(ops.take_along_axis(truth, order, axis=1)))
    return ops.sum(sorted_errors * gradient, axis=1)


def lovasz_softmax(inputs: SegmentationInputs, *, class_weights=None, per_image: bool = False):
    """Lovász-softmax loss (Berman et al. 2018): the Lovász extension of ``1 - IoU_c`` on ``|g - p|``.

    A softmax output averages over the classes present in the truth (the
    paper's ``classes="present"``); a one-channel output always scores its
    foreground, so false positives on an empty image are still penalised.
    """
    weights = inputs.region_weights(class_weights)
    probabilities = inputs.probabilities()
    per_class = _lovasz_extension(ops.abs(inputs.target - probabilities), inputs.target, inputs.valid, per_image)
    if inputs.binary:
        return _restore_images(per_class[:, 0], probabilities, per_image)
    present = ops.cast(ops.sum(_pixels_by_image(inputs.target, per_image), axis=1) > 0, per_class.dtype)
    return _restore_images(weighted_class_mean(per_class, weights, present), probabilities, per_image)


def lovasz_hinge(inputs: SegmentationInputs, *, per_image: bool = False):
    """Lovász hinge loss (Berman et al. 2018) for a one-channel output.

    Errors are hinge margins ``max(0, 1 - z (2g - 1))`` of the logits ``z``
    (probabilities are turned back into logits first).
    """
    if not inputs.binary:
        raise ValueError(
            f"the Lovász hinge needs a one-channel (sigmoid) output, got {inputs.channels} channels; "
            "use variant='softmax' for a softmax output."
        )
    signs = 2.0 * inputs.target - 1.0
    errors = ops.relu(1.0 - inputs.logits() * signs)
    per_image_losses = _lovasz_extension(errors, inputs.target, inputs.valid, per_image)[:, 0]
    return _restore_images(per_image_losses, inputs.y_pred, per_image)


# --------------------------------------------------------------------------- Hausdorff
def _lower_envelope_along_last_axis(values):
    """``out[..., p] = min_q values[..., q] + (p - q)^2``: one pass of the exact squared EDT.

    Broadcasts a ``(..., n, n)`` array: memory grows with ``n`` times the input.
    """
    positions = ops.cast(ops.arange(ops.shape(values)[-1]), values.dtype)
    cost = ops.square(ops.expand_dims(positions, -1) - ops.expand_dims(positions, 0))
    return ops.min(ops.expand_dims(values, -2) + cost, axis=-1)


def squared_distance_transform(mask):
    """Exact squared Euclidean distance from each pixel to the nearest pixel where ``mask`` is 0.

    ``mask`` is ``(..., height, width)``, 1/True inside. Separable (Felzenszwalb
    & Huttenlocher 2012): the 1-D transform along rows, then along columns, each
    as a broadcast minimum, so it runs with ``keras.ops`` alone on every
    backend, also inside compiled train steps. Cost: a temporary of
    ``(...) * height * width * max(height, width)`` floats. Pixels of a mask
    with no zero get ``~1e10``. No gradient flows through it.

    Example:
        >>> keras.ops.convert_to_numpy(squared_distance_transform(np.array([[0, 1, 1, 1]], "float32")))
        array([[0., 1., 4., 9.]], dtype=float32)
    """
    mask = ops.convert_to_tensor(mask)
    far = ops.where(mask > 0, _FAR, 0.0)
    rows = _lower_envelope_along_last_axis(ops.cast(far, "float32"))
    columns = _lower_envelope_along_last_axis(ops.swapaxes(rows, -1, -2))
    return ops.stop_gradient(ops.swapaxes(columns, -1, -2))


def distance_field(mask):
    """Squared distance of each pixel to the boundary of ``mask``, per class.

    ``mask`` is ``(..., height, width, classes)`` with 0/1 values. Inside the
    mask it is the squared distance to the nearest outside pixel and vice
    versa (``edt(mask) + edt(~mask)``, as MONAI's HausdorffDTLoss). A class
    with no boundary in an image (empty or full) gets 0 everywhere.
    """
    planes = ops.moveaxis(ops.cast(mask, "float32"), -1, -3)  # (..., classes, height, width)
    inside = squared_distance_transform(planes)
    outside = squared_distance_transform(1.0 - planes)
    has_both = ops.logical_and(
        ops.any(planes > 0, axis=(-2, -1), keepdims=True), ops.any(planes < 1, axis=(-2, -1), keepdims=True)
    )
    field = ops.where(has_both, inside + outside, 0.0)
    return ops.stop_gradient(ops.moveaxis(field, -3, -1))


def hausdorff_dt(inputs: SegmentationInputs, *, alpha: float = 2.0, class_weights=None, per_image: bool = False):
    """Hausdorff distance-transform loss (Karimi & Salcudean 2019, eq. 8).

    ``mean over pixels of (p - g)^2 (d_g^alpha + d_p^alpha)`` per class, where
    ``d_g``/``d_p`` are the distances to the boundary of the truth and of the
    thresholded prediction (``p > 0.5``), computed without gradient. Ignored
    pixels add nothing to the mean; for the distance maps they are background.
    """
    if inputs.rank < 4:
        raise ValueError(
            f"HausdorffDTLoss needs images: y_pred of shape (batch, height, width, channels) or "
            f"(batch, time, height, width, channels), got shape {tuple(inputs.y_pred.shape)}"
        )
    weights = inputs.region_weights(class_weights)
    probabilities, truth = inputs.probabilities(), inputs.target
    distances = distance_field(truth > 0.5), distance_field(probabilities > 0.5)
    if alpha != 2.0:
        distances = tuple(ops.power(distance, alpha / 2.0) for distance in distances)
    errors = ops.square(probabilities - truth) * (distances[0] + distances[1]) * inputs.valid
    means = safe_ratio(reduce_pixels(errors, per_image), reduce_pixels(inputs.valid, per_image), empty_value=0.0)
    return weighted_class_mean(means, weights)


__all__ = [
    "cross_entropy",
    "dice",
    "distance_field",
    "focal",
    "generalized_dice",
    "hausdorff_dt",
    "inverse_weights",
    "lovasz_gradient",
    "lovasz_hinge",
    "lovasz_softmax",
    "squared_distance_transform",
    "tversky",
]
