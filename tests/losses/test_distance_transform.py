"""The keras.ops distance transform behind HausdorffDTLoss: exact against scipy, and compilable."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from scipy import ndimage

from universal_models.losses import _functional as F

from . import reference as R


def test_squared_distance_transform_equals_scipy():
    rng = np.random.default_rng(0)
    for shape in [(6, 9), (9, 6), (1, 7), (7, 1), (8, 8)]:
        masks = rng.random((3,) + shape) < 0.7
        masks[0] = True  # no zero at all
        masks[1] = False
        result = keras.ops.convert_to_numpy(F.squared_distance_transform(masks.astype("float32")))
        assert result.shape == masks.shape
        assert np.all(result[0] >= 1e9)  # no zero: "far" everywhere
        np.testing.assert_array_equal(result[1], 0.0)
        expected = ndimage.distance_transform_edt(masks[2]) ** 2
        np.testing.assert_array_equal(result[2], expected.astype("float32"), err_msg=str(shape))


def test_distance_field_matches_reference_per_class():
    rng = np.random.default_rng(1)
    masks = rng.random((2, 7, 6, 3)) < 0.5
    masks[0, ..., 1] = False  # empty class: no boundary
    masks[1, ..., 2] = True  # full class: no boundary
    field = keras.ops.convert_to_numpy(F.distance_field(masks))
    for image in range(2):
        for cls in range(3):
            expected = R.distance_field(masks[image, ..., cls]) ** 2
            np.testing.assert_allclose(field[image, ..., cls], expected, atol=1e-4)


def test_runs_compiled_with_unknown_sizes():
    masks = (np.random.default_rng(2).random((2, 5, 7, 1)) < 0.5).astype("float32")
    expected = keras.ops.convert_to_numpy(F.distance_field(masks))
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        compiled = np.asarray(jax.jit(F.distance_field)(masks))
    elif backend == "tensorflow":
        import tensorflow as tf

        function = tf.function(F.distance_field, input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)])
        compiled = function(masks).numpy()
    else:
        pytest.skip("Keras does not compile train steps on torch by default (jit_compile=False)")
    np.testing.assert_array_equal(compiled, expected)
