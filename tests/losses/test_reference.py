"""Every loss against an independent numpy reference, and against Keras' built-ins where conventions match.

The reference values are float64 numpy, so passing on each backend also means
the backends agree with each other (within 1e-5).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from universal_models import losses as L

from . import reference as R
from .autodiff import value_and_gradient
from .cases import CONFIGURATIONS, LOSS_PAIRS, applicable, configurations_for_backend, make_case

TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


@pytest.mark.parametrize("pair", LOSS_PAIRS, ids=lambda pair: pair.name)
def test_matches_reference_in_every_configuration(pair):
    for configuration in configurations_for_backend():
        if not applicable(pair, configuration):
            continue
        case = make_case(configuration, seed=CONFIGURATIONS.index(configuration))
        np.testing.assert_allclose(
            pair.library_value(case), pair.reference_value(case), **TOLERANCE,
            err_msg=f"{pair.name} with {configuration.describe()}",
        )


def test_cross_entropy_matches_keras_crossentropies():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (2, 4, 5, 3)).astype("float32")
    labels = rng.integers(0, 3, (2, 4, 5))
    one_hot = np.eye(3, dtype="float32")[labels]
    expected = float(ops_mean(keras.losses.categorical_crossentropy(one_hot, logits, from_logits=True)))
    assert float(L.CrossEntropyLoss(from_logits=True)(labels, logits)) == pytest.approx(expected, rel=1e-5)
    expected = float(ops_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)))
    assert float(L.CrossEntropyLoss(from_logits=True)(labels[..., None], logits)) == pytest.approx(expected, rel=1e-5)
    binary_logits, binary = logits[..., :1], (labels[..., None] > 0).astype("float32")
    expected = float(ops_mean(keras.losses.binary_crossentropy(binary, binary_logits, from_logits=True)))
    assert float(L.CrossEntropyLoss(from_logits=True)(binary, binary_logits)) == pytest.approx(expected, rel=1e-5)


def test_focal_matches_keras_focal_crossentropies():
    # Keras' functions clip probabilities at 1e-7 and (categorical) renormalise: same numbers for moderate inputs.
    rng = np.random.default_rng(1)
    probabilities = R.softmax(rng.normal(0, 1.5, (2, 4, 5, 3))).astype("float32")
    labels = rng.integers(0, 3, (2, 4, 5))
    one_hot = np.eye(3, dtype="float32")[labels]
    for gamma, alpha in [(2.0, None), (0.5, 0.25), (0.0, None)]:
        expected = ops_mean(keras.losses.categorical_focal_crossentropy(
            one_hot, probabilities, gamma=gamma, alpha=1.0 if alpha is None else alpha))
        value = L.FocalLoss(gamma=gamma, alpha=alpha)(labels, probabilities)
        assert float(value) == pytest.approx(float(expected), rel=1e-5), (gamma, alpha)
    binary = probabilities[..., :1]
    targets = (labels[..., None] == 0).astype("float32")
    for gamma, alpha in [(2.0, None), (2.0, 0.25), (1.0, 0.7)]:
        expected = ops_mean(keras.losses.binary_focal_crossentropy(
            targets, binary, gamma=gamma, apply_class_balancing=alpha is not None,
            alpha=0.25 if alpha is None else alpha))
        value = L.FocalLoss(gamma=gamma, alpha=alpha)(targets, binary)
        assert float(value) == pytest.approx(float(expected), rel=1e-5), (gamma, alpha)


def test_dice_and_tversky_match_keras_on_binary_masks():
    # keras.losses.Dice / Tversky pool the whole batch without smoothing: our binary, per_image=False, smooth=0.
    rng = np.random.default_rng(2)
    probabilities = rng.random((2, 6, 7, 1)).astype("float32")
    truth = (rng.random((2, 6, 7, 1)) > 0.6).astype("float32")
    expected = float(keras.losses.Dice()(truth, probabilities))
    assert float(L.DiceLoss(squared=False, smooth=0)(truth, probabilities)) == pytest.approx(expected, rel=1e-5)
    # Keras 3.13's tversky() multiplies alpha with sum (1 - p) g, the false negatives (its docstring says false
    # positives); the paper, MONAI and this library put alpha on false positives, so the two are swapped here.
    expected = float(keras.losses.Tversky(alpha=0.3, beta=0.7)(truth, probabilities))
    value = L.TverskyLoss(alpha=0.7, beta=0.3, smooth=0)(truth, probabilities)
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_lovasz_gradient_matches_finite_differences_of_the_reference():
    # The Lovász extension is piecewise linear in the errors: away from ties a central difference is exact.
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (1, 3, 4))
    probabilities = R.softmax(rng.normal(0, 1, (1, 3, 4, 3))).astype("float32")
    loss = L.LovaszLoss()
    _, gradient = value_and_gradient(lambda tensor: loss(labels, tensor), probabilities)
    numeric = np.zeros(probabilities.shape)
    step = 1e-6
    for index in np.ndindex(probabilities.shape):
        shifted = [probabilities.astype("float64").copy() for _ in range(2)]
        shifted[0][index] += step
        shifted[1][index] -= step
        values = [R.lovasz_softmax(R.prepare(labels, s)) for s in shifted]
        numeric[index] = (values[0] - values[1]) / (2 * step)
    np.testing.assert_allclose(gradient, numeric, atol=1e-5)


def ops_mean(values) -> float:
    return float(np.mean(keras.ops.convert_to_numpy(values)))
