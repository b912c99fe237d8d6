"""The layers' fast paths give the same numbers as their generic ``keras.ops`` code.

On the torch backend :class:`BatchNormalization`, :class:`MaxPoolingWithArgmax2D`
and :class:`MaxUnpooling2D` call fused PyTorch kernels, the output
:class:`Activation` computes a few-class softmax over the channels-last view,
and :class:`ConvLSTM2D` unrolls short sequences (on every backend); these tests compare
them with Keras' own layer, with a NumPy statement of the layer's contract, and
with the same layer with the fast paths switched off (outputs, gradients,
moving statistics, and a few training steps of a whole model). On the other
backends the same tests check the generic code against the same expectations.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import threshold_batch, to_backend, to_numpy
from universal_models.layers.activation import Activation, fast_softmax_applies
from universal_models.layers.fast_paths import fast_paths_enabled, use_fast_paths
from universal_models.layers.normalization import BatchNormalization
from universal_models.layers.pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from universal_models.layers.recurrent import MAX_UNROLLED_STEPS, ConvLSTM2D, unrolls

torch_only = pytest.mark.skipif(keras.config.backend() != "torch", reason="the fast paths exist on torch only")


def _no_gradients():
    """``torch.no_grad()`` on torch (where the inference-only fast paths apply), else nothing."""
    import contextlib

    if keras.config.backend() != "torch":
        return contextlib.nullcontext()
    import torch

    return torch.no_grad()


def _torch_gradients(function, array, variables=()):
    """Gradients of ``sum(function(input) * weights)`` with respect to the input and the
    Keras ``variables`` (torch backend)."""
    import torch

    tensor = to_backend(array, requires_grad=True)
    output = function(tensor)
    weights = to_backend(np.random.default_rng(7).normal(size=tuple(output.shape)).astype("float32"))
    gradients = torch.autograd.grad((output * weights).sum(), [tensor] + [variable.value for variable in variables])
    return [to_numpy(gradient) for gradient in gradients]


# -- switch --------------------------------------------------------------------------
@pytest.mark.backend_independent
def test_switch_restores_previous_state():
    assert fast_paths_enabled()
    with use_fast_paths(False):
        assert not fast_paths_enabled()
        with use_fast_paths(True):
            assert fast_paths_enabled()
        assert not fast_paths_enabled()
    assert fast_paths_enabled()


# -- batch normalisation -----------------------------------------------------------------
@pytest.mark.parametrize("shape", [(4, 6, 5, 3), (2, 3, 4, 4, 2), (7, 5)])
def test_batch_norm_matches_keras_layer(shape):
    images = np.random.default_rng(0).normal(2.0, 3.0, shape).astype("float32")
    ours, theirs = BatchNormalization(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    ours.build(shape)
    theirs.build(shape)
    gamma = np.linspace(0.5, 1.5, shape[-1]).astype("float32")
    for layer in (ours, theirs):
        layer.gamma.assign(gamma)
        layer.beta.assign(-gamma)
    for training in (True, True, False):  # two updates of the moving statistics, then inference
        np.testing.assert_allclose(to_numpy(ours(images, training=training)),
                                   to_numpy(theirs(images, training=training)), rtol=1e-5, atol=2e-5)
        for mine, reference in zip(ours.weights, theirs.weights):
            np.testing.assert_allclose(to_numpy(mine), to_numpy(reference), rtol=1e-5, atol=1e-6, err_msg=mine.name)


def test_batch_norm_single_value_per_channel_falls_back():
    images = np.arange(3, dtype="float32").reshape(1, 3)
    out = to_numpy(BatchNormalization()(images, training=True))
    np.testing.assert_allclose(out, np.zeros_like(images), atol=1e-6)


@torch_only
def test_batch_norm_gradients_match_keras_layer():
    images = np.random.default_rng(1).normal(size=(3, 5, 4, 6)).astype("float32")
    ours, theirs = BatchNormalization(), keras.layers.BatchNormalization()
    gradients = []
    for layer in (ours, theirs):
        layer.build(images.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 6).astype("float32"))
        layer.beta.assign(np.linspace(-1.0, 1.0, 6).astype("float32"))
        gradients.append(_torch_gradients(lambda x, layer=layer: layer(x, training=True), images,
                                          [layer.gamma, layer.beta]))
    for mine, reference in zip(*gradients):
        np.testing.assert_allclose(mine, reference, rtol=1e-4, atol=1e-5)


def test_batch_norm_config_round_trip_and_keras_weights():
    layer = BatchNormalization(momentum=0.8, epsilon=1e-4, center=False, name="block_bn")
    clone = BatchNormalization.from_config(layer.get_config())
    assert (clone.momentum, clone.epsilon, clone.center, clone.name) == (0.8, 1e-4, False, "block_bn")
    clone.build((None, 4))
    assert [w.name for w in clone.weights] == ["gamma", "moving_mean", "moving_variance"]


# -- output activation ---------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 5, 6, 2), (2, 4, 5, 3), (2, 3, 4, 4, 7), (2, 4, 4, 8), (2, 3, 3, 21), (5, 3)])
@pytest.mark.parametrize("activation", ["softmax", "sigmoid"])
def test_activation_matches_keras_layer(shape, activation):
    logits = np.random.default_rng(4).normal(0.0, 4.0, shape).astype("float32")
    expected = to_numpy(keras.layers.Activation(activation)(logits))
    with _no_gradients():  # the fast path is for inference
        np.testing.assert_allclose(to_numpy(Activation(activation)(logits)), expected, rtol=1e-6, atol=1e-7)
    if keras.config.backend() == "torch":  # with gradients recorded (training): Keras' code, bit for bit
        ours = _torch_gradients(Activation(activation), logits)[0]
        keras_layer = _torch_gradients(keras.layers.Activation(activation), logits)[0]
        np.testing.assert_array_equal(ours, keras_layer)


@pytest.mark.parametrize("classes,expected", [(1, False), (2, True), (7, True), (8, False), (21, False)])
def test_fast_softmax_only_for_few_classes_on_torch(classes, expected):
    """2-7 classes of a rank >= 3 tensor on torch, without gradients: the vectorised path; else Keras' code."""
    images = keras.ops.zeros((1, 4, 4, classes))
    on_torch = keras.config.backend() == "torch"
    with _no_gradients():
        assert fast_softmax_applies(Activation("softmax"), images) is (expected and on_torch)
        assert not fast_softmax_applies(Activation("sigmoid"), images)
        assert not fast_softmax_applies(Activation("softmax"), keras.ops.zeros((4, classes)))
        with use_fast_paths(False):
            assert not fast_softmax_applies(Activation("softmax"), images)
    # with gradients recorded (training) Keras' own softmax runs, so training is unchanged
    assert not fast_softmax_applies(Activation("softmax"), images)


