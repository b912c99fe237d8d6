"""Batch normalisation with a fused kernel on the PyTorch backend.

Keras' ``BatchNormalization`` is written with backend-neutral ops: in training
it computes the batch mean and the mean of squares, then subtracts, multiplies
and adds, each a separate pass over the activations, forward and backward. On
the CPU that costs as much as the convolutions of a small U-Net (measured in
``benchmarks/README.md``, "Where the time went"). PyTorch has one fused kernel
for the whole thing, which also works directly on the channels-last tensors
Keras uses. :class:`BatchNormalization` is Keras' layer with the same
arguments, weights, update rule and saved form; on the torch backend it calls
that kernel, elsewhere (and for masked inputs) it is Keras' layer unchanged.
Under mixed precision (``mixed_bfloat16``, ``mixed_float16``) the inputs are
half precision and, as in Keras' layer, the statistics, weights and arithmetic
stay float32 (PyTorch's kernel takes half-precision inputs with float32
weights and computes in float32); the output is in the layer's compute dtype.
"""

from __future__ import annotations

import keras

from .fast_paths import fast_paths_enabled

_FAST_DTYPES = ("float32", "bfloat16", "float16")


def fast_path_applies(layer: keras.layers.BatchNormalization, inputs, mask) -> bool:
    if keras.config.backend() != "torch" or mask is not None or layer.synchronized or not fast_paths_enabled():
        return False
    rank = len(inputs.shape)
    if rank < 2 or layer.axis not in (-1, rank - 1):
        return False
    # float32, or a mixed-precision layer's float16/bfloat16 (statistics and weights stay float32)
    dtype = str(getattr(inputs, "dtype", "")).replace("torch.", "")
    if dtype not in _FAST_DTYPES or dtype != layer.compute_dtype or layer.variable_dtype != "float32":
        return False
    return inputs.numel() > inputs.shape[-1]  # PyTorch needs more than one value per channel


@keras.saving.register_keras_serializable(package="universal_models")
class BatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` with PyTorch's fused kernel on the torch backend.

    Batch normalisation (Ioffe and Szegedy 2015, arXiv:1502.03167) over the
    last axis. Same arguments and defaults as Keras' layer (``momentum=0.99``,
    ``epsilon=1e-3``), same weights (``gamma``, ``beta``, ``moving_mean``,
    ``moving_variance``) and the same rule for the moving statistics (the
    biased batch variance, ``moving = moving * momentum + batch * (1 -
    momentum)``), so the two are interchangeable and give the same numbers to
    float32 rounding (tested in ``tests/test_performance_paths.py``). On the
    torch backend, unmasked inputs (float32, or float16/bfloat16 under a mixed
    policy) normalised over the last axis go through ``torch.nn.functional.batch_norm`` on a channels-last view of the
    tensor (no copy) in training, and inference is one fused multiply-add per
    value with the per-channel scale and shift; everything else uses Keras'
    implementation.

    Args:
        **kwargs: as ``keras.layers.BatchNormalization``.

    Example:
        >>> layer = BatchNormalization(name="block1_bn")
        >>> layer(keras.ops.ones((2, 8, 8, 4)), training=True).shape
        (2, 8, 8, 4)
    """

    def call(self, inputs, training=None, mask=None):
        if not fast_path_applies(self, inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        from ..runtime.torch import kernels

        return kernels.batch_norm(self, inputs, training)
