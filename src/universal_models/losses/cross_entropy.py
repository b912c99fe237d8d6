"""Pixel-wise losses: cross-entropy and focal loss."""

from __future__ import annotations

import keras

from . import _functional as F
from .base import SegmentationLoss, check_number


@keras.saving.register_keras_serializable(package="universal_models")
class CrossEntropyLoss(SegmentationLoss):
    """Binary or categorical cross-entropy under the library's input convention.

    Binary (one sigmoid channel) or categorical (softmax) by the number of
    channels; sparse or one-hot targets, logits or probabilities. The mean
    over the pixels that count, each weighted by its true class's weight
    (``sum_i w_{y_i} l_i / sum_i w_{y_i}``, PyTorch's weighted mean, so the
    scale of ``class_weights`` does not matter). Soft targets are accepted.

    Numerics: log-probabilities come from ``log_softmax``/``log_sigmoid`` of
    logits, exact and with finite gradients for logits of any size. With
    probabilities, they are clipped to ``[1e-7, 1]`` before the log, so 0 and
    1 give finite values (and no gradient where clipped, as in Keras). Labels
    become a one-hot by comparison, no gather kernel is involved, so on torch it
    runs backward on ``(batch, height, width, classes)`` outputs in any memory
    layout (Keras 3.14+'s ``sparse_categorical_crossentropy`` needs the
    library's models for that: see ``docs/losses.md``).

    Args:
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`.

    Example:
        >>> loss = CrossEntropyLoss(from_logits=True, ignore_index=255)
        >>> labels = np.array([[[0, 2], [1, 255]]])               # (1, 2, 2)
        >>> logits = np.zeros((1, 2, 2, 3), "float32")            # uniform: log(3) per pixel
        >>> round(float(loss(labels, logits)), 4)
        1.0986
    """

    def compute(self, inputs):
        return F.cross_entropy(inputs, **self._shared_options)


@keras.saving.register_keras_serializable(package="universal_models")
class FocalLoss(SegmentationLoss):
    """Focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection", eq. 5).

    ``FL = -a_t (1 - p_t)^gamma log(p_t)`` per pixel, averaged like
    :class:`CrossEntropyLoss` (same class weighting and ``ignore_index``);
    with ``gamma=0`` and no ``alpha`` it *is* that cross-entropy. For a
    one-channel output ``a_t`` is ``alpha`` on foreground pixels and
    ``1 - alpha`` on background pixels (the paper's alpha-balanced form, as
    Keras' ``binary_focal_crossentropy(apply_class_balancing=True)``). For a
    softmax output ``alpha`` is one factor for all classes, as in Keras'
    ``categorical_focal_crossentropy``; per-class balance is ``class_weights``.

    It gives the same values as Keras' two focal functions (checked in the
    tests) but does not call them: they clip probabilities after the
    sigmoid/softmax, so a confidently wrong logit (below about -16) gets a
    vanishing gradient, and
    ``gamma < 1`` gives NaN gradients at ``p_t = 1``. Here log-probabilities
    come from ``log_sigmoid``/``log_softmax``, and ``(1 - p_t)^gamma`` is
    guarded at 0.

    Args:
        gamma: focusing parameter >= 0 (2 in the paper).
        alpha: balance in [0, 1], or ``None`` for none (the paper uses 0.25
            with its sigmoid classifier).
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`.

    Raises:
        ValueError: if ``gamma < 0`` or ``alpha`` is outside [0, 1].

    Example:
        >>> loss = FocalLoss(gamma=2.0, from_logits=True)
        >>> truth = np.ones((1, 1, 1, 1), "float32")
        >>> round(float(loss(truth, np.zeros((1, 1, 1, 1), "float32"))), 4)   # 0.25 * log(2)
        0.1733
    """

    def __init__(self, gamma: float = 2.0, alpha: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self.gamma = check_number("gamma", gamma, minimum=0.0)
        self.alpha = None if alpha is None else check_number("alpha", alpha, minimum=0.0, maximum=1.0)

    def compute(self, inputs):
        return F.focal(inputs, gamma=self.gamma, alpha=self.alpha, **self._shared_options)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "alpha": self.alpha}
