"""Batches that mix a few labelled samples with many unlabelled ones."""

from __future__ import annotations

import math

import keras
import numpy as np

from ..._validation import check_integer
from .loss import UNLABELED


class SemiSupervisedDataset(keras.utils.PyDataset):
    """Minibatches for semi-supervised training with plain ``model.fit``.

    Every batch holds ``labeled_batch_size`` labelled samples followed by
    ``batch_size`` unlabelled ones, whose label is ``-1``. One epoch is one
    pass over the unlabelled samples in a new random order; the labelled
    samples are drawn in turn from their own shuffled cycle, so with 100
    labels and ``labeled_batch_size=100`` every batch contains all of them.
    This is how Rasmus et al. (2015) trained: a labelled and an unlabelled
    minibatch of 100 each per step (the authors' code runs both through the
    network together, as here).

    The unlabelled set may contain the labelled images too (the usual setup:
    all training images unlabelled, a few of them also labelled). Batches have
    a constant size (the last incomplete batch of unlabelled samples is left
    for a later epoch), so JAX and TensorFlow compile one training step only.

    Args:
        x_labeled: labelled images ``(n_labeled, ...)``; may be empty (or
            ``None``) for purely unsupervised training.
        y_labeled: their integer class labels ``(n_labeled,)``, all >= 0.
        x_unlabeled: unlabelled images ``(n_unlabeled, ...)``, same sample
            shape as ``x_labeled``.
        batch_size: unlabelled samples per batch (100 in the paper).
        labeled_batch_size: labelled samples per batch; default
            ``min(n_labeled, batch_size)``.
        shuffle: draw a new order every epoch.
        seed: seed of the shuffling.
        **kwargs: passed to :class:`keras.utils.PyDataset` (``workers``,
            ``use_multiprocessing``, ``max_queue_size``).

    Raises:
        ValueError: mismatched lengths or sample shapes, negative or non-integer
            labels, or batch sizes that are not positive integers.

    Example:
        >>> data = SemiSupervisedDataset(x[:100], y[:100], x, batch_size=100, seed=0)  # doctest: +SKIP
        >>> model.fit(data, epochs=10)  # doctest: +SKIP
    """

    def __init__(self, x_labeled, y_labeled, x_unlabeled, *, batch_size: int = 100,
                 labeled_batch_size: int | None = None, shuffle: bool = True, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        x_unlabeled = np.asarray(x_unlabeled)
        if x_unlabeled.ndim < 2 or len(x_unlabeled) == 0:
            raise ValueError(
                f"x_unlabeled must be a non-empty array of samples (n, ...), got shape {x_unlabeled.shape}."
            )
        if x_labeled is None:
            x_labeled = np.zeros((0,) + x_unlabeled.shape[1:], x_unlabeled.dtype)
            y_labeled = np.zeros((0,), "int32")
        x_labeled, y_labeled = np.asarray(x_labeled), np.asarray(y_labeled)
        if x_labeled.shape[1:] != x_unlabeled.shape[1:]:
            raise ValueError(
                f"labelled and unlabelled samples must have the same shape, got {x_labeled.shape[1:]} and "
                f"{x_unlabeled.shape[1:]}."
            )
        if y_labeled.ndim != 1 or len(y_labeled) != len(x_labeled):
            raise ValueError(
                f"y_labeled must hold one integer class label per labelled sample: expected shape "
                f"({len(x_labeled)},), got {y_labeled.shape}. Convert one-hot labels with argmax(axis=-1)."
            )
        if len(y_labeled) and (np.any(y_labeled < 0) or np.any(y_labeled != np.round(y_labeled))):
            raise ValueError(
                "y_labeled must be integer class labels >= 0; leave unlabelled samples out of x_labeled "
                "and put them into x_unlabeled instead."
            )
        for argument, value in (("batch_size", batch_size), ("labeled_batch_size", labeled_batch_size)):
            check_integer(argument, value, allow_none=True)
        batch_size = check_integer("batch_size", batch_size, allow_none=True)
        labeled_batch_size = check_integer("labeled_batch_size", labeled_batch_size, allow_none=True)
        self.x_labeled, self.y_labeled = x_labeled, y_labeled.astype("int32")
        self.x_unlabeled = x_unlabeled
        self.batch_size = batch_size
        n_labeled = len(x_labeled)
        self.labeled_batch_size = min(n_labeled, batch_size) if labeled_batch_size is None else labeled_batch_size
        if n_labeled == 0:
            self.labeled_batch_size = 0
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._new_orders()

    def _new_orders(self):
        n_unlabeled, n_labeled = len(self.x_unlabeled), len(self.x_labeled)
        self._unlabeled_order = self._rng.permutation(n_unlabeled) if self.shuffle else np.arange(n_unlabeled)
        # Enough shuffled cycles of the labelled samples for a whole epoch.
        needed = len(self) * self.labeled_batch_size
        cycles = math.ceil(needed / n_labeled) if n_labeled else 0
        orders = [self._rng.permutation(n_labeled) if self.shuffle else np.arange(n_labeled) for _ in range(cycles)]
        self._labeled_order = np.concatenate(orders) if orders else np.zeros((0,), "int64")

    def __len__(self) -> int:
        return max(1, len(self.x_unlabeled) // self.batch_size)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        unlabeled = self._unlabeled_order[index * self.batch_size : (index + 1) * self.batch_size]
        labeled = self._labeled_order[index * self.labeled_batch_size : (index + 1) * self.labeled_batch_size]
        x = np.concatenate([self.x_labeled[labeled], self.x_unlabeled[unlabeled]])
        y = np.concatenate([self.y_labeled[labeled], np.full(len(unlabeled), UNLABELED, "int32")])
        return x, y

    def on_epoch_end(self):
        self._new_orders()
