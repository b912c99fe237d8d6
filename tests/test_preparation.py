"""prepare_training: training variables before the first step, same numbers, one trace on TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest

import keras
import universal_models as um

from tests.helpers import threshold_batch


def _compiled_unet(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model, _, _ = um.get_model("unet", 32, 32, 1, 3, base_filters=4, depth=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=[um.metrics.IoU(3)])
    return model


def _steps(model, images, labels, steps=3):
    return [float(model.train_on_batch(images, labels, return_dict=True)["loss"]) for _ in range(steps)]


def test_prepared_model_trains_to_the_same_numbers_and_changes_nothing_before():
    images, labels = threshold_batch(4, 32, 32, 1, 3)
    plain, prepared = _compiled_unet(), _compiled_unet()
    prepared.set_weights(plain.get_weights())
    before = [np.copy(weight) for weight in prepared.get_weights()]

    assert um.prepare_training(prepared, images, labels) is prepared
    assert prepared.optimizer.built and int(prepared.optimizer.iterations) == 0
    for weight, original in zip(prepared.get_weights(), before):
        np.testing.assert_array_equal(weight, original)
    um.prepare_training(prepared, images, labels)  # a second call changes nothing either
    assert len(prepared.optimizer.variables) == len(_prepared_optimizer_variables(images, labels))

    plain_losses, prepared_losses = _steps(plain, images, labels), _steps(prepared, images, labels)
    np.testing.assert_allclose(prepared_losses, plain_losses, rtol=1e-6)
    for ours, theirs in zip(prepared.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def _prepared_optimizer_variables(images, labels):
    model = _compiled_unet()
    um.prepare_training(model, images, labels)
    return model.optimizer.variables


def test_uncompiled_model_is_refused_with_the_fix():
    model, _, _ = um.get_model("testnet", 32, 32, 1, 2, base_filters=4)
    with pytest.raises(ValueError, match=r"call model.compile\(optimizer=..., loss=...\) first"):
        um.prepare_training(model, np.zeros((1, 32, 32, 1), "float32"), np.zeros((1, 32, 32), "int32"))


@pytest.mark.skipif(keras.config.backend() != "tensorflow", reason="the double trace is TensorFlow's")
def test_tensorflow_traces_a_prepared_training_step_once():
    images, labels = threshold_batch(4, 32, 32, 1, 3)
    traces = {}
    for name, prepare in (("plain", False), ("prepared", True)):
        model = _compiled_unet()
        step = model.train_step
        counter = traces.setdefault(name, [])

        def counted(data, step=step, counter=counter):
            counter.append(1)  # runs only while TensorFlow traces the step
            return step(data)

        model.train_step = counted
        if prepare:
            um.prepare_training(model, images, labels)
        _steps(model, images, labels, steps=2)
    print("traces of the training step:", {name: len(calls) for name, calls in traces.items()})
    assert len(traces["prepared"]) == 1, traces
    assert len(traces["plain"]) >= len(traces["prepared"]), traces
