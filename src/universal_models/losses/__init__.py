"""Segmentation losses for every Keras backend, one input convention for all.

Each loss is a ``keras.losses.Loss`` subclass, registered for safe loading,
and also reachable by a string name in ``compile`` once ``universal_models``
is imported:

>>> import universal_models
>>> model.compile(optimizer="adam", loss="bce_dice_loss")       # doctest: +SKIP
>>> model.compile(optimizer="adam", loss=universal_models.losses.DiceLoss(from_logits=True))  # doctest: +SKIP

The input convention (integer or one-hot targets, ``from_logits``,
``ignore_index``, ``class_weights``, ``per_image``) is described in
:class:`SegmentationLoss` and ``docs/losses.md``.
"""

from __future__ import annotations

from ._aliases import register_aliases
from .base import SegmentationLoss
from .cross_entropy import CrossEntropyLoss, FocalLoss
from .dice import BCEDiceLoss, CEDiceLoss, DiceLoss, GeneralizedDiceLoss
from .hausdorff import HausdorffDTLoss
from .lovasz import LovaszLoss
from .tversky import FBetaLoss, FocalTverskyLoss, TverskyLoss

#: String name -> loss class, for ``compile(loss="...")``.
LOSS_ALIASES = {
    "cross_entropy": CrossEntropyLoss,
    "dice_loss": DiceLoss,
    "generalized_dice_loss": GeneralizedDiceLoss,
    "bce_dice_loss": BCEDiceLoss,
    "ce_dice_loss": CEDiceLoss,
    "focal_loss": FocalLoss,
    "tversky_loss": TverskyLoss,
    "focal_tversky_loss": FocalTverskyLoss,
    "lovasz_loss": LovaszLoss,
    "fbeta_loss": FBetaLoss,
    "hausdorff_dt_loss": HausdorffDTLoss,
}

register_aliases("losses", LOSS_ALIASES)

__all__ = [
    "BCEDiceLoss",
    "CEDiceLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "FBetaLoss",
    "FocalLoss",
    "FocalTverskyLoss",
    "GeneralizedDiceLoss",
    "HausdorffDTLoss",
    "LOSS_ALIASES",
    "LovaszLoss",
    "SegmentationLoss",
    "TverskyLoss",
]
