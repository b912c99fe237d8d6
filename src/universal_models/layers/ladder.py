"""The two layers of a Ladder network that Keras does not have.

Rasmus, Berglund, Honkala, Valpola and Raiko (2015), "Semi-Supervised Learning
with Ladder Networks", arXiv:1507.02672, need

- a batch normalisation whose learnt shift and scale are applied *after* the
  noise that the corrupted encoder adds to the normalised activations, and
  which hands the batch mean and standard deviation to the decoder:
  :class:`LadderBatchNormalization`;
- the denoising function g(z~, u) that combines the lateral (corrupted)
  activation with the decoder's top-down signal: :class:`GaussianCombinator`.

Both work on vectors ``(batch, units)`` and on feature maps
``(batch, height, width, channels)``; parameters and statistics are per unit
(per channel for feature maps, shared over positions as in convolutional batch
normalisation).
"""

from __future__ import annotations

import math

import keras
from keras import ops

#: Initial values of the combinator's a1 ... a10: a2 = a7 = 1, all others 0, as
#: in the authors' code (github.com/CuriousAI/ladder, ``g_type == "gauss"``).
#: With them the first estimate is z^ = 0 and every a_i receives a gradient.
GAUSSIAN_COMBINATOR_INIT = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0)


def _group_sums(tensor, weights):
    """``(2, units)`` sums of ``tensor`` over the samples of each group (and over positions)."""
    batch_by_rest = ops.reshape(tensor, (-1, math.prod(tensor.shape[1:])))
    sums = ops.matmul(ops.transpose(weights), batch_by_rest)  # one product instead of masked copies
    return ops.sum(ops.reshape(sums, (2, -1, tensor.shape[-1])), axis=1)


def batch_statistics(tensor, labeled=None, epsilon: float = 1e-5):
    """Mean and standard deviation of the current batch, per unit (per channel for feature maps).

    With ``labeled`` (a ``(batch,)`` mask, 1 for labelled samples) the labelled
    and the unlabelled samples get statistics of their own, as in the Ladder
    network authors' code: a batch that mixes a few labelled samples (the same
    ones in every batch) with unlabelled ones must not normalise them
    together, or the supervised cost learns to move the unlabelled samples to
    shift the statistics of the labelled ones, which ruins generalisation.

    Returns:
        ``(mean, std, population_mean, population_variance)``: the first two
        broadcast against ``tensor`` (with ``labeled``: per sample, its
        group's), ``std = sqrt(variance + epsilon)``; the last two are per
        unit, for moving averages: the unlabelled group's (a sample of the
        data like the images seen at inference), or the labelled group's when
        the batch has no unlabelled sample. Without ``labeled``: the whole
        batch's.

    Example:
        >>> mean, std, _, _ = batch_statistics(keras.ops.ones((4, 3)), keras.ops.array([1, 1, 0, 0]))
    """
    tensor = ops.convert_to_tensor(tensor)
    if labeled is None:
        mean, variance = ops.moments(tensor, axes=list(range(len(tensor.shape) - 1)))
        return mean, ops.sqrt(variance + epsilon), mean, variance
    labeled = ops.cast(labeled, tensor.dtype)
    weights = ops.stack([labeled, 1.0 - labeled], axis=1)  # (batch, 2): labelled, unlabelled
    counts = ops.sum(weights, axis=0) * math.prod(tensor.shape[1:-1])  # static: the ladder's sizes are fixed
    denominators = ops.expand_dims(ops.maximum(counts, 1.0), -1)
    means = _group_sums(tensor, weights) / denominators
    group = ops.cast(1.0 - labeled, "int32")  # row of each sample in `means`
    row_shape = (-1,) + (1,) * (len(tensor.shape) - 2) + (tensor.shape[-1],)
    mean = ops.reshape(ops.take(means, group, axis=0), row_shape)
    variances = _group_sums(ops.square(tensor - mean), weights) / denominators
    std = ops.reshape(ops.take(ops.sqrt(variances + epsilon), group, axis=0), row_shape)
    use_unlabeled = ops.cast(counts[1] > 0, tensor.dtype)
    population_mean = use_unlabeled * means[1] + (1.0 - use_unlabeled) * means[0]
    population_variance = use_unlabeled * variances[1] + (1.0 - use_unlabeled) * variances[0]
    return mean, std, population_mean, population_variance


