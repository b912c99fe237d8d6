"""The shared input convention: sequences, ignored pixels, class weights, errors, configs and string names."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from universal_models import losses as L

from .cases import BINARY_ONLY, LOSS_FACTORIES


def _inputs(channels: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, max(channels, 2), (5, 4, 4))
    logits = rng.normal(0, 2, (5, 4, 4, channels)).astype("float32")
    return labels, logits


@pytest.mark.parametrize("channels", [1, 3])
def test_sequences_are_scored_like_their_frames(channels):
    labels, logits = _inputs(channels)
    for name, factory in LOSS_FACTORIES.items():
        if channels > 1 and name in BINARY_ONLY:
            continue
        # (pooled sequences are compared with the references in test_reference.py)
        per_frame = factory(from_logits=True, per_image=True, reduction=None)
        frames = np.asarray(keras.ops.convert_to_numpy(per_frame(labels, logits)))
        sequence = np.asarray(keras.ops.convert_to_numpy(per_frame(labels[None], logits[None])))
        assert frames.shape == (5,) and sequence.shape == (1, 5), name
        np.testing.assert_allclose(sequence[0], frames, rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("channels", [1, 3])
def test_predictions_on_ignored_pixels_do_not_matter(channels):
    labels, logits = _inputs(channels, seed=1)
    labels = labels.copy()
    labels[:, 0, :] = 255
    changed = logits.copy()
    changed[:, 0, :, :] = np.random.default_rng(2).normal(0, 5, changed[:, 0, :, :].shape)
    for name, factory in LOSS_FACTORIES.items():
        if (channels > 1 and name in BINARY_ONLY) or name == "hausdorff_dt":
            continue  # the distance maps of the prediction see every pixel (documented)
        loss = factory(from_logits=True, ignore_index=255)
        assert float(loss(labels, changed)) == pytest.approx(float(loss(labels, logits)), rel=1e-5), name


def test_one_hot_targets_ignore_a_channel_like_labels_ignore_a_value():
    labels, logits = _inputs(3, seed=3)
    one_hot = np.eye(3, dtype="float32")[labels]
    for name in ("cross_entropy", "dice", "lovasz", "hausdorff_dt"):
        with_labels = LOSS_FACTORIES[name](from_logits=True, ignore_index=1)(labels, logits)
        with_one_hot = LOSS_FACTORIES[name](from_logits=True, ignore_index=1)(one_hot, logits)
        assert float(with_one_hot) == pytest.approx(float(with_labels), rel=1e-6), name


def test_class_weights_are_normalised():
    labels, logits = _inputs(3, seed=4)
    for cls in (L.CrossEntropyLoss, L.DiceLoss, L.TverskyLoss, L.LovaszLoss, L.FocalLoss):
        equal = [float(cls(from_logits=True, class_weights=w)(labels, logits)) for w in (None, [1, 1, 1], [7, 7, 7])]
        assert equal == pytest.approx([equal[0]] * 3, rel=1e-6), cls.__name__
        scaled = [float(cls(from_logits=True, class_weights=w)(labels, logits)) for w in ([1, 2, 3], [10, 20, 30])]
        assert scaled[0] == pytest.approx(scaled[1], rel=1e-6), cls.__name__
    assert L.DiceLoss(class_weights=[1, 3]).class_weights == (0.25, 0.75)


BAD_OPTIONS = [
    (lambda: L.DiceLoss(class_weights=[1, -1, 2]), "non-negative"),
    (lambda: L.DiceLoss(class_weights=[0, 0]), "not all zero"),
    (lambda: L.DiceLoss(class_weights="abc"), "sequence of numbers"),
    (lambda: L.DiceLoss(weighting="square"), "weighting must be one of"),
    (lambda: L.DiceLoss(smooth=-1), "smooth must be >= 0"),
    (lambda: L.FocalLoss(gamma=-1), "gamma must be >= 0"),
    (lambda: L.FocalLoss(alpha=1.5), "alpha must be >= 0.0 and <= 1.0"),
    (lambda: L.FocalTverskyLoss(gamma=0), "gamma must be > 0"),
    (lambda: L.LovaszLoss(variant="sigmoid"), "variant must be one of"),
    (lambda: L.CrossEntropyLoss(from_logits="yes"), "from_logits must be True or False"),
    (lambda: L.CrossEntropyLoss(ignore_index=2.5), "ignore_index must be an integer"),
    (lambda: L.HausdorffDTLoss(alpha=0), "alpha must be > 0"),
]


@pytest.mark.backend_independent
def test_bad_options_are_refused():
    for make, message in BAD_OPTIONS:
        with pytest.raises(ValueError, match=message):
            make()


BAD_INPUTS = [
    (L.DiceLoss(), np.zeros((1, 4, 4, 2)), np.zeros((1, 4, 4, 3)), "does not fit"),
    (L.DiceLoss(), np.zeros((1, 5, 4)), np.zeros((1, 4, 4, 3)), "differ in batch or image size"),
    (L.DiceLoss(), np.zeros((4,)), np.zeros((4, 3)), "Add the channel axis"),
    (L.DiceLoss(ignore_index=255), np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 3)), "must name one of the 3"),
    (L.DiceLoss(class_weights=[1, 1]), np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 3)), "give 3 weights"),
    (L.CrossEntropyLoss(class_weights=[1]), np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 1)), "background, foreground"),
    (L.LovaszLoss(variant="hinge"), np.zeros((1, 4, 4)), np.zeros((1, 4, 4, 3)), "one-channel"),
    (L.HausdorffDTLoss(), np.zeros((1, 4)), np.zeros((1, 4, 3)), "needs images"),
]


def test_bad_inputs_are_refused_with_a_clear_message():
    for loss, y_true, y_pred, message in BAD_INPUTS:
        with pytest.raises(ValueError, match=message):
            loss(y_true, y_pred)


def test_config_round_trip_and_keras_serialisation():
    labels, logits = _inputs(3, seed=5)
    losses = [
        L.DiceLoss(squared=False, smooth=0.5, weighting="inverse_square", from_logits=True, class_weights=[1, 2, 3]),
        L.GeneralizedDiceLoss(smooth=0.1, from_logits=True, per_image=True),
        L.BCEDiceLoss(ce_weight=0.3, dice_weight=2.0, squared=False, from_logits=True, ignore_index=2),
        L.CEDiceLoss(ce_weight=0.5, smooth=0.0, from_logits=True),
        L.CrossEntropyLoss(from_logits=True, class_weights=[3, 1, 1]),
        L.FocalLoss(gamma=1.5, alpha=0.5, from_logits=True),
        L.TverskyLoss(alpha=0.2, beta=0.8, from_logits=True),
        L.FocalTverskyLoss(gamma=2.0, from_logits=True),
        L.FBetaLoss(beta=0.5, from_logits=True),
        L.LovaszLoss(from_logits=True, per_image=True),
        L.HausdorffDTLoss(alpha=1.0, from_logits=True),
    ]
    assert {type(loss) for loss in losses} == set(L.LOSS_ALIASES.values())
    for loss in losses:
        rebuilt = type(loss).from_config(loss.get_config())
        assert rebuilt.get_config() == loss.get_config()
        deserialised = keras.losses.deserialize(keras.losses.serialize(loss))
        assert type(deserialised) is type(loss) and deserialised.get_config() == loss.get_config()
        assert float(deserialised(labels, logits)) == pytest.approx(float(loss(labels, logits)), rel=1e-6)


def test_string_names_give_instances():
    for alias, cls in L.LOSS_ALIASES.items():
        loss = keras.losses.get(alias)
        assert isinstance(loss, cls), alias


# -- labels outside the classes -------------------------------------------------------------------------------
def _bad_labels(label, channels: int = 2):
    labels = np.zeros((2, 4, 4), "int32")
    labels[1, 2, 3] = label
    return labels, np.full((2, 4, 4, channels), 1.0 / channels, "float32")


def _every_loss_and_metric(channels: int):
    from universal_models import metrics as M

    made = {name: factory() for name, factory in LOSS_FACTORIES.items() if channels == 1 or name not in BINARY_ONLY}
    for name, metric in (("iou", M.IoU), ("dice_coefficient", M.DiceCoefficient), ("accuracy", M.PixelAccuracy)):
        made[name] = metric()
    return made


def _call(function, labels, prediction):
    if isinstance(function, keras.metrics.Metric):
        function.update_state(labels, prediction)
        return function.result()
    return function(labels, prediction)


@pytest.mark.parametrize("label", [5, -1, 255])
def test_labels_outside_the_classes_are_refused_by_every_loss_and_metric(label):
    labels, prediction = _bad_labels(label)
    for function in _every_loss_and_metric(2).values():
        with pytest.raises(ValueError, match=rf"holds the value {label} \(1 pixel\) outside the classes 0 \.\.\. 1 "
                                             r"of a prediction with 2 channels.*ignore_index"):
            _call(function, labels, prediction)
    for loss in (L.CrossEntropyLoss(ignore_index=label), L.DiceLoss(ignore_index=label)):  # ignored: allowed
        assert np.isfinite(float(keras.ops.convert_to_numpy(loss(labels, prediction))))


def test_one_channel_targets_must_lie_in_zero_to_one():
    labels, prediction = _bad_labels(255, channels=1)
    for function in _every_loss_and_metric(1).values():
        with pytest.raises(ValueError, match=r"holds the value 255 .* outside \[0, 1\].*divide by 255"):
            _call(function, labels, prediction)
    soft = np.full((2, 4, 4), 0.3, "float32")
    assert np.isfinite(float(keras.ops.convert_to_numpy(L.DiceLoss()(soft, prediction))))
    assert np.isfinite(float(keras.ops.convert_to_numpy(L.BCEDiceLoss(ignore_index=255)(labels, prediction))))


def _traced(function):
    """``function`` compiled as the backend's training step would be: jit / tf.function; torch runs eagerly."""
    backend = keras.config.backend()
    if backend == "jax":
        import jax

        return jax.jit(function)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    return function


def test_traced_calls_with_labels_outside_the_classes_give_nan(monkeypatch):
    """A traced graph cannot raise on values: the loss becomes NaN, for the non-finite guard to stop on."""
    from universal_models.losses import _convention

    if keras.config.backend() == "torch":  # eager: values are read; tensors on a GPU take the traced path
        monkeypatch.setattr(_convention, "_readable_now", lambda tensor: False)
    labels, prediction = _bad_labels(5)
    good = np.zeros_like(labels)
    for name, factory in LOSS_FACTORIES.items():
        if name in BINARY_ONLY:
            continue
        loss = _traced(lambda y_true, y_pred, loss=factory(): loss(y_true, y_pred))
        assert np.isnan(float(keras.ops.convert_to_numpy(loss(labels, prediction)))), name
        assert np.isfinite(float(keras.ops.convert_to_numpy(loss(good, prediction)))), name
    monkeypatch.setattr(_convention, "_readable_now", lambda tensor: False)  # metrics update eagerly here
    for name, function in _every_loss_and_metric(2).items():
        if isinstance(function, keras.metrics.Metric):
            assert np.isnan(float(keras.ops.convert_to_numpy(_call(function, labels, prediction)))), name
