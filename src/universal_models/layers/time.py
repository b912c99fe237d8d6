"""Fold the time axis of a sequence into the batch axis, and unfold it again.

Recurrent models apply the same 2-D layers (convolutions, pooling, batch norm)
to every frame of a sequence ``(batch, time, height, width, channels)``, so
that their parameters do not depend on the number of time steps. Keras'
``TimeDistributed`` does this per layer, and when the time axis is static it
loops over the frames in Python: one small call per frame and layer, and a
wrapped ``BatchNormalization`` then normalises each frame with its own batch
statistics (and updates its moving averages once per frame).

:class:`FoldTime` instead reshapes the sequence into one large batch of frames
``(batch * time, height, width, channels)``, so a whole encoder or decoder of
ordinary 2-D layers runs on all frames at once (one call per layer, batch
statistics over every frame of the batch), and :class:`UnfoldTime` restores
``(batch, time, ...)`` where a layer needs the time axis (a ``ConvLSTM2D``).
Both work with static or ``None`` batch and time sizes.

Example:
    >>> frames = keras.Input((None, 32, 32, 1))
    >>> folded = FoldTime()(frames)                       # (None, 32, 32, 1)
    >>> features = keras.layers.Conv2D(8, 3, padding="same")(folded)
    >>> UnfoldTime()([features, frames]).shape            # (None, None, 32, 32, 8)
    (None, None, 32, 32, 8)
"""

from __future__ import annotations

import keras
from keras import ops


def _product_or_none(first, second):
    return None if first is None or second is None else first * second


@keras.saving.register_keras_serializable(package="universal_models")
class FoldTime(keras.layers.Layer):
    """Reshape ``(batch, time, *frame)`` to ``(batch * time, *frame)``.

    Frame ``t`` of sequence ``b`` becomes item ``b * time + t`` of the folded
    batch; :class:`UnfoldTime` inverts this.

    Raises:
        ValueError: (when built) the input has fewer than 3 axes.

    Example:
        >>> FoldTime()(keras.ops.ones((2, 5, 8, 8, 3))).shape
        (10, 8, 8, 3)
    """

    def build(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                f"FoldTime expects a sequence (batch, time, ...) with at least 3 axes, got shape {input_shape}."
            )

    def call(self, inputs):
        shape = ops.shape(inputs)
        return ops.reshape(inputs, (-1, *shape[2:]))

    def compute_output_shape(self, input_shape):
        return (_product_or_none(input_shape[0], input_shape[1]), *input_shape[2:])


@keras.saving.register_keras_serializable(package="universal_models")
class UnfoldTime(keras.layers.Layer):
    """Reshape folded frames ``(batch * time, *frame)`` back to ``(batch, time, *frame)``.

    Called as ``UnfoldTime()([folded, reference])``: the batch and time sizes
    come from ``reference``, a ``(batch, time, ...)`` sequence (usually the one
    that :class:`FoldTime` folded), so the layer works when either is only known
    at call time.

    Example:
        >>> sequence = keras.ops.ones((2, 5, 8, 8, 3))
        >>> UnfoldTime()([keras.ops.ones((10, 4, 4, 6)), sequence]).shape
        (2, 5, 4, 4, 6)
    """

    def call(self, inputs):
        folded, reference = inputs
        folded_shape, reference_shape = ops.shape(folded), ops.shape(reference)
        return ops.reshape(folded, (-1, reference_shape[1], *folded_shape[1:]))

    def compute_output_shape(self, input_shapes):
        folded, reference = input_shapes
        return (reference[0], reference[1], *folded[1:])