@pytest.mark.backend_independent  # serialisation: the layer's fast path is exercised above
def test_activation_config_and_saved_model_round_trip(tmp_path):
    layer = Activation("softmax", dtype="float32", name="classifier_softmax")
    clone = Activation.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model, _, _ = um.get_model("testnet", 16, 16, 3, 3)
    assert isinstance(model.layers[-1], Activation)
    images = np.random.default_rng(5).random((2, 16, 16, 3), dtype=np.float32)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded.layers[-1]) is Activation
    np.testing.assert_allclose(to_numpy(loaded(images)), to_numpy(model(images)), atol=1e-6)


# -- recurrence ----------------------------------------------------------------------
def _conv_lstm_pair():
    """Ours (in a model accepting any sequence length) and Keras' layer with the same weights."""
    options = {"filters": 3, "kernel_size": 3, "padding": "same", "return_sequences": True}
    inputs = keras.Input((None, 6, 5, 2))
    ours = ConvLSTM2D(**options)
    model = keras.Model(inputs, ours(inputs))
    theirs = keras.layers.ConvLSTM2D(**options)
    reference = keras.Model(inputs, theirs(inputs))
    rng = np.random.default_rng(6)
    theirs.set_weights([rng.normal(0.0, 0.4, w.shape).astype("float32") for w in ours.get_weights()])
    ours.set_weights(theirs.get_weights())
    return model, reference, ours


@pytest.mark.parametrize("steps", [1, 3, MAX_UNROLLED_STEPS + 4])
def test_conv_lstm_matches_keras_layer_unrolled_or_looped(steps):
    model, reference, layer = _conv_lstm_pair()
    assert unrolls(layer, steps) is (steps <= MAX_UNROLLED_STEPS)
    sequences = np.random.default_rng(steps).normal(size=(2, steps, 6, 5, 2)).astype("float32")
    np.testing.assert_allclose(to_numpy(model(sequences)), to_numpy(reference(sequences)), rtol=1e-5, atol=1e-6)
    if keras.config.backend() == "torch":
        ours = _torch_gradients(model, sequences, model.trainable_weights)
        theirs = _torch_gradients(reference, sequences, reference.trainable_weights)
        for fast, generic in zip(ours, theirs):
            np.testing.assert_allclose(fast, generic, rtol=1e-4, atol=1e-5)


