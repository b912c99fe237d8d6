"""The host-side initializers: Keras' distributions, Keras' seeding, used by every model."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

import universal_models as um
from universal_models.layers.initializers import HostOrthogonal, HostVarianceScaling, glorot_uniform, he_normal


def _numpy(tensor) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(tensor), dtype="float64")


def test_he_normal_is_a_normal_truncated_at_two_deviations_with_variance_two_over_fan_in():
    shape = (3, 3, 64, 128)
    values = _numpy(he_normal(seed=0)(shape))
    fan_in = 3 * 3 * 64
    assert values.shape == shape
    np.testing.assert_allclose(values.std(), math.sqrt(2.0 / fan_in), rtol=0.01)
    untruncated_stddev = math.sqrt(2.0 / fan_in) / 0.87962566103423978
    assert np.abs(values).max() <= 2.0 * untruncated_stddev + 1e-7
    # the distribution of Keras' he_normal: same spread, same share beyond one deviation
    theirs = _numpy(keras.initializers.HeNormal(seed=0)(shape))
    np.testing.assert_allclose(values.std(), theirs.std(), rtol=0.02)
    beyond = [np.mean(np.abs(v) > untruncated_stddev) for v in (values, theirs)]
    np.testing.assert_allclose(beyond[0], beyond[1], atol=0.01)


def test_glorot_uniform_has_the_limit_of_keras():
    shape = (2, 2, 16, 32)  # a transposed-convolution kernel
    fan_in, fan_out = 4 * 32, 4 * 16  # Keras' fans of a (..., in, out) shape, whatever the layer
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    values = _numpy(glorot_uniform(seed=3)(shape))
    assert values.min() >= -limit and values.max() <= limit
    assert values.max() > 0.95 * limit and values.min() < -0.95 * limit
    np.testing.assert_allclose(values.std(), limit / math.sqrt(3.0), rtol=0.05)


def test_untruncated_normal_and_fan_out_modes():
    values = _numpy(HostVarianceScaling(1.0, "fan_out", "untruncated_normal", seed=4)((256, 512)))
    np.testing.assert_allclose(values.std(), math.sqrt(1.0 / 512), rtol=0.01)
    assert np.abs(values).max() > 3.5 * math.sqrt(1.0 / 512)  # not truncated


@pytest.mark.parametrize("shape", [(3, 3, 8, 32), (3, 3, 64, 16), (12, 12)])
def test_orthogonal_gives_orthonormal_rows_or_columns(shape):
    values = _numpy(HostOrthogonal(gain=2.0, seed=5)(shape)).reshape(-1, shape[-1])
    rows, columns = values.shape
    gram = values.T @ values if rows >= columns else values @ values.T
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, columns)), atol=1e-5)


def test_orthogonal_refuses_vectors():
    with pytest.raises(ValueError, match="rank >= 2"):
        HostOrthogonal(seed=0)((8,))


def test_seeds_behave_as_in_keras():
    shape = (3, 3, 4, 8)
    np.testing.assert_array_equal(_numpy(he_normal(seed=7)(shape)), _numpy(he_normal(seed=7)(shape)))
    assert not np.array_equal(_numpy(he_normal(seed=7)(shape)), _numpy(he_normal(seed=8)(shape)))
    generator = keras.random.SeedGenerator(11)
    initializer = HostVarianceScaling(2.0, "fan_in", "truncated_normal", seed=generator)
    first, second = _numpy(initializer(shape)), _numpy(initializer(shape))
    assert not np.array_equal(first, second)  # a generator advances
    keras.utils.set_random_seed(21)
    unseeded = _numpy(he_normal()(shape))
    keras.utils.set_random_seed(21)
    np.testing.assert_array_equal(unseeded, _numpy(he_normal()(shape)))


def test_values_depend_on_the_seed_only_not_on_the_backend():
    # NumPy's generator with the integer seed: the same numbers on every backend.
    values = _numpy(glorot_uniform(seed=123)((4, 5)))
    limit = math.sqrt(6.0 / 9.0)
    expected = np.random.default_rng(123).uniform(-limit, limit, (4, 5)).astype("float32")
    np.testing.assert_array_equal(values, expected)


def test_serialises_like_keras_initializers():
    initializer = he_normal(seed=9)
    restored = keras.initializers.deserialize(keras.initializers.serialize(initializer))
    assert isinstance(restored, HostVarianceScaling)
    np.testing.assert_array_equal(_numpy(restored((3, 3, 2, 4))), _numpy(initializer((3, 3, 2, 4))))
    orthogonal = keras.initializers.deserialize(keras.initializers.serialize(HostOrthogonal(gain=0.5, seed=1)))
    assert isinstance(orthogonal, HostOrthogonal) and orthogonal.gain == 0.5


def _random_initializers(layer):
    owners = [layer] + ([layer.cell] if hasattr(layer, "cell") else [])
    for owner in owners:
        for attribute in ("kernel_initializer", "recurrent_initializer", "depthwise_initializer"):
            initializer = getattr(owner, attribute, None)
            if initializer is None:
                continue
            inner = getattr(initializer, "initializer", None)  # ICNR wraps a base initializer
            for candidate in (initializer, inner):
                if isinstance(candidate, keras.initializers.Initializer):
                    yield f"{layer.name}.{attribute}", candidate


@pytest.mark.parametrize("name", [info.name for info in um.list_models() if info.kind != "ladder"])
def test_every_model_draws_its_random_weights_on_the_host(name):
    """No layer uses a backend random initializer, which JAX would compile once per weight shape."""
    options = {"base_filters": 4} if "base_filters" in um.model_options(name) else {}
    if "fc_filters" in um.model_options(name):
        options["fc_filters"] = 8
    model, _, _ = um.get_model(name, 64, 64, 1, 2, **options)
    backend_random = [
        f"{where}: {type(initializer).__name__}"
        for layer in model.layers
        for where, initializer in _random_initializers(layer)
        if hasattr(initializer, "seed") and not isinstance(initializer, (HostVarianceScaling, HostOrthogonal))
    ]
    assert not backend_random, backend_random
