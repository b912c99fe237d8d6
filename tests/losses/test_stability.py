"""Finite values and finite gradients at the edges: empty and full masks, logits of +-1e4, probabilities of 0/1.

Plus a property test over random shapes and values. All inputs of the edge
cases share one shape per output kind, so that backends that compile each
operation per shape (jax eagerly) reuse their work.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from universal_models import losses as L
from universal_models import metrics as um_metrics

from .autodiff import value_and_gradient
from .cases import BINARY_ONLY, BOUNDED, LOSS_FACTORIES


def _edge_cases(channels: int):
    """(name, y_true, y_pred, from_logits, per_image), all shaped (5, 4, 4, C).

    Per-image cases put several edge cases side by side in one batch (each
    image is scored on its own); pooled cases make the whole batch empty or
    full (for three classes, "full" leaves the other classes absent).
    """
    rng = np.random.default_rng(0)
    shape = (5, 4, 4)
    signs = np.where(rng.random(shape + (channels,)) < 0.5, -1.0, 1.0).astype("float32")
    if channels == 1:
        empty, full, mixed = np.zeros(shape), np.ones(shape), (rng.random(shape) < 0.5).astype("float64")
        one_hot = lambda labels: labels[..., None].astype("float32")  # noqa: E731
    else:
        empty, full, mixed = np.zeros(shape, int), np.full(shape, channels - 1), rng.integers(0, channels, shape)
        one_hot = lambda labels: np.eye(channels, dtype="float32")[labels]  # noqa: E731
    side_by_side = np.stack([empty[0], full[0], mixed[0], empty[0], mixed[1]])
    logits = 1e4 * signs
    logits[3] = 1e4 * (2 * one_hot(empty[:1])[0] - 1)  # confidently right on the empty image
    logits[4] = 0.0  # undecided
    wrong = one_hot(side_by_side)[:, ::-1, ::-1]
    probabilities = np.stack([one_hot(side_by_side)[0], one_hot(side_by_side)[1], wrong[2], wrong[1], wrong[0]])
    return [
        ("per image: empty, full, mixed, confident right, undecided; logits +-1e4", side_by_side, logits, True, True),
        ("pooled: all empty, logits +-1e4", empty, 1e4 * signs, True, False),
        ("pooled: all full, logits +-1e4", full, 1e4 * signs, True, False),
        ("per image: probabilities of exactly 0 and 1, right and wrong", side_by_side, probabilities, False, True),
        ("pooled: all empty, probabilities exactly 0", empty, one_hot(empty), False, False),
    ]


@pytest.mark.parametrize("channels", [1, 3])
def test_finite_values_and_gradients_at_the_edges(channels):
    for name, factory in LOSS_FACTORIES.items():
        if channels > 1 and name in BINARY_ONLY:
            continue
        for case, y_true, y_pred, from_logits, per_image in _edge_cases(channels):
            loss = factory(from_logits=from_logits, per_image=per_image)
            value, gradient = value_and_gradient(lambda tensor: loss(y_true, tensor), y_pred)
            assert np.isfinite(value), (name, case, value)
            assert np.all(np.isfinite(gradient)), (name, case)
            assert value >= 0, (name, case, value)
            if name in BOUNDED:
                assert value <= 1 + 1e-6, (name, case, value)


def test_gradients_do_not_vanish_for_confidently_wrong_logits():
    # Where Keras' focal/probability paths clip and return a zero gradient, these must still push.
    truth = np.ones((1, 2, 2))
    logits = np.full((1, 2, 2, 1), -50.0, dtype="float32")
    for loss in (L.CrossEntropyLoss(from_logits=True), L.FocalLoss(from_logits=True),
                 L.FocalLoss(gamma=0.5, from_logits=True)):
        _, gradient = value_and_gradient(lambda tensor: loss(truth, tensor), logits)
        np.testing.assert_allclose(gradient, -0.25, rtol=1e-5, err_msg=loss.name)  # d/dz of the mean over 4 pixels


@st.composite
def _random_inputs(draw):
    channels = draw(st.sampled_from([1, 2, 3]))
    sequence = draw(st.booleans())
    leading = (draw(st.integers(1, 2)),) + ((draw(st.integers(1, 2)),) if sequence else ())
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([0.1, 3.0, 30.0]))
    rng = np.random.default_rng(seed)
    logits = (scale * rng.normal(size=leading + (height, width, channels))).astype("float32")
    labels = rng.integers(0, max(channels, 2), leading + (height, width))
    ignore = draw(st.booleans())
    if ignore:
        labels = np.where(rng.random(labels.shape) < 0.3, 255, labels)
    name = draw(st.sampled_from(sorted(set(LOSS_FACTORIES) - (BINARY_ONLY if channels > 1 else set()))))
    options = {"from_logits": True, "per_image": draw(st.booleans()), "ignore_index": 255 if ignore else None}
    return name, labels, logits, options


# jax runs eager ops one by one and compiles each for every new shape: fewer examples there (~6 s each).
@settings(max_examples=4 if keras.config.backend() == "jax" else 15, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(_random_inputs())
def test_property_finite_bounded_and_label_form_invariant(inputs):
    name, labels, logits, options = inputs
    loss = LOSS_FACTORIES[name](**options)
    value = float(loss(labels, logits))
    assert np.isfinite(value) and value >= 0, (name, value)
    if name in BOUNDED:
        assert value <= 1 + 1e-6, (name, value)
    # the same labels with a trailing axis, or one-hot (the ignored label as an all-zero row is not a one-hot
    # form, so only without ignoring), give the same value
    assert float(loss(labels[..., None], logits)) == pytest.approx(value, rel=1e-6, abs=1e-6)
    if options["ignore_index"] is None:
        channels = logits.shape[-1]
        one_hot = labels[..., None] if channels == 1 else np.eye(channels)[labels]
        assert float(loss(one_hot, logits)) == pytest.approx(value, rel=1e-5, abs=1e-6)


#: unit roundoff of the half-precision dtypes
HALF_ROUNDOFF = {"float16": 2.0 ** -11, "bfloat16": 2.0 ** -8}


@pytest.mark.parametrize("dtype", sorted(HALF_ROUNDOFF))
def test_half_precision_losses_and_metrics_sum_in_float32(dtype):
    """A loss or metric asked for float16/bfloat16 sums over the batch's pixels in float32: 2 x 192 x 192
    pixels are more than float16 can count (65,504), where Dice gave NaN, cross-entropy 0 and IoU 0.
    The value equals the float32 loss of the same (rounded) inputs to a couple of units of the precision."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (2, 192, 192)).astype("int32")
    probabilities = rng.random((2, 192, 192, 3)).astype("float32")
    probabilities = np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(
        probabilities / probabilities.sum(-1, keepdims=True), dtype), "float32")))  # the half-precision values
    half = keras.ops.cast(probabilities, dtype)
    tolerance = 2 * HALF_ROUNDOFF[dtype]
    for name, factory in LOSS_FACTORIES.items():
        if name in BINARY_ONLY or name == "hausdorff_dt":  # (its distance maps need height^3 floats per image)
            continue
        expected = float(factory()(labels, probabilities))
        value = float(keras.ops.convert_to_numpy(keras.ops.cast(factory(dtype=dtype)(labels, half), "float32")))
        assert value == pytest.approx(expected, rel=tolerance, abs=tolerance), (name, dtype, value, expected)
    for metric in (um_metrics.IoU(3), um_metrics.DiceCoefficient(3), um_metrics.PixelAccuracy()):
        expected = float(keras.ops.convert_to_numpy(metric(labels, probabilities)))
        half_metric = type(metric)(**{**metric.get_config(), "dtype": dtype})
        half_metric.update_state(labels, half)
        value = float(keras.ops.convert_to_numpy(keras.ops.cast(half_metric.result(), "float32")))
        assert value == pytest.approx(expected, rel=tolerance), (metric.name, dtype, value, expected)
