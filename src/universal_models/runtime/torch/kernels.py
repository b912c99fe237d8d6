"""The torch kernels behind the layers' fast paths, in one place (torch only).

Each layer decides whether its fast path applies (``layers/fast_paths.py`` switches them all;
the decisions are backend-neutral checks in the layer's module) and then calls a function here:

- :func:`batch_norm`, :func:`batch_norm_inference_affine`: ``layers.normalization.BatchNormalization``
  through PyTorch's fused kernel on channels-last views (and the plan's batch-norm folding);
- :func:`max_pool_with_argmax`, :func:`max_unpool`, and the plane-index forms :func:`max_pool_plane`,
  :func:`max_unpool_plane` the plan passes between SegNet's layers: ``layers.pooling``;
- :func:`softmax_over_channels`, :func:`gradients_recorded`: ``layers.activation.Activation``.

Every one is held to the layer's Keras path in ``tests/test_performance_paths.py`` and through
the models in ``tests/test_graph.py``.
"""

from __future__ import annotations

import keras
import torch
import torch.nn.functional as functional

from .memory_format import memory_format_of, relayout


def gradients_recorded() -> bool:
    """Whether autograd records operations now (False under ``torch.no_grad``, ``predict``, ``evaluate``)."""
    return torch.is_grad_enabled()


def softmax_over_channels(inputs):
    """Softmax over the last axis of a channels-last tensor, vectorised across pixels."""
    return torch.softmax(inputs.movedim(-1, 1), dim=1).movedim(1, -1)


def _window_origins(pooled_height, pooled_width, pool_size, width, device):
    """Plane-wide index (int32) of the top-left pixel of every window, shape (h/p, w/p)."""
    rows = torch.arange(pooled_height, dtype=torch.int32, device=device) * (pool_size * width)
    columns = torch.arange(pooled_width, dtype=torch.int32, device=device) * pool_size
    return rows[:, None] + columns[None, :]


# Index arithmetic, all in int32 and in place where possible: a window position
# (row, column) is ``row * pool_size + column`` locally and ``origin + row *
# width + column`` in the plane, so local = offset - row * (width - pool_size)
# and plane = origin + local + row * (width - pool_size).
def max_pool_plane(inputs, pool_size):
    """Max pooling of NHWC ``inputs`` (torch): ``(pooled NHWC, PyTorch's plane-wide int64 indices, NCHW-shaped)``."""

    channels_first = inputs.permute(0, 3, 1, 2)  # view; channels-last memory
    pooled, plane_indices = functional.max_pool2d(channels_first, pool_size, return_indices=True)
    return pooled.permute(0, 2, 3, 1), plane_indices


def max_unpool_plane(values, plane_indices, pool_size):
    """Unpooling of NHWC ``values`` (torch) with PyTorch's plane-wide indices from :func:`max_pool_plane`."""

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


def max_pool_with_argmax(inputs, pool_size):

    pooled, plane_indices = max_pool_plane(inputs, pool_size)
    width = inputs.shape[2]
    origins = _window_origins(pooled.shape[1], pooled.shape[2], pool_size, width, inputs.device)
    offset = torch.empty_like(plane_indices, dtype=torch.int32)
    torch.sub(plane_indices, origins, out=offset)
    rows = torch.div(offset, width, rounding_mode="floor")
    local = offset.sub_(rows.mul_(width - pool_size))
    return pooled, local.permute(0, 2, 3, 1)


def max_unpool(values, indices, pool_size):

    width = values.shape[2] * pool_size
    local = indices.permute(0, 3, 1, 2)
    if local.dtype != torch.int32:
        local = local.to(torch.int32)
    origins = _window_origins(values.shape[1], values.shape[2], pool_size, width, values.device)
    rows = torch.div(local, pool_size, rounding_mode="floor")
    plane_indices = (local + origins).add_(rows, alpha=width - pool_size).to(torch.int64)
    return max_unpool_plane(values, plane_indices, pool_size)


def batch_norm_inference_affine(layer: keras.layers.BatchNormalization):
    """``(scale, shift)`` per channel of a batch norm in inference: ``y = x * scale + shift`` (torch)."""

    scale = torch.rsqrt(layer.moving_variance.value + layer.epsilon)
    if layer.scale:
        scale = scale * layer.gamma.value
    shift = -layer.moving_mean.value * scale
    if layer.center:
        shift = shift + layer.beta.value
    return scale, shift


def batch_norm(layer: keras.layers.BatchNormalization, inputs, training, relu: bool = False):
    """The torch fast path of :class:`~universal_models.layers.normalization.BatchNormalization`
    (inputs for which ``layers.normalization.fast_path_applies``).

    ``relu=True`` also applies a ReLU, in place on the normalised tensor (no
    second output buffer): :class:`universal_models.runtime.graph.GraphModel` asks for it
    when the layer's only consumer is a ReLU. The batch-norm backward pass does
    not read its output, so the in-place ReLU leaves gradients unchanged.
    """

    if not (training and layer.trainable):
        # Inference is an affine map per channel: one multiply-add pass over the
        # channels-last tensor, about twice as fast there as batch_norm's kernel
        # (in float32, as Keras computes it, then in the inputs' dtype).
        scale, shift = batch_norm_inference_affine(layer)
        outputs = torch.addcmul(shift, inputs, scale)
        if outputs.dtype != inputs.dtype:
            outputs = outputs.to(inputs.dtype)
        return outputs.relu_() if relu else outputs
    rank = inputs.ndim
    to_channels_first = (0, rank - 1) + tuple(range(1, rank - 1))
    to_channels_last = (0,) + tuple(range(2, rank)) + (1,)
    tensor = inputs.permute(to_channels_first)  # a view: NHWC memory read as channels-last NCHW
    gamma = layer.gamma.value if layer.scale else None
    beta = layer.beta.value if layer.center else None
    # momentum=1 makes the "running" buffers receive this batch's mean
    # and unbiased variance; Keras' update uses the biased variance.
    channels = inputs.shape[-1]
    statistics = layer.moving_mean.value  # float32 also for half-precision inputs
    batch_mean = torch.zeros(channels, dtype=statistics.dtype, device=statistics.device)
    batch_variance = torch.zeros(channels, dtype=statistics.dtype, device=statistics.device)
    outputs = functional.batch_norm(tensor, batch_mean, batch_variance, gamma, beta, True, 1.0, layer.epsilon)
    count = inputs.numel() // channels
    if count > 1:
        batch_variance = batch_variance * ((count - 1) / count)
    layer.moving_mean.assign(layer.moving_mean.value * layer.momentum + batch_mean * (1.0 - layer.momentum))
    layer.moving_variance.assign(
        layer.moving_variance.value * layer.momentum + batch_variance * (1.0 - layer.momentum)
    )
    if relu:
        # In place on PyTorch's output itself, not on the permuted view: an in-place
        # operation on a view would make autograd copy the whole gradient of its base.
        outputs.relu_()
    return outputs.permute(to_channels_last)
