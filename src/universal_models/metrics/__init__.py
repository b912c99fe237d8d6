"""Segmentation metrics: stateful Keras metrics and a Hausdorff distance for evaluation.

:class:`DiceCoefficient`, :class:`IoU`, :class:`PixelAccuracy` and
:class:`FBeta` accumulate confusion counts over batches and follow the same
input convention as :mod:`universal_models.losses`. They are registered for
safe loading and reachable by string in ``compile`` once ``universal_models``
is imported:

>>> model.compile(optimizer="adam", loss="dice_loss", metrics=["iou", "pixel_accuracy"])  # doctest: +SKIP

:func:`hausdorff_distance` (numpy) gives HD and HD95 in pixels for predicted
and true masks.
"""

from __future__ import annotations

from ..losses._aliases import register_aliases
from .confusion import ConfusionMetric, DiceCoefficient, FBeta, IoU, PixelAccuracy
from .hausdorff import distance_to, hausdorff_distance, mask_boundary

#: String name -> metric class, for ``compile(metrics=["..."])``.
METRIC_ALIASES = {
    "dice_coefficient": DiceCoefficient,
    "iou": IoU,
    "pixel_accuracy": PixelAccuracy,
    "fbeta": FBeta,
}

register_aliases("metrics", METRIC_ALIASES)

__all__ = [
    "ConfusionMetric",
    "DiceCoefficient",
    "FBeta",
    "IoU",
    "METRIC_ALIASES",
    "PixelAccuracy",
    "distance_to",
    "hausdorff_distance",
    "mask_boundary",
]
