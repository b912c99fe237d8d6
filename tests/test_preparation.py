"""prepare_training: training variables before the first step, same numbers, one trace on TensorFlow."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import threshold_batch


def _compiled_unet(seed: int = 0):
    keras.utils.set_random_seed(seed)
    model, _, _ = um.get_model("unet", 32, 32, 1, 3, base_filters=4, depth=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=[um.metrics.IoU(3)])
    return model


def _count_traces(model) -> list:
    """Count the calls of ``model.train_step``: on TensorFlow it runs only while the step is traced."""
    calls = []
    step = model.train_step

    def counted(*args):  # (data) on torch and TensorFlow, (state, data) on JAX
        calls.append(1)
        return step(*args)

    model.train_step = counted
    return calls


def _steps(model, images, labels, steps=3):
    return [float(model.train_on_batch(images, labels, return_dict=True)["loss"]) for _ in range(steps)]


def test_prepared_model_trains_to_the_same_numbers_and_changes_nothing_before():
    images, labels = threshold_batch(4, 32, 32, 1, 3)
    plain, prepared = _compiled_unet(), _compiled_unet()
    prepared.set_weights(plain.get_weights())
    before = [np.copy(weight) for weight in prepared.get_weights()]
    plain_traces, prepared_traces = _count_traces(plain), _count_traces(prepared)

    metric_variables = len(prepared.metrics_variables)
    assert um.prepare_training(prepared, images, labels) is prepared
    assert prepared.optimizer.built and int(prepared.optimizer.iterations) == 0
    assert len(prepared.metrics_variables) > metric_variables  # the IoU's confusion matrix exists now
    for weight, original in zip(prepared.get_weights(), before):
        np.testing.assert_array_equal(weight, original)
    variables = len(prepared.optimizer.variables)
    um.prepare_training(prepared, images, labels)  # a second call changes nothing
    assert len(prepared.optimizer.variables) == variables

    plain_losses, prepared_losses = _steps(plain, images, labels), _steps(prepared, images, labels)
    np.testing.assert_allclose(prepared_losses, plain_losses, rtol=1e-6)
    for ours, theirs in zip(prepared.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    if keras.config.backend() == "tensorflow":
        # Keras creates the variables inside the first traced step there, and TensorFlow traces it again
        print("traces of the training step: plain", len(plain_traces), "prepared", len(prepared_traces))
        assert len(prepared_traces) == 1, prepared_traces
        assert len(plain_traces) >= len(prepared_traces), plain_traces


def test_uncompiled_model_is_refused_with_the_fix():
    model, _, _ = um.get_model("testnet", 32, 32, 1, 2, base_filters=4)
    with pytest.raises(ValueError, match=r"call model.compile\(optimizer=..., loss=...\) first"):
        um.prepare_training(model, np.zeros((1, 32, 32, 1), "float32"), np.zeros((1, 32, 32), "int32"))
