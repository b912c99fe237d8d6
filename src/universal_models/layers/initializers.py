"""Weight initialisers used by the models."""

from __future__ import annotations

import math
from typing import Any

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


def _host_random(seed) -> np.random.Generator:
    """A NumPy generator for a Keras initializer seed (an int or a ``keras.random.SeedGenerator``)."""
    if isinstance(seed, keras.random.SeedGenerator):
        state = keras.ops.convert_to_numpy(seed.next()).astype("uint64")
        return np.random.default_rng([int(value) for value in state.ravel()])
    return np.random.default_rng(seed)


def _as_weights(values: np.ndarray, dtype) -> Any:
    return keras.ops.convert_to_tensor(values.astype("float32"), dtype=dtype or keras.config.floatx())


@keras.saving.register_keras_serializable(package="universal_models")
class HostVarianceScaling(keras.initializers.VarianceScaling):
    """``keras.initializers.VarianceScaling``, drawn on the host with NumPy.

    Same arguments, fans, scales and distributions as Keras' initializer (so
    :func:`he_normal` and :func:`glorot_uniform` below are Keras' ``he_normal``
    and ``glorot_uniform``), but the numbers come from NumPy instead of the
    backend's random ops. The reason is the JAX backend: there every
    ``jax.random`` call is compiled by XLA for each new weight shape, so building
    a model with Keras' initializers compiles one program per distinct kernel
    shape (about a second each on a CPU core). Measured on 2 CPU cores: the
    first U-Net (16 base filters) built in a fresh process took 43.32 s on JAX
    with Keras' initializers and 0.57 s with these (``benchmarks/README.md``,
    "Building models on JAX"). A side effect: a given seed gives the same
    initial weights on every backend.

    Seeds behave as in Keras: an integer seed gives the same values at every
    call; a ``keras.random.SeedGenerator`` (or no seed, which Keras turns into
    a random integer drawn from Python's ``random`` module, seeded by
    ``keras.utils.set_random_seed``) gives repeatable runs.

    Example:
        >>> kernel = HostVarianceScaling(2.0, "fan_in", "truncated_normal", seed=1)((3, 3, 8, 16))
    """

    def __call__(self, shape, dtype=None):
        shape = tuple(int(size) for size in shape)
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out}.get(self.mode, (fan_in + fan_out) / 2.0)
        scale = self.scale / max(1.0, fan)
        rng = _host_random(self.seed)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            values = rng.uniform(-limit, limit, shape)
        elif self.distribution == "untruncated_normal":
            values = rng.standard_normal(shape) * math.sqrt(scale)
        else:  # truncated at two standard deviations, rescaled to the target variance (as Keras)
            values = _truncated_standard_normal(rng, shape) * (math.sqrt(scale) / 0.87962566103423978)
        return _as_weights(values, dtype)


@keras.saving.register_keras_serializable(package="universal_models")
class HostOrthogonal(keras.initializers.Orthogonal):
    """``keras.initializers.Orthogonal`` (Saxe et al. 2014), drawn on the host with NumPy.

    The same construction as Keras' (QR decomposition of a Gaussian matrix,
    signs fixed by the diagonal of R, ``gain`` times the result) without the
    per-shape XLA compilations of the JAX backend; see
    :class:`HostVarianceScaling`. Used for the recurrent kernels of the
    ConvLSTM cells.

    Example:
        >>> recurrent_kernel = HostOrthogonal(seed=2)((3, 3, 16, 64))
    """

    def __call__(self, shape, dtype=None):
        shape = tuple(int(size) for size in shape)
        if len(shape) < 2:
            raise ValueError(f"An orthogonal initializer needs a weight of rank >= 2; got shape {shape}.")
        rows, columns = math.prod(shape[:-1]), shape[-1]
        matrix = _host_random(self.seed).standard_normal((max(rows, columns), min(rows, columns)))
        q, r = np.linalg.qr(matrix)
        q = q * np.sign(np.diag(r))
        if rows < columns:
            q = q.T
        return _as_weights(self.gain * q.reshape(shape), dtype)


def he_normal(seed: int | None = None) -> HostVarianceScaling:
    """Keras' ``he_normal`` (He et al. 2015) drawn on the host: see :class:`HostVarianceScaling`."""
    return HostVarianceScaling(2.0, "fan_in", "truncated_normal", seed=seed)


def glorot_uniform(seed: int | None = None) -> HostVarianceScaling:
    """Keras' ``glorot_uniform`` (Glorot and Bengio 2010) drawn on the host: see :class:`HostVarianceScaling`."""
    return HostVarianceScaling(1.0, "fan_avg", "uniform", seed=seed)


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras' fan-in and fan-out of a weight shape (kernels are ``(..., in, out)``)."""
    if not shape:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _truncated_standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Standard normal values redrawn until they lie within two standard deviations."""
    values = rng.standard_normal(shape)
    outside = np.abs(values) > 2.0
    while outside.any():
        values[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(values) > 2.0
    return values
