"""Lovász losses: direct optimisation of the IoU (Berman et al. 2018)."""

from __future__ import annotations

import keras

from . import _functional as F
from .base import SegmentationLoss

#: Values of ``LovaszLoss(variant=...)``.
LOVASZ_VARIANTS = ("softmax", "hinge")


@keras.saving.register_keras_serializable(package="universal_models")
class LovaszLoss(SegmentationLoss):
    """Lovász loss (Berman, Rannen Triki & Blaschko 2018, "The Lovász-Softmax loss").

    The Lovász extension of the Jaccard loss ``1 - IoU``: pixel errors are
    sorted in decreasing order and dotted with the gradient of the Jaccard
    loss along that order (the paper's Algorithm 1), which is a tight convex
    surrogate of ``1 - IoU``. The sort runs with ``keras.ops.argsort`` on every
    backend; gradients flow through the sorted errors.

    * ``variant="softmax"`` (Lovász-softmax, eq. 12): errors ``|g - p|`` of
      the probabilities, per class, averaged over the classes present in the
      truth (the paper's default ``classes="present"``) with
      ``class_weights``. A one-channel output scores its foreground, also when
      the truth is empty (the loss is then the largest foreground
      probability, so false positives on empty images are penalised).
    * ``variant="hinge"`` (Lovász hinge, eq. 10): one-channel outputs only;
      errors are the hinge margins ``max(0, 1 - z (2g - 1))`` of the logits
      ``z`` (probabilities are turned back into logits). The paper pairs it
      with ``per_image=True``.

    ``per_image=False`` (the default here) sorts the pixels of the whole batch
    together, as the paper's ``per_image=False``. Ignored pixels are sorted
    last and add nothing. The value is in [0, 1] for ``"softmax"``.

    Args:
        variant: ``"softmax"`` or ``"hinge"``.
        from_logits, ignore_index, class_weights, per_image, name, reduction,
            dtype: see :class:`SegmentationLoss`.

    Raises:
        ValueError: on an unknown ``variant``; for ``"hinge"`` with several
            channels, when called.

    Example:
        >>> import numpy as np
        >>> truth = np.array([[[[1.0], [0.0]]]])                      # (1, 1, 2, 1)
        >>> prediction = np.array([[[[0.8], [0.4]]]], "float32")
        >>> round(float(LovaszLoss()(truth, prediction)), 4)          # errors .4, .2 times Jaccard steps .5, .5
        0.3
    """

    def __init__(self, variant: str = "softmax", **kwargs):
        super().__init__(**kwargs)
        if variant not in LOVASZ_VARIANTS:
            raise ValueError(f"variant must be one of {LOVASZ_VARIANTS}, got {variant!r}")
        self.variant = variant

    def compute(self, inputs):
        if self.variant == "hinge":
            inputs.class_weights(self.class_weights)  # checks their number
            return F.lovasz_hinge(inputs, per_image=self.per_image)
        return F.lovasz_softmax(inputs, **self._shared_options)

    def get_config(self):
        return {**super().get_config(), "variant": self.variant}
