"""Weight initialisers used by the models."""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="universal_models")
class BilinearUpsampling(keras.initializers.Initializer):
    """Kernel of a transposed convolution that performs bilinear upsampling.

    For a ``(k, k, out, in)`` transposed-convolution kernel, each output channel
    receives the bilinear filter from the input channel of the same index and
    nothing from the others (channels beyond ``min(in, out)`` start at zero).
    This is how Long et al. (2015) initialised FCN's upsampling layers: the net
    starts as bilinear interpolation and learns from there.

    Example:
        >>> kernel = BilinearUpsampling()((4, 4, 2, 2))
    """

    def __call__(self, shape, dtype=None):
        height, width, out_channels, in_channels = shape
        kernel_1d = [self._bilinear_1d(size) for size in (height, width)]
        bilinear = np.outer(kernel_1d[0], kernel_1d[1])
        weights = np.zeros(shape, dtype="float32")
        for channel in range(min(out_channels, in_channels)):
            weights[:, :, channel, channel] = bilinear
        return keras.ops.convert_to_tensor(weights, dtype=dtype or "float32")

    @staticmethod
    def _bilinear_1d(size: int) -> np.ndarray:
        factor = (size + 1) // 2
        center = factor - 1 if size % 2 == 1 else factor - 0.5
        positions = np.arange(size)
        return 1 - np.abs(positions - center) / factor

    def get_config(self):
        return {}
