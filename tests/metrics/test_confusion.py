"""Stateful metrics: hand tables, accumulation over batches, references, per image, weights, errors."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.losses import reference as R
from tests.losses.cases import CONFIGURATIONS, configurations_for_backend, make_case
from tests.losses.test_values import BINARY_MIXED, BINARY_TRUTH, MULTI_LABELS, MULTI_PROBABILITIES
from universal_models import metrics as M


def _result(metric, y_true, y_pred, **update):
    metric.update_state(y_true, y_pred, **update)
    return np.asarray(keras.ops.convert_to_numpy(metric.result()))


def test_hand_computed_tables():
    # binary: thresholded prediction [[1, 0], [0, 1]] vs truth [[1, 0], [1, 1]]: TP 2, FP 0, FN 1, TN 1
    binary = [
        (M.IoU(), 2 / 3), (M.DiceCoefficient(), 4 / 5), (M.FBeta(beta=2.0), 5 * 2 / (5 * 2 + 4 * 1)),
        (M.PixelAccuracy(), 3 / 4),
        (M.IoU(threshold=0.3), 3 / 4),  # every probability exceeds .3: TP 3, FP 1, FN 0
    ]
    for metric, expected in binary:
        assert _result(metric, BINARY_TRUTH, BINARY_MIXED) == pytest.approx(expected), metric.name
    # three classes: argmax a->0, b->1, c->0 (true 1), d->2. Per class IoU 1/2, 1/2, 1; Dice 2/3, 2/3, 1
    multi = [
        (M.IoU(), (0.5 + 0.5 + 1) / 3), (M.DiceCoefficient(), (2 / 3 + 2 / 3 + 1) / 3), (M.PixelAccuracy(), 3 / 4),
        (M.IoU(average=None), [0.5, 0.5, 1.0]), (M.IoU(class_weights=[0, 1, 3]), (0.5 + 3 * 1.0) / 4),
        (M.FBeta(beta=2.0, average=None), [5 / (5 + 0 + 1), 5 / (5 + 4 + 0), 1.0]),
        # class-balanced accuracy: weights 1 / frequency (1, 2, 1 pixels) -> mean recall (1 + 1/2 + 1) / 3
        (M.PixelAccuracy(class_weights=[1, 0.5, 1]), (1 + 0.5 + 1) / 3),
        (M.IoU(ignore_index=1), (1.0 + 1.0) / 2),  # b, c ignored: class 1 absent, left out of the mean
    ]
    for metric, expected in multi:
        np.testing.assert_allclose(_result(metric, MULTI_LABELS, MULTI_PROBABILITIES), expected, rtol=1e-6,
                                   err_msg=metric.name)


def test_accumulates_across_batches_and_resets():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, (6, 5, 4))
    logits = rng.normal(0, 1, (6, 5, 4, 3)).astype("float32")
    for metric in (M.IoU(), M.DiceCoefficient(per_image=True), M.PixelAccuracy(ignore_index=2), M.FBeta(beta=0.5),
                   M.IoU(average=None, from_logits=True)):
        whole = _result(metric, labels, logits)
        metric.reset_state()
        for start in (0, 2, 4):  # three batches (equal sizes: jax reuses the compiled operations)
            metric.update_state(labels[start : start + 2], logits[start : start + 2])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(metric.result()), whole, rtol=1e-6,
                                   err_msg=metric.name)
        metric.reset_state()
        assert not np.any(keras.ops.convert_to_numpy(metric.true_positives))


def test_matches_reference_and_keras_mean_iou():
    for configuration in configurations_for_backend():
        case = make_case(configuration, seed=CONFIGURATIONS.index(configuration))
        prepared = case.reference_inputs()
        options = {key: case.options[key] for key in ("from_logits", "ignore_index")}
        weights = case.options.get("class_weights")
        for kind, metric in (("iou", M.IoU(**options, class_weights=weights)),
                             ("dice", M.DiceCoefficient(**options, class_weights=weights)),
                             ("fbeta", M.FBeta(beta=2.0, **options, class_weights=weights))):
            expected = R.region_metric(prepared, kind, beta=2.0, weights=weights)
            assert _result(metric, case.y_true, case.y_pred) == pytest.approx(expected, rel=1e-5), (
                kind, configuration.describe())
        accuracy = M.PixelAccuracy(**options, class_weights=weights)
        expected = R.pixel_accuracy(prepared, weights=weights)
        assert _result(accuracy, case.y_true, case.y_pred) == pytest.approx(expected, rel=1e-5), configuration
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, (3, 6, 5))
    probabilities = rng.random((3, 6, 5, 4)).astype("float32")
    keras_metric = keras.metrics.MeanIoU(num_classes=4)
    keras_metric.update_state(labels, probabilities.argmax(-1))
    assert _result(M.IoU(), labels, probabilities) == pytest.approx(float(keras_metric.result()), rel=1e-6)


def test_per_image_averages_image_scores_over_the_images_where_a_class_occurs():
    labels = np.array([[[0, 1], [1, 1]], [[0, 0], [0, 0]]])
    predicted = np.eye(2, dtype="float32")[[[[0, 1], [0, 1]], [[0, 0], [0, 0]]]]
    # image 1: background 1/2, foreground 2/3; image 2: background 1, foreground absent
    np.testing.assert_allclose(_result(M.IoU(per_image=True, average=None), labels, predicted), [0.75, 2 / 3])
    assert _result(M.IoU(per_image=True), labels, predicted) == pytest.approx((0.75 + 2 / 3) / 2)
    assert _result(M.PixelAccuracy(per_image=True), labels, predicted) == pytest.approx((0.75 + 1.0) / 2)


def test_empty_truth_and_prediction_score_one_and_sample_weights_weigh_images():
    empty = np.zeros((2, 3, 3))
    nothing = np.zeros((2, 3, 3, 1), "float32")
    for metric in (M.IoU(), M.DiceCoefficient(per_image=True), M.FBeta(average=None)):
        np.testing.assert_allclose(_result(metric, empty, nothing), 1.0, err_msg=metric.name)
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, (3, 4, 4))
    probabilities = rng.random((3, 4, 4, 3)).astype("float32")
    weighted = _result(M.IoU(), labels, probabilities, sample_weight=np.array([2.0, 1.0, 0.0]))
    repeated = _result(M.IoU(), labels[[0, 0, 1]], probabilities[[0, 0, 1]])
    assert weighted == pytest.approx(repeated, rel=1e-6)


def test_sequences_count_like_their_frames():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 3, (2, 3, 4, 4))
    probabilities = rng.random((2, 3, 4, 4, 3)).astype("float32")
    for make in (lambda: M.IoU(per_image=True), lambda: M.PixelAccuracy()):
        frames = _result(make(), labels.reshape(6, 4, 4), probabilities.reshape(6, 4, 4, 3))
        assert _result(make(), labels, probabilities) == pytest.approx(frames, rel=1e-6)


def test_bad_options_and_inputs_are_refused():
    for make, message in [
        (lambda: M.IoU(n_classes=0), "n_classes must be an integer >= 1"),
        (lambda: M.IoU(average="micro"), "average must be one of"),
        (lambda: M.IoU(threshold=1.0), "threshold must be < 1"),
        (lambda: M.FBeta(beta=0), "beta must be > 0"),
        (lambda: M.DiceCoefficient(3, class_weights=[1, 1]), "give 3 weights"),
    ]:
        with pytest.raises(ValueError, match=message):
            make()
    metric = M.IoU()
    metric.update_state(np.zeros((1, 2, 2)), np.zeros((1, 2, 2, 3), "float32"))
    with pytest.raises(ValueError, match="built for 3 channels"):
        metric.update_state(np.zeros((1, 2, 2)), np.zeros((1, 2, 2, 2), "float32"))


def test_config_round_trip_and_string_names():
    for metric in (M.IoU(4, ignore_index=255, average=None), M.DiceCoefficient(per_image=True),
                   M.PixelAccuracy(2, class_weights=[1, 3]), M.FBeta(beta=2.0, threshold=0.3, from_logits=True)):
        rebuilt = type(metric).from_config(metric.get_config())
        assert rebuilt.get_config() == metric.get_config()
    for alias, cls in M.METRIC_ALIASES.items():
        metric = keras.metrics.get(alias)
        assert isinstance(metric, cls) and metric.name == alias