@keras.saving.register_keras_serializable(package="universal_models")
class LadderBatchNormalization(keras.layers.Layer):
    """Batch normalisation split in two halves, for Ladder networks.

    ``layer(z_pre, training=...)`` returns ``(z, mean, std)``: the normalised
    activations ``z = (z_pre - mean) / std`` and the statistics it used, with
    ``std = sqrt(variance + epsilon)``. In training mode these are the current
    batch's statistics (over the batch and, for feature maps, every position;
    with ``labeled=mask`` separate ones for the labelled and the unlabelled
    samples, see :func:`batch_statistics`); in inference mode the moving
    averages. ``layer.shift_and_scale(z)`` then
    applies the learnt ``gamma * (z + beta)`` (Rasmus et al. 2015, Algorithm 1:
    ``h = activation(gamma * (z + beta))``). Between the two calls the
    corrupted encoder adds its Gaussian noise, as the paper requires.

    The moving averages are updated only when ``update_statistics=True`` (the
    Ladder network's clean pass), never from the corrupted pass.

    Args:
        center: learn the shift ``beta`` (every layer in the paper).
        scale: learn the scale ``gamma``. The paper (and the authors' code)
            uses it only in front of the softmax: before a ReLU, or a linear
            map followed by another batch normalisation, it is redundant.
        momentum: momentum of the moving mean and variance.
        epsilon: added to the variance before the square root.

    Example:
        >>> normalize = LadderBatchNormalization(scale=True)
        >>> z, mean, std = normalize(keras.ops.ones((4, 3)), training=True)
        >>> h = keras.ops.relu(normalize.shift_and_scale(z))
    """

    def __init__(self, center: bool = True, scale: bool = False, momentum: float = 0.99,
                 epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not float(epsilon) > 0.0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        self.center = bool(center)
        self.scale = bool(scale)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        units = input_shape[-1]
        if units is None:
            raise ValueError("LadderBatchNormalization needs a known size of the last axis (units or channels).")
        self.beta = self.add_weight(shape=(units,), initializer="zeros", name="beta") if self.center else None
        self.gamma = self.add_weight(shape=(units,), initializer="ones", name="gamma") if self.scale else None
        self.moving_mean = self.add_weight(shape=(units,), initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(
            shape=(units,), initializer="ones", trainable=False, name="moving_variance"
        )

    def call(self, inputs, training: bool = False, update_statistics: bool = True, labeled=None):
        if training:
            mean, std, population_mean, population_variance = batch_statistics(inputs, labeled, self.epsilon)
            if update_statistics:
                decay = self.momentum
                self.moving_mean.assign(
                    decay * self.moving_mean + (1.0 - decay) * ops.cast(population_mean, self.variable_dtype)
                )
                self.moving_variance.assign(
                    decay * self.moving_variance + (1.0 - decay) * ops.cast(population_variance, self.variable_dtype)
                )
        else:
            mean = ops.cast(self.moving_mean, inputs.dtype)
            std = ops.sqrt(ops.cast(self.moving_variance, inputs.dtype) + self.epsilon)
        return (inputs - mean) / std, mean, std

    def shift_and_scale(self, normalized):
        """``gamma * (normalized + beta)`` with the parameters this layer learns."""
        normalized = ops.convert_to_tensor(normalized, dtype=self.compute_dtype)
        if self.beta is not None:
            normalized = normalized + ops.cast(self.beta, normalized.dtype)
        if self.gamma is not None:
            normalized = normalized * ops.cast(self.gamma, normalized.dtype)
        return normalized

    def compute_output_spec(self, inputs, training=False, update_statistics=True, labeled=None):
        statistic = keras.KerasTensor((inputs.shape[-1],), dtype=inputs.dtype)
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype), statistic, statistic

    def get_config(self):
        return {
            **super().get_config(),
            "center": self.center,
            "scale": self.scale,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="universal_models")
class GaussianCombinator(keras.layers.Layer):
    """The Ladder network's denoising function g(z~, u), "vanilla" or "gauss".

    Rasmus et al. (2015, eq. 2; Pezeshki et al. 2016 call it the vanilla
    combinator) model the clean activation as Gaussian given the top-down
    signal ``u``, which makes the optimal denoiser linear in the corrupted
    lateral activation ``z~`` with an offset and slope that depend on ``u``::

        z^ = (z~ - mu(u)) * v(u) + mu(u)
        mu(u) = a1 * sigmoid(a2 * u + a3) + a4 * u + a5
        v(u)  = a6 * sigmoid(a7 * u + a8) + a9 * u + a10

    Each unit has its own ten parameters ``a1 ... a10`` (for feature maps: each
    channel), initialised as in the authors' code to a2 = a7 = 1 and all others
    0 (:data:`GAUSSIAN_COMBINATOR_INIT`).

    Call it on ``[z_corrupted, u]`` (same shape); it returns the estimate ``z^``.

    Example:
        >>> combinator = GaussianCombinator()
        >>> estimate = combinator([keras.ops.ones((2, 5)), keras.ops.zeros((2, 5))])
    """

    def build(self, input_shape):
        lateral_shape, vertical_shape = input_shape
        if tuple(lateral_shape[1:]) != tuple(vertical_shape[1:]):
            raise ValueError(
                f"GaussianCombinator needs z~ and u of the same shape, got {tuple(lateral_shape)} and "
                f"{tuple(vertical_shape)}."
            )
        units = lateral_shape[-1]
        self.coefficients = [
            self.add_weight(shape=(units,), initializer=keras.initializers.Constant(value), name=f"a{index}")
            for index, value in enumerate(GAUSSIAN_COMBINATOR_INIT, start=1)
        ]

    def call(self, inputs):
        lateral, vertical = inputs
        a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = (ops.cast(a, lateral.dtype) for a in self.coefficients)
        mean = a1 * ops.sigmoid(a2 * vertical + a3) + a4 * vertical + a5
        slope = a6 * ops.sigmoid(a7 * vertical + a8) + a9 * vertical + a10
        return (lateral - mean) * slope + mean

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
