"""Dice-type losses: Dice, generalised Dice, and their sums with cross-entropy."""

from __future__ import annotations

import keras

from . import _functional as F
from .base import SegmentationLoss, check_number

#: Values of ``DiceLoss(weighting=...)``.
DICE_WEIGHTINGS = (None, "inverse_square")


def _dice_options(squared: bool, smooth: float, weighting: str | None) -> dict:
    """The checked options of the Dice term, as keyword arguments of :func:`F.dice`."""
    if weighting not in DICE_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {DICE_WEIGHTINGS}, got {weighting!r}")
    return {"squared": bool(squared), "smooth": check_number("smooth", smooth, minimum=0.0), "weighting": weighting}


@keras.saving.register_keras_serializable(package="universal_models")
class DiceLoss(SegmentationLoss):
    """Dice loss, ``1 - D``, with the Universal-Models formula by default.

    Per class ``c``, with soft counts over the pixels that count:
    ``D_c = (2 sum p g + s) / (sum p^2 + sum g^2 + s)`` (``squared=True``,
    Milletari et al. 2016, V-Net eq. 1, as in the original Universal-Models),
    or ``(2 sum p g + s) / (sum p + sum g + s)`` with ``squared=False``. The
    loss is the class-weighted mean of ``1 - D_c``, in [0, 1]. Published
    definition matched: MONAI's ``DiceLoss(sigmoid=True/softmax=True,
    include_background=True, squared_pred=..., smooth_nr=s, smooth_dr=s)``
    with ``batch=not per_image``; e.g. logits ``[[1, -1], [-1, 1]]`` against
    ``[[1, 0], [1, 1]]``, ``per_image=True``: 0.307576, squared 0.178337.

    ``weighting="inverse_square"``: the original library's class weighting
    ``w_c = 1 / (sum g_c^2 + eps)``, the classes pooled inside one ratio,
    ``D = (2 sum_c w_c sum p g + s) / (sum_c w_c (sum p^2 + sum g^2) + s)``.
    A class absent from the truth would get weight ``1 / eps`` and drown the
    others; it gets the largest weight of the present classes instead (as in
    :class:`GeneralizedDiceLoss`).

    Binary outputs: the single sigmoid channel is scored as the foreground
    class; the background is *not* counted (MONAI's behaviour for one sigmoid
    channel). Counting it would pull the score toward 1 for small objects,
    the imbalance this loss is for. Use a two-channel softmax output to score
    both. A class absent from truth and prediction scores ``D = 1`` (no
    loss); with ``smooth=0`` that is handled explicitly, never 0/0.

    Args:
        squared: square ``p`` and ``g`` in the denominator.
        smooth: ``s``, added to numerator and denominator (>= 0).
        weighting: ``None`` or ``"inverse_square"``.
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`.

    Raises:
        ValueError: on an unknown ``weighting`` or negative ``smooth``.

    Example:
        >>> import numpy as np
        >>> labels = np.array([[[0, 1], [1, 1]]])                       # (1, 2, 2)
        >>> perfect = np.eye(2, dtype="float32")[labels]                # one-hot prediction
        >>> float(DiceLoss()(labels, perfect))
        0.0
        >>> model.compile(optimizer="adam", loss="dice_loss")           # doctest: +SKIP
    """

    def __init__(self, squared: bool = True, smooth: float = 1e-5, weighting: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.dice_options = _dice_options(squared, smooth, weighting)

    def compute(self, inputs):
        return F.dice(inputs, **self.dice_options, **self._shared_options)

    def get_config(self):
        return {**super().get_config(), **self.dice_options}


@keras.saving.register_keras_serializable(package="universal_models")
class GeneralizedDiceLoss(SegmentationLoss):
    """Generalised Dice loss (Sudre et al. 2017, eq. 2).

    ``1 - (2 sum_c w_c sum p g + s) / (sum_c w_c sum (p + g) + s)`` with
    ``w_c = 1 / (sum g_c)^2``, so small classes weigh as much as large ones.
    Published definition matched: MONAI's ``GeneralizedDiceLoss(w_type=
    "square")`` with ``batch=not per_image``, including its treatment of
    classes absent from the truth (infinite weight): they get the largest
    weight of the present classes, so predicting them is penalised and the
    loss stays finite. If no class is present (an empty binary mask), all
    weights are 1. ``class_weights`` multiply ``w_c``. A one-channel output
    scores its foreground only, which reduces to the (non-squared) Dice loss.

    Args:
        smooth: ``s`` (>= 0).
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`.

    Example:
        >>> import numpy as np
        >>> labels = np.array([[[0, 0], [0, 1]]])
        >>> half = np.full((1, 2, 2, 2), 0.5, "float32")
        >>> round(float(GeneralizedDiceLoss(smooth=0)(labels, half)), 4)   # weights 1/9 and 1
        0.625
    """

    def __init__(self, smooth: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.smooth = check_number("smooth", smooth, minimum=0.0)

    def compute(self, inputs):
        return F.generalized_dice(inputs, smooth=self.smooth, **self._shared_options)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}


class _CrossEntropyPlusDice(SegmentationLoss):
    """``ce_weight * cross-entropy + dice_weight * dice``, one convention for both terms."""

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.ce_weight = check_number("ce_weight", ce_weight, minimum=0.0)
        self.dice_weight = check_number("dice_weight", dice_weight, minimum=0.0)

    def _dice_term(self, inputs):
        raise NotImplementedError

    def compute(self, inputs):
        total = 0.0
        if self.ce_weight:
            total = total + self.ce_weight * F.cross_entropy(inputs, **self._shared_options)
        if self.dice_weight:
            total = total + self.dice_weight * self._dice_term(inputs)
        return total

    def get_config(self):
        return {**super().get_config(), "ce_weight": self.ce_weight, "dice_weight": self.dice_weight}


@keras.saving.register_keras_serializable(package="universal_models")
class BCEDiceLoss(_CrossEntropyPlusDice):
    """Cross-entropy plus :class:`DiceLoss` (the original library's ``bce_dice_loss``).

    ``ce_weight * CrossEntropyLoss + dice_weight * DiceLoss``, both under the
    same options. The cross-entropy is binary for one sigmoid channel (the
    usual case: binary masks, or greyscale next-frame targets in [0, 1]) and
    categorical for a softmax output.

    Args:
        ce_weight, dice_weight: weights of the two terms (>= 0).
        squared, smooth, weighting: of the Dice term, see :class:`DiceLoss`.
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`; used by both terms.

    Example:
        >>> loss = BCEDiceLoss(from_logits=True, dice_weight=0.5)
    """

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, squared: bool = True,
                 smooth: float = 1e-5, weighting: str | None = None, **kwargs):
        super().__init__(ce_weight, dice_weight, **kwargs)
        self.dice_options = _dice_options(squared, smooth, weighting)

    def _dice_term(self, inputs):
        return F.dice(inputs, **self.dice_options, **self._shared_options)

    def get_config(self):
        return {**super().get_config(), **self.dice_options}


@keras.saving.register_keras_serializable(package="universal_models")
class CEDiceLoss(_CrossEntropyPlusDice):
    """Cross-entropy plus :class:`GeneralizedDiceLoss` (the original library's ``ce_dice_loss``).

    ``ce_weight * CrossEntropyLoss + dice_weight * GeneralizedDiceLoss``: the
    multi-class pairing, whose Dice term weighs rare classes up. For the plain
    Dice term use :class:`BCEDiceLoss`, which is categorical for softmax
    outputs as well.

    Args:
        ce_weight, dice_weight: weights of the two terms (>= 0).
        smooth: of the Dice term.
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`; used by both terms.

    Example:
        >>> loss = CEDiceLoss(ignore_index=255)
    """

    def __init__(self, ce_weight: float = 1.0, dice_weight: float = 1.0, smooth: float = 1e-5, **kwargs):
        super().__init__(ce_weight, dice_weight, **kwargs)
        self.smooth = check_number("smooth", smooth, minimum=0.0)

    def _dice_term(self, inputs):
        return F.generalized_dice(inputs, smooth=self.smooth, **self._shared_options)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth}
