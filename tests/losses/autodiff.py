"""Value and gradient of a scalar function of one array, on the active Keras backend (tests only)."""

from __future__ import annotations

import keras
import numpy as np

from tests.helpers import to_backend, to_numpy


def value_and_gradient(function, values: np.ndarray) -> tuple[float, np.ndarray]:
    """``function(x)`` and ``d function / d x`` at ``values``, by the backend's own autodiff."""
    values = np.ascontiguousarray(values, dtype="float32")
    backend = keras.config.backend()
    if backend == "torch":
        tensor = to_backend(values, requires_grad=True)  # on Keras' device (a GPU's where there is one)
        result = function(tensor)
        result.backward()
        return float(to_numpy(result)), to_numpy(tensor.grad)
    if backend == "jax":
        import jax

        result, gradient = jax.value_and_grad(lambda tensor: function(tensor))(to_backend(values))
        return float(to_numpy(result)), to_numpy(gradient)
    import tensorflow as tf

    tensor = tf.Variable(values)
    with tf.GradientTape() as tape:
        result = function(tensor)
    return float(to_numpy(result)), to_numpy(tape.gradient(result, tensor))
