"""Max pooling that remembers where each maximum was, and the matching unpooling.

SegNet's decoder (Badrinarayanan et al. 2015, section 3) upsamples by putting
each value back at the position its encoder's max-pooling took it from, zeros
elsewhere. Keras has no pooling op that returns indices on every backend, so
:class:`MaxPoolingWithArgmax2D` computes them with plain ``keras.ops``: each
``p x p`` window is folded into an axis of length ``p * p``, whose ``max`` is
the pooled value and whose ``argmax`` is the position inside the window (the
first one on ties, as in cuDNN and PyTorch). :class:`MaxUnpooling2D` scatters
values back with a one-hot of those positions. Indices are local to the window,
so they stay valid whatever the batch size or image size.

On the torch backend both layers take a fast path with the same inputs and
outputs: ``torch.nn.functional.max_pool2d(return_indices=True)`` and
``max_unpool2d`` on channels-last views, with the plane-wide indices PyTorch
uses converted to and from the window-local ones (the generic argmax over a
folded axis is several times slower there; see ``benchmarks/README.md``).
"""

from __future__ import annotations

import keras
from keras import ops

from .fast_paths import fast_paths_enabled


def _fold_windows(inputs, pool_size):
    """(b, h, w, c) -> (b, h/p, w/p, p*p, c), window positions row-major."""
    shape = ops.shape(inputs)
    height, width, channels = shape[1] // pool_size, shape[2] // pool_size, inputs.shape[-1]
    tensor = ops.reshape(inputs, (-1, height, pool_size, width, pool_size, channels))
    tensor = ops.transpose(tensor, (0, 1, 3, 2, 4, 5))
    return ops.reshape(tensor, (-1, height, width, pool_size * pool_size, channels))


def _unfold_windows(tensor, pool_size):
    """Inverse of :func:`_fold_windows`."""
    shape = ops.shape(tensor)
    height, width, channels = shape[1], shape[2], tensor.shape[-1]
    tensor = ops.reshape(tensor, (-1, height, width, pool_size, pool_size, channels))
    tensor = ops.transpose(tensor, (0, 1, 3, 2, 4, 5))
    return ops.reshape(tensor, (-1, height * pool_size, width * pool_size, channels))


def fast_path_applies(tensor) -> bool:
    """True for a real (not symbolic) 4-D tensor on the torch backend."""
    if keras.config.backend() != "torch" or len(tensor.shape) != 4 or not fast_paths_enabled():
        return False
    return getattr(getattr(tensor, "device", None), "type", "meta") != "meta"


@keras.saving.register_keras_serializable(package="universal_models")
class MaxPoolingWithArgmax2D(keras.layers.Layer):
    """Non-overlapping max pooling that also returns the argmax in each window.

    Input height and width must be multiples of ``pool_size`` (models pad to
    that first). Returns ``[pooled, indices]``; ``indices`` are ``int32`` in
    ``[0, pool_size ** 2)``, the row-major position of the maximum in its
    window.

    Example:
        >>> pooled, indices = MaxPoolingWithArgmax2D()(keras.ops.ones((1, 4, 4, 2)))
        >>> pooled.shape, indices.shape
        ((1, 2, 2, 2), (1, 2, 2, 2))
    """

    def __init__(self, pool_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, inputs):
        if fast_path_applies(inputs):
            from ..runtime.torch import kernels

            return list(kernels.max_pool_with_argmax(inputs, self.pool_size))
        windows = _fold_windows(inputs, self.pool_size)
        pooled = ops.max(windows, axis=3)
        indices = ops.cast(ops.argmax(windows, axis=3), "int32")
        return [pooled, indices]

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        height = None if height is None else height // self.pool_size
        width = None if width is None else width // self.pool_size
        shape = (batch, height, width, channels)
        return [shape, shape]

    def compute_output_spec(self, inputs):
        pooled_shape, _ = self.compute_output_shape(inputs.shape)
        return [
            keras.KerasTensor(pooled_shape, dtype=inputs.dtype),
            keras.KerasTensor(pooled_shape, dtype="int32"),
        ]

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package="universal_models")
class MaxUnpooling2D(keras.layers.Layer):
    """Place each value at the position recorded by :class:`MaxPoolingWithArgmax2D`.

    Called as ``MaxUnpooling2D()([values, indices])``; the output is
    ``pool_size`` times larger in height and width, zero except at the recorded
    positions. Gradients flow to ``values`` only.
    """

    def __init__(self, pool_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, inputs):
        values, indices = inputs
        if fast_path_applies(values):
            from ..runtime.torch import kernels

            return kernels.max_unpool(values, indices, self.pool_size)
        mask = ops.one_hot(indices, self.pool_size * self.pool_size, axis=3, dtype=values.dtype)
        windows = mask * ops.expand_dims(values, 3)
        return _unfold_windows(windows, self.pool_size)

    def compute_output_shape(self, input_shapes):
        batch, height, width, channels = input_shapes[0]
        height = None if height is None else height * self.pool_size
        width = None if width is None else width * self.pool_size
        return (batch, height, width, channels)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}
