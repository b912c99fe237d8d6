"""``ConvLSTM2D`` that unrolls short sequences once their length is known.

Keras runs a recurrence as a loop primitive unless the layer is built with
``unroll=True``, and ``unroll=True`` needs the number of time steps in the
model's input shape. On JAX the loop is ``lax.scan``, and XLA on the CPU
differentiates a scanned ConvLSTM slowly: ``lstm_unet`` (4 frames of 128 x
128, batch 2) trained at 0.53 sequences/s against 1.32 unrolled, with the same
compile time (``benchmarks/README.md``, "Throughput per backend"). But when a
training or prediction step is traced, the sequences in it have a concrete
length even if the model accepts any. :class:`ConvLSTM2D` is Keras' layer with
the same arguments, weights and config that unrolls at that point, for up to
:data:`MAX_UNROLLED_STEPS` steps; longer or unknown-length sequences use
Keras' loop. The results are the same either way (tested); unrolling only
changes how the backend schedules the steps.
"""

from __future__ import annotations

import keras

from .fast_paths import fast_paths_enabled

#: Sequences of up to this many steps are unrolled (longer ones: compile time and memory grow with the
#: length; 16 frames of 64 x 64 on JAX compiled in 25 s unrolled against 19 s looped, and trained 22 % faster).
MAX_UNROLLED_STEPS = 16


def unrolls(layer: keras.layers.RNN, steps) -> bool:
    """Whether :class:`ConvLSTM2D` unrolls a sequence of ``steps`` steps (``None``: unknown length)."""
    if layer.unroll:
        return True
    return fast_paths_enabled() and isinstance(steps, int) and 0 < steps <= MAX_UNROLLED_STEPS


@keras.saving.register_keras_serializable(package="universal_models")
class ConvLSTM2D(keras.layers.ConvLSTM2D):
    """``keras.layers.ConvLSTM2D`` that unrolls sequences of a known, short length.

    A convolutional LSTM (Shi et al. 2015, arXiv:1506.04214). Same arguments,
    defaults, weights and config as Keras' layer; ``unroll=True`` still
    forces unrolling. With ``unroll=False`` (the default) a call on a sequence
    whose length is known when the step runs or is traced, and is at most
    :data:`MAX_UNROLLED_STEPS`, is unrolled; other sequences go through Keras'
    loop. ``universal_models.layers.fast_paths.use_fast_paths(False)`` turns
    the automatic unrolling off.

    Args:
        **kwargs: as ``keras.layers.ConvLSTM2D``.

    Example:
        >>> layer = ConvLSTM2D(4, 3, padding="same", return_sequences=True)
        >>> layer(keras.ops.zeros((1, 3, 8, 8, 2))).shape
        (1, 3, 8, 8, 4)
    """

    def call(self, sequences, initial_state=None, mask=None, training=False):
        configured = self.unroll
        self.unroll = unrolls(self, sequences.shape[1])
        try:
            return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        finally:
            self.unroll = configured
