"""Cross-entropy over the labelled samples of a batch that also holds unlabelled ones."""

from __future__ import annotations

import keras
from keras import ops

#: The label that marks a sample as unlabelled (any negative integer does).
UNLABELED = -1


def _is_one_hot(labels, n_classes: int) -> bool:
    return len(labels.shape) == 2 and labels.shape[-1] == n_classes and n_classes > 1


def _integer_labels(labels):
    if len(labels.shape) == 2 and labels.shape[-1] == 1:
        labels = ops.squeeze(labels, axis=-1)
    if len(labels.shape) != 1:
        raise ValueError(
            f"labels must be integer classes (batch,) or (batch, 1) with -1 for unlabelled samples, or one-hot "
            f"(batch, n_classes) with all-zero rows for them; got shape {tuple(labels.shape)}."
        )
    return ops.cast(ops.round(ops.cast(labels, "float32")), "int32")


def labeled_mask(labels, n_classes: int):
    """``(batch,)`` float mask, 1 for a labelled sample, from the label convention.

    Integer labels ``(batch,)`` or ``(batch, 1)``: negative means unlabelled;
    one-hot labels ``(batch, n_classes)``: an all-zero row means unlabelled.

    Example:
        >>> labeled_mask(keras.ops.array([3, -1, 0]), 10)  # [1., 0., 1.]
    """
    labels = ops.convert_to_tensor(labels)
    if _is_one_hot(labels, n_classes):
        return ops.cast(ops.sum(ops.cast(labels, "float32"), axis=-1) > 0, "float32")
    return ops.cast(_integer_labels(labels) >= 0, "float32")


@keras.saving.register_keras_serializable(package="universal_models")
class LabeledCrossEntropy(keras.losses.Loss):
    """Categorical cross-entropy averaged over the labelled samples only.

    The supervised cost of semi-supervised training (Rasmus et al. 2015,
    eq. 3: the mean of ``-log P(y~ = t | x)`` over the labelled samples), for
    batches that mix labelled and unlabelled samples:

    - integer labels ``(batch,)`` or ``(batch, 1)``: a negative label (``-1``)
      marks an unlabelled sample;
    - one-hot labels ``(batch, n_classes)``: an all-zero row marks an
      unlabelled sample.

    Unlabelled samples add nothing; the sum over the labelled ones is divided
    by their number (so the value does not depend on how many unlabelled
    samples share the batch). A batch without labels gives 0, not NaN.
    Sample weights multiply the per-sample terms before that division.

    Args:
        from_logits: ``y_pred`` holds logits rather than probabilities.
        name: name of the loss.

    Example:
        >>> loss = LabeledCrossEntropy()
        >>> value = loss(np.array([2, -1]), np.array([[0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]))  # -log(0.8)
    """

    def __init__(self, from_logits: bool = False, name: str = "labeled_crossentropy", **kwargs):
        kwargs.pop("reduction", None)  # fixed: the division by the number of labels happens in call()
        super().__init__(name=name, reduction="sum", **kwargs)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        n_classes = y_pred.shape[-1]
        labeled = ops.cast(labeled_mask(y_true, n_classes), y_pred.dtype)
        if _is_one_hot(y_true, n_classes):
            targets = ops.cast(y_true, y_pred.dtype)
        else:
            targets = ops.one_hot(ops.maximum(_integer_labels(y_true), 0), n_classes, dtype=y_pred.dtype)
        per_sample = ops.categorical_crossentropy(targets, y_pred, from_logits=self.from_logits)
        n_labeled = ops.maximum(ops.sum(labeled), 1.0)
        return per_sample * labeled / n_labeled

    def get_config(self):
        config = super().get_config()
        config.pop("reduction", None)
        return {**config, "from_logits": self.from_logits}
