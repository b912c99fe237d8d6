"""Sub-pixel upsampling: depth-to-space and its ICNR initialisation.

A sub-pixel convolution (Shi et al. 2016, "Real-Time Single Image and Video
Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural Network",
arXiv:1609.05158) upsamples by ``r`` with a convolution to ``r * r * C``
channels followed by :class:`DepthToSpace`, which moves each group of ``r * r``
channels into an ``r x r`` block of pixels. Initialised at random, the ``r * r``
sub-pixels of a block come from unrelated kernels, which shows as a
checkerboard pattern in the output that training has to remove (and often
does not). :class:`ICNR` (Aitken et al. 2017, "Checkerboard artifact free
sub-pixel convolution", arXiv:1707.02937) gives all sub-pixels the same kernel
at initialisation, so the layer starts as convolution followed by
nearest-neighbour upsampling: artifact-free, and still free to learn.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

from .._validation import check_integer
from .initializers import he_normal
from .normalization import BatchNormalization


def _check_block_size(block_size) -> int:
    return check_integer("block_size", block_size, minimum=2, expected="an integer >= 2 (the upsampling factor)")


@keras.saving.register_keras_serializable(package="universal_models")
class DepthToSpace(keras.layers.Layer):
    """Rearrange ``(..., h, w, r * r * C)`` into ``(..., h * r, w * r, C)``.

    The channels-last layout of TensorFlow's ``tf.nn.depth_to_space``: output
    pixel ``(y * r + i, x * r + j)``, channel ``c`` is input pixel ``(y, x)``,
    channel ``(i * r + j) * C + c``. Works on images ``(batch, h, w, c)`` and on
    sequences ``(batch, time, h, w, c)``.

    Args:
        block_size: the upsampling factor ``r`` (>= 2).

    Raises:
        ValueError: ``block_size`` is not an integer >= 2, or (when built) the
            number of channels is not a multiple of ``block_size ** 2``.

    Example:
        >>> DepthToSpace(2)(keras.ops.ones((1, 8, 8, 12))).shape
        (1, 16, 16, 3)
    """

    def __init__(self, block_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = _check_block_size(block_size)

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) < 4 or channels is None or channels % self.block_size**2:
            raise ValueError(
                f"DepthToSpace({self.block_size}) needs (batch, [time,] height, width, channels) with a known "
                f"number of channels that is a multiple of {self.block_size ** 2}; got shape {input_shape}. "
                f"Give the convolution before it a multiple of {self.block_size ** 2} filters."
            )

    def call(self, inputs):
        size = self.block_size
        shape = ops.shape(inputs)
        leading, height, width = shape[:-3], shape[-3], shape[-2]
        channels = inputs.shape[-1] // size**2
        tensor = ops.reshape(inputs, (-1, height, width, size, size, channels))
        tensor = ops.transpose(tensor, (0, 1, 3, 2, 4, 5))
        return ops.reshape(tensor, (*leading, height * size, width * size, channels))

    def compute_output_shape(self, input_shape):
        *leading, height, width, channels = input_shape
        scale = self.block_size
        return (
            *leading,
            None if height is None else height * scale,
            None if width is None else width * scale,
            channels // scale**2,
        )

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="universal_models")
class ICNR(keras.initializers.Initializer):
    """ICNR initialisation of the convolution that feeds :class:`DepthToSpace`
    (Aitken et al. 2017, arXiv:1707.02937).

    For a kernel of shape ``(kh, kw, in, r * r * C)`` it draws one base kernel
    ``(kh, kw, in, C)`` from ``initializer`` and repeats it ``r * r`` times along
    the last axis, matching :class:`DepthToSpace`'s channel order
    ``(i * r + j) * C + c``: every sub-pixel ``(i, j)`` of channel ``c`` starts
    with the same kernel, so convolution + depth-to-space starts as convolution
    + nearest-neighbour upsampling, without checkerboard artifacts.

    Args:
        scale: the upsampling factor ``r`` of the following depth-to-space.
        initializer: the initializer of the base kernel (name, config or
            instance); He-normal (:func:`~universal_models.layers.initializers.he_normal`)
            when ``None``.

    Raises:
        ValueError: ``scale`` is not an integer >= 2, or the kernel's number of
            output channels is not a multiple of ``scale ** 2``.

    Example:
        >>> conv = keras.layers.Conv2D(4 * 8, 3, padding="same", kernel_initializer=ICNR(2))
    """

    def __init__(self, scale: int = 2, initializer: Any = None):
        self.scale = _check_block_size(scale)
        self.initializer = he_normal() if initializer is None else keras.initializers.get(initializer)

    def __call__(self, shape, dtype=None):
        *kernel_shape, out_channels = shape
        copies = self.scale**2
        if out_channels % copies:
            raise ValueError(
                f"ICNR(scale={self.scale}) needs a number of output channels that is a multiple of {copies}; "
                f"got a kernel of shape {tuple(shape)}."
            )
        base = self.initializer((*kernel_shape, out_channels // copies), dtype=dtype)
        return ops.tile(base, (1,) * len(kernel_shape) + (copies,))

    def get_config(self):
        return {"scale": self.scale, "initializer": keras.initializers.serialize(self.initializer)}


def subpixel_upsampling(
    tensor,
    filters: int,
    *,
    name: str,
    scale: int = 2,
    kernel_size: int = 3,
    batch_norm: bool = True,
    activation: str | None = "relu",
    blur: bool = True,
):
    """Sub-pixel upsampling block: ICNR-initialised convolution to ``filters *
    scale ** 2`` channels, :class:`DepthToSpace`, a 2 x 2 blur, batch norm,
    activation.

    ICNR makes the block start free of checkerboard artifacts, but training
    can bring them back: the ``scale * scale`` sub-pixels of a block still
    come from different kernels. The blur (Sugawara et al. 2019, "Super-
    resolution using convolutional neural networks without any checkerboard
    artifacts", arXiv:1806.02658) averages each pixel with its right and lower
    neighbours (a 2 x 2 average pooling with stride 1, edges replicated), which
    removes the sub-pixel grid's frequency from the output whatever the
    kernels become. Measured on Moving MNIST rollouts (``benchmarks/README.md``,
    "Next-frame prediction"): without it, a trained ``lstm_next_frame`` showed
    spectral peaks at the grid frequencies of up to 6.3 times their surroundings
    (true frames: 1.3), and 2.7 with it.

    Layers are named ``{name}_conv``, ``{name}_depth_to_space``, ``{name}_blur``,
    ``{name}_bn`` and ``{name}_{activation}``. Takes and returns image tensors
    ``(batch, height, width, channels)``; the output is ``scale`` times larger
    and has ``filters`` channels.

    Example:
        >>> images = keras.Input((16, 16, 32))
        >>> subpixel_upsampling(images, 8, name="up1").shape
        (None, 32, 32, 8)
    """
    tensor = layers.Conv2D(
        filters * scale**2,
        kernel_size,
        padding="same",
        use_bias=not batch_norm,
        kernel_initializer=ICNR(scale),
        name=f"{name}_conv",
    )(tensor)
    tensor = DepthToSpace(scale, name=f"{name}_depth_to_space")(tensor)
    if blur:
        tensor = layers.AveragePooling2D(2, strides=1, padding="same", name=f"{name}_blur")(tensor)
    if batch_norm:
        tensor = BatchNormalization(name=f"{name}_bn")(tensor)
    if activation is not None:
        tensor = layers.Activation(activation, name=f"{name}_{activation}")(tensor)
    return tensor
