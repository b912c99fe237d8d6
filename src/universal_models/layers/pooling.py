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

from ..runtime.torch.memory_format import memory_format_of, relayout
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


def _torch_fast_path(tensor) -> bool:
    """True for a real (not symbolic) 4-D tensor on the torch backend."""
    if keras.config.backend() != "torch" or len(tensor.shape) != 4 or not fast_paths_enabled():
        return False
    return getattr(getattr(tensor, "device", None), "type", "meta") != "meta"


def _window_origins(torch, pooled_height, pooled_width, pool_size, width, device):
    """Plane-wide index (int32) of the top-left pixel of every window, shape (h/p, w/p)."""
    rows = torch.arange(pooled_height, dtype=torch.int32, device=device) * (pool_size * width)
    columns = torch.arange(pooled_width, dtype=torch.int32, device=device) * pool_size
    return rows[:, None] + columns[None, :]


# Index arithmetic, all in int32 and in place where possible: a window position
# (row, column) is ``row * pool_size + column`` locally and ``origin + row *
# width + column`` in the plane, so local = offset - row * (width - pool_size)
# and plane = origin + local + row * (width - pool_size).
def torch_max_pool_plane(inputs, pool_size):
    """Max pooling of NHWC ``inputs`` (torch): ``(pooled NHWC, PyTorch's plane-wide int64 indices, NCHW-shaped)``."""
    import torch.nn.functional as functional

    channels_first = inputs.permute(0, 3, 1, 2)  # view; channels-last memory
    pooled, plane_indices = functional.max_pool2d(channels_first, pool_size, return_indices=True)
    return pooled.permute(0, 2, 3, 1), plane_indices


def torch_max_unpool_plane(values, plane_indices, pool_size):
    """Unpooling of NHWC ``values`` (torch) with PyTorch's plane-wide indices from :func:`torch_max_pool_plane`."""
    import torch.nn.functional as functional

    height, width = values.shape[1] * pool_size, values.shape[2] * pool_size
    values = values.permute(0, 3, 1, 2)
    if values.requires_grad:
        # max_unpool2d's backward is a gather that returns an NCHW-contiguous gradient; with
        # channels-last values every backward kernel before it (ReLU, batch norm) would then read
        # two layouts at once, several times slower than one (measured: 2.9 ms against 0.4 ms for
        # the ReLU at 16 x 64 x 64 x 16). The identity below hands the gradient back in the values'
        # own layout.
        values = relayout(values, memory_format_of(values))
    unpooled = functional.max_unpool2d(values, plane_indices, pool_size, output_size=(height, width))
    return unpooled.permute(0, 2, 3, 1)


def _torch_max_pool_with_argmax(inputs, pool_size):
    import torch

    pooled, plane_indices = torch_max_pool_plane(inputs, pool_size)
    width = inputs.shape[2]
    origins = _window_origins(torch, pooled.shape[1], pooled.shape[2], pool_size, width, inputs.device)
    offset = torch.empty_like(plane_indices, dtype=torch.int32)
    torch.sub(plane_indices, origins, out=offset)
    rows = torch.div(offset, width, rounding_mode="floor")
    local = offset.sub_(rows.mul_(width - pool_size))
    return pooled, local.permute(0, 2, 3, 1)


def _torch_max_unpool(values, indices, pool_size):
    import torch

    width = values.shape[2] * pool_size
    local = indices.permute(0, 3, 1, 2)
    if local.dtype != torch.int32:
        local = local.to(torch.int32)
    origins = _window_origins(torch, values.shape[1], values.shape[2], pool_size, width, values.device)
    rows = torch.div(local, pool_size, rounding_mode="floor")
    plane_indices = (local + origins).add_(rows, alpha=width - pool_size).to(torch.int64)
    return torch_max_unpool_plane(values, plane_indices, pool_size)


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
        if _torch_fast_path(inputs):
            return list(_torch_max_pool_with_argmax(inputs, self.pool_size))
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
        if _torch_fast_path(values):
            return _torch_max_unpool(values, indices, self.pool_size)
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