def test_conv_lstm_training_step_matches_keras_layer():
    """One SGD step through fit: same loss and weights as Keras' layer (traced on JAX and TensorFlow)."""
    model, reference, _ = _conv_lstm_pair()
    sequences = np.random.default_rng(8).normal(size=(2, 4, 6, 5, 2)).astype("float32")
    targets = np.random.default_rng(9).normal(size=(2, 4, 6, 5, 3)).astype("float32")
    results = []
    for network in (model, reference):
        network.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        loss = network.fit(sequences, targets, batch_size=2, epochs=1, verbose=0).history["loss"][0]
        results.append((loss, network.get_weights()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for ours, theirs in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-6)


def test_conv_lstm_unroll_choice_and_config():
    layer = ConvLSTM2D(2, 3, padding="same")
    assert not unrolls(layer, None) and not unrolls(layer, MAX_UNROLLED_STEPS + 1) and unrolls(layer, 2)
    with use_fast_paths(False):
        assert not unrolls(layer, 2)
    assert unrolls(ConvLSTM2D(2, 3, unroll=True), None)  # an explicit unroll=True is kept
    config = layer.get_config()
    assert config["unroll"] is False and ConvLSTM2D.from_config(config).get_config() == config
    model, _, _ = um.get_model("lstm_unet", 16, 16, 1, 2, base_filters=4, depth=2)
    assert sum(isinstance(item, ConvLSTM2D) for item in model.layers) == 1


# -- argmax pooling ------------------------------------------------------------------
def _numpy_pool(images: np.ndarray, pool: int):
    batch, height, width, channels = images.shape
    windows = images.reshape(batch, height // pool, pool, width // pool, pool, channels)
    windows = windows.transpose(0, 1, 3, 2, 4, 5).reshape(batch, height // pool, width // pool, pool * pool, channels)
    return windows.max(axis=3), windows.argmax(axis=3).astype("int32")


def _numpy_unpool(values: np.ndarray, indices: np.ndarray, pool: int) -> np.ndarray:
    batch, height, width, channels = values.shape
    out = np.zeros((batch, height * pool, width * pool, channels), values.dtype)
    b, i, j, c = np.indices(values.shape)
    out[b, i * pool + indices // pool, j * pool + indices % pool, c] = values
    return out


@pytest.mark.parametrize("pool,shape", [(2, (3, 8, 12, 5)), (3, (2, 9, 6, 4)), (2, (1, 2, 2, 1))])
@pytest.mark.parametrize("fast", [True, False])
def test_argmax_pooling_matchesto_numpy(pool, shape, fast):
    images = np.random.default_rng(2).normal(size=shape).astype("float32")
    images[0, :pool, :pool, 0] = 1.5  # a tie: the first position wins
    expected_values, expected_indices = _numpy_pool(images, pool)
    with use_fast_paths(fast):
        values, indices = MaxPoolingWithArgmax2D(pool)(images)
        unpooled = MaxUnpooling2D(pool)([values, indices])
    assert keras.backend.standardize_dtype(indices.dtype) == "int32"
    np.testing.assert_array_equal(to_numpy(values), expected_values)
    np.testing.assert_array_equal(to_numpy(indices), expected_indices)
    np.testing.assert_array_equal(to_numpy(unpooled), _numpy_unpool(expected_values, expected_indices, pool))


@torch_only
@pytest.mark.parametrize("pool", [2, 3])
def test_argmax_pooling_gradients_match_generic_path(pool):
    images = np.random.default_rng(3).normal(size=(2, 4 * pool, 2 * pool, 3)).astype("float32")

    def round_trip(tensor):
        values, indices = MaxPoolingWithArgmax2D(pool)(tensor)
        return MaxUnpooling2D(pool)([values * 2.0, indices])

    fast = _torch_gradients(round_trip, images)[0]
    with use_fast_paths(False):
        generic = _torch_gradients(round_trip, images)[0]
    np.testing.assert_array_equal(fast, generic)


# -- whole models ------------------------------------------------------------------
SMALL_MODELS = {"unet": {"base_filters": 4, "depth": 2}, "segnet": {"base_filters": 4, "n_blocks": 3}}


def _train(name, images, labels, fast, floatx="float32"):
    previous = keras.config.floatx()
    keras.config.set_floatx(floatx)
    try:
        keras.utils.set_random_seed(5)
        with use_fast_paths(fast):
            model, _, _ = um.get_model(name, *images.shape[1:], 3, **SMALL_MODELS[name])
            model.compile(optimizer=keras.optimizers.SGD(0.05), loss="categorical_crossentropy")
            targets = np.eye(3, dtype=floatx)[labels]
            history = model.fit(images.astype(floatx), targets, batch_size=2, epochs=2, verbose=0, shuffle=False)
            return np.array(history.history["loss"]), np.asarray(model.predict(images.astype(floatx), verbose=0))
    finally:
        keras.config.set_floatx(previous)


@torch_only  # elsewhere both runs would be the same code: every fast path checks the backend first
@pytest.mark.parametrize("name", sorted(SMALL_MODELS))
def test_training_steps_match_with_and_without_fast_paths(name):
    """Four SGD steps with the fast paths against the generic code.

    On torch the generic code also runs in float64, as the truth: Keras' batch
    variance (E[x^2] - E[x]^2 in float32) loses more precision than PyTorch's
    fused kernel, so the float32 generic path may drift further from float64
    than the fast path does; the fast path must be at least as close.
    """
    images, labels = threshold_batch(4, 16, 16, 2, 3)
    fast_losses, fast_out = _train(name, images, labels, fast=True)
    losses, out = _train(name, images, labels, fast=False)
    true_losses, true_out = _train(name, images, labels, fast=False, floatx="float64")
    np.testing.assert_allclose(fast_losses, true_losses, rtol=1e-4)
    fast_error, generic_error = np.abs(fast_out - true_out).max(), np.abs(out - true_out).max()
    assert fast_error <= 1.5 * generic_error + 1e-5, (fast_error, generic_error)
