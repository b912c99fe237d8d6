"""Tversky-type losses: Tversky, focal Tversky and F-beta."""

from __future__ import annotations

import keras

from . import _functional as F
from .base import SegmentationLoss, check_number


@keras.saving.register_keras_serializable(package="universal_models")
class TverskyLoss(SegmentationLoss):
    """Tversky loss (Salehi et al. 2017, "Tversky loss function for image segmentation", eq. 3).

    Per class, with soft counts ``TP = sum p g``, ``FP = sum p (1 - g)``,
    ``FN = sum (1 - p) g`` over the pixels that count:
    ``T_c = (TP + s) / (TP + alpha FP + beta FN + s)``; the loss is the
    class-weighted mean of ``1 - T_c``. ``alpha`` weights false positives and
    ``beta`` false negatives, as in the paper and MONAI's ``TverskyLoss``
    (whose published value this reproduces: 0.3589 for ``alpha=0.3,
    beta=0.7`` on MONAI's 2x2 sigmoid example, ``per_image=True``). With
    ``alpha = beta = 0.5`` it is the non-squared :class:`DiceLoss`. Binary
    outputs score the foreground only, like :class:`DiceLoss`.

    Args:
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0); raise it to favour recall.
        smooth: ``s`` (>= 0).
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`.

    Example:
        >>> loss = TverskyLoss(alpha=0.3, beta=0.7, from_logits=True)
    """

    def __init__(self, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.alpha = check_number("alpha", alpha, minimum=0.0)
        self.beta = check_number("beta", beta, minimum=0.0)
        self.smooth = check_number("smooth", smooth, minimum=0.0)

    def _exponent(self) -> float:
        return 1.0

    def compute(self, inputs):
        return F.tversky(inputs, alpha=self.alpha, beta=self.beta, exponent=self._exponent(), smooth=self.smooth,
                         **self._shared_options)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta, "smooth": self.smooth}


@keras.saving.register_keras_serializable(package="universal_models")
class FocalTverskyLoss(TverskyLoss):
    """Focal Tversky loss (Abraham & Khan 2019, eq. 4): ``mean_c (1 - T_c)^(1/gamma)``.

    ``T_c`` as in :class:`TverskyLoss`. The paper writes its index with
    ``alpha`` on false negatives; here, as everywhere in this library,
    ``alpha`` weights false positives and ``beta`` false negatives, so the
    paper's setting (0.7 on false negatives, 0.3 on false positives,
    ``gamma = 4/3``) is the default ``alpha=0.3, beta=0.7``. The exponent is
    ``1/gamma`` as in the paper (segmentation_models.pytorch's ``gamma`` is the
    exponent itself). The classes are averaged with ``class_weights`` (the
    paper sums them), keeping the loss in [0, 1]. The gradient is finite also
    at a perfect prediction.

    Args:
        alpha: weight of false positives (>= 0).
        beta: weight of false negatives (>= 0).
        gamma: the exponent is ``1 / gamma`` (> 0; the paper uses 1 to 3).
        smooth: ``s`` (>= 0).
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`.

    Example:
        >>> loss = FocalTverskyLoss()          # the paper's alpha, beta, gamma
    """

    def __init__(self, alpha: float = 0.3, beta: float = 0.7, gamma: float = 4.0 / 3.0, smooth: float = 1e-5,
                 **kwargs):
        super().__init__(alpha=alpha, beta=beta, smooth=smooth, **kwargs)
        self.gamma = check_number("gamma", gamma, minimum=0.0, strict_minimum=True)

    def _exponent(self) -> float:
        return 1.0 / self.gamma

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="universal_models")
class FBetaLoss(SegmentationLoss):
    """``1 - F_beta`` with soft counts (van Rijsbergen's F-measure as a loss).

    ``F_beta = ((1 + b^2) TP + s) / ((1 + b^2) TP + b^2 FN + FP + s)`` per
    class, averaged with ``class_weights``: the Tversky loss with
    ``alpha = 1 / (1 + b^2)`` and ``beta = b^2 / (1 + b^2)``. ``beta=1`` is
    the non-squared Dice loss; ``beta > 1`` favours recall. Matches the soft
    F-beta of segmentation_models.pytorch's ``TverskyLoss`` under that mapping.

    Args:
        beta: ``b`` (> 0).
        smooth: ``s`` (>= 0).
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`.

    Example:
        >>> loss = FBetaLoss(beta=2.0)
    """

    def __init__(self, beta: float = 1.0, smooth: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.beta = check_number("beta", beta, minimum=0.0, strict_minimum=True)
        self.smooth = check_number("smooth", smooth, minimum=0.0)

    def compute(self, inputs):
        square = self.beta**2
        # F_beta = TP / (TP + FP / (1 + b^2) + b^2 FN / (1 + b^2)): numerator and denominator divided by 1 + b^2,
        # so the smoothing term is divided too.
        return F.tversky(inputs, alpha=1.0 / (1.0 + square), beta=square / (1.0 + square),
                         smooth=self.smooth / (1.0 + square), **self._shared_options)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta, "smooth": self.smooth}
