"""Value and gradient of a scalar function of one array, on the active Keras backend (tests only)."""

from __future__ import annotations

import keras
import numpy as np


def value_and_gradient(function, values: np.ndarray) -> tuple[float, np.ndarray]:
    """``function(x)`` and ``d function / d x`` at ``values``, by the backend's own autodiff."""
    values = np.ascontiguousarray(values, dtype="float32")
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        tensor = torch.tensor(values, requires_grad=True)
        result = function(tensor)
        result.backward()
        return float(result.detach().cpu()), tensor.grad.detach().cpu().numpy()
    if backend == "jax":
        import jax

        result, gradient = jax.value_and_grad(lambda tensor: function(tensor))(jax.numpy.asarray(values))
        return float(result), np.asarray(gradient)
    import tensorflow as tf

    tensor = tf.Variable(values)
    with tf.GradientTape() as tape:
        result = function(tensor)
    return float(result), tape.gradient(result, tensor).numpy()
