"""Each loss trains a small network (IoU clearly improves); compiled models save and load safely."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import threshold_batch
from universal_models import losses as L
from universal_models import metrics as M

#: (name, loss, n_classes, output activation in the model: False -> the loss gets logits)
TRAINING_CASES = [
    ("cross_entropy", lambda: L.CrossEntropyLoss(from_logits=True), 3, False),
    ("focal", lambda: L.FocalLoss(from_logits=True), 3, False),
    ("dice", lambda: L.DiceLoss(), 3, True),
    ("generalized_dice", lambda: L.GeneralizedDiceLoss(), 3, True),
    ("bce_dice", lambda: L.BCEDiceLoss(from_logits=True), 1, False),
    ("ce_dice", lambda: L.CEDiceLoss(), 3, True),
    ("tversky", lambda: L.TverskyLoss(alpha=0.3, beta=0.7), 3, True),
    ("focal_tversky", lambda: L.FocalTverskyLoss(), 3, True),
    ("fbeta", lambda: L.FBetaLoss(beta=2.0), 3, True),
    ("lovasz_softmax", lambda: L.LovaszLoss(), 3, True),
    ("lovasz_hinge", lambda: L.LovaszLoss(variant="hinge", from_logits=True), 1, False),
    ("hausdorff_dt", lambda: L.HausdorffDTLoss(), 1, True),
]


def tiny_network(n_classes: int, activation: bool) -> keras.Model:
    """Three convolutions, no batch norm (so predictions after 30 steps reflect training, not lagging statistics)."""
    inputs = keras.Input((None, None, 1))
    tensor = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    tensor = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(tensor)
    tensor = keras.layers.Conv2D(n_classes, 1)(tensor)
    if activation:
        tensor = keras.layers.Activation("sigmoid" if n_classes == 1 else "softmax")(tensor)
    return keras.Model(inputs, tensor)


@pytest.mark.parametrize("name,make_loss,n_classes,activation", TRAINING_CASES, ids=[c[0] for c in TRAINING_CASES])
def test_training_improves_iou(name, make_loss, n_classes, activation):
    images, labels = threshold_batch(4, 24, 24, 1, n_classes, blob_radius=2)
    model = tiny_network(n_classes, activation)
    metric = M.IoU(n_classes, from_logits=not activation)

    def iou() -> float:
        metric.reset_state()
        metric.update_state(labels, model.predict(images, verbose=0))
        return float(metric.result())

    before = iou()
    model.compile(optimizer=keras.optimizers.Adam(2e-2), loss=make_loss())
    um.prepare_training(model, images, labels)
    steps = 30  # one epoch over the batch repeated: less per-epoch overhead than 30 epochs
    history = model.fit(np.tile(images, (steps, 1, 1, 1)), np.tile(labels, (steps, 1, 1)), batch_size=4,
                        epochs=1, shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = iou()
    assert after > 0.6 and after > before + 0.3, (name, before, after)


def test_string_names_compile_fit_save_and_load_safely(tmp_path):
    images, labels = threshold_batch(2, 8, 8, 1, 3)
    model = tiny_network(3, activation=True)
    model.compile(optimizer="adam", loss="ce_dice_loss", metrics=list(M.METRIC_ALIASES))
    model.fit(images, labels, epochs=1, verbose=0)
    expected = model.evaluate(images, labels, verbose=0, return_dict=True)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    assert loaded.loss == "ce_dice_loss"  # recompiled from the name, which import universal_models registered
    results = loaded.evaluate(images, labels, verbose=0, return_dict=True)
    assert set(results) == set(expected) == {"loss", *M.METRIC_ALIASES}
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, rel=1e-5), key


def test_every_loss_and_metric_saves_and_loads_safely(tmp_path):
    model = tiny_network(3, activation=True)
    configured_metrics = [
        M.IoU(3, ignore_index=255, average=None),
        M.DiceCoefficient(per_image=True, class_weights=[0, 1, 1]),
        M.PixelAccuracy(3),
        M.FBeta(beta=2.0),
    ]
    for alias, cls in L.LOSS_ALIASES.items():
        for loss in (alias, cls(class_weights=[1, 2, 3], per_image=True)):
            model.compile(optimizer="adam", loss=loss, metrics=configured_metrics)
            path = tmp_path / f"{alias}.keras"
            model.save(path)
            loaded = keras.saving.load_model(path, safe_mode=True)
            if isinstance(loss, str):
                assert loaded.loss == alias and isinstance(keras.losses.get(loaded.loss), cls)
            else:
                assert type(loaded.loss) is cls and loaded.loss.get_config() == loss.get_config(), alias
            saved_metrics = [keras.saving.deserialize_keras_object(config, safe_mode=True)
                             for config in loaded.get_compile_config()["metrics"]]
            assert [(type(m), m.get_config()) for m in saved_metrics] == [
                (type(m), m.get_config()) for m in configured_metrics], alias
