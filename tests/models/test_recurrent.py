"""Recurrent models: shapes, learning, saving, parameter independence from time, option errors.

Everything is tiny (4 frames of 16 x 16, a few filters) so the file runs in
well under a minute per backend; the learning tests use SGD with momentum for
the reason given in ``tests/models/base.py`` (Adam's training step takes
TensorFlow five times as long to trace).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import infer, perturb_weights, train_steps
from tests.models.options import RECURRENT
from universal_models.data import moving_shapes
from universal_models.layers import ICNR, DepthToSpace

CASES = RECURRENT
MODELS = list(CASES)


def build(name, height=16, width=16, channels=1, n_classes=2, **overrides):
    return um.get_model(name, height, width, channels, n_classes, **{**CASES[name], **overrides})


def test_every_recurrent_model_is_registered():
    assert {info.name for info in um.list_models("recurrent")} == set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_predicts_every_frame_at_any_fixed_size(name):
    for height, width, channels, n_classes in [(16, 16, 1, 3), (13, 18, 2, 1)]:
        model, output_height, output_width = build(name, height, width, channels, n_classes)
        assert (output_height, output_width) == (height, width)
        frames = np.random.default_rng(0).random((2, 3, height, width, channels)).astype("float32")
        outputs = infer(model, frames)
        assert outputs.shape == (2, 3, height, width, n_classes)
        assert np.all(np.isfinite(outputs)) and outputs.min() >= 0 and outputs.max() <= 1
        if n_classes > 1:
            np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, atol=1e-4)
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)


@pytest.mark.parametrize("name", MODELS)
def test_later_frames_depend_on_earlier_ones(name):
    """The recurrence is real: changing frame 0 changes the prediction for frame 2, never the reverse."""
    model, _, _ = build(name)
    frames = np.random.default_rng(1).random((1, 3, 16, 16, 1)).astype("float32")
    changed_first, changed_last = frames.copy(), frames.copy()
    changed_first[:, 0] = 0.0
    changed_last[:, 2] = 0.0
    base, after_first, after_last = (infer(model, x) for x in (frames, changed_first, changed_last))
    assert np.abs(after_first[:, 2] - base[:, 2]).max() > 1e-6
    np.testing.assert_allclose(after_last[:, :2], base[:, :2], atol=1e-6)


@pytest.mark.parametrize("name", MODELS)
def test_learns_moving_shapes_segmentation(name):
    frames, masks = moving_shapes(4, 4, size=16, noise=0.05, seed=0)
    model, _, _ = build(name, n_classes=4)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    losses = train_steps(model, frames, masks, 30)
    assert np.all(np.isfinite(losses)), losses
    assert losses[-1] < 0.5 * losses[0], losses


def test_greyscale_next_frame_mode_has_sigmoid_output_and_learns():
    """n_classes == input_channels == 1: a sigmoid frame; trained on frame t -> t + 1."""
    frames, _ = moving_shapes(4, 5, size=16, noise=0.0, seed=1)
    frames = np.clip(frames, 0, 1)
    model, _, _ = build("lstm_next_frame", n_classes=1)
    assert model.get_layer("classifier_sigmoid").get_config()["activation"] == "sigmoid"
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="binary_crossentropy")
    losses = train_steps(model, frames[:, :-1], frames[:, 1:], 30)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("name", MODELS)
def test_save_and_safe_load_give_identical_predictions(name, tmp_path):
    frames, _ = moving_shapes(2, 3, size=16, seed=2)
    model, _, _ = build(name, n_classes=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    perturb_weights(model)  # no weight at its initial value: one that failed to load would show
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(  # eager: on JAX the two models share the per-operation compilations
        keras.ops.convert_to_numpy(model(frames, training=False)),
        keras.ops.convert_to_numpy(loaded(frames, training=False)),
    )


@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_does_not_depend_on_timesteps(name):
    counts = {
        build(name, timesteps=timesteps, **extra)[0].count_params()
        for timesteps, extra in [(None, {}), (1, {}), (7, {}), (3, {"stateful": True, "batchsize": 2})]
    }
    assert len(counts) == 1, counts


@pytest.mark.parametrize(
    "options,missing",
    [({}, "batchsize and timesteps"), ({"timesteps": 4}, "batchsize"), ({"batchsize": 2}, "timesteps")],
)
def test_stateful_needs_batchsize_and_timesteps(options, missing):
    with pytest.raises(ValueError, match=f"needs both batchsize and timesteps \\(missing: {missing}\\)"):
        build("lstm_shallow", stateful=True, **options)


@pytest.mark.parametrize("name", MODELS)
def test_invalid_options_are_refused(name):
    with pytest.raises(ValueError, match="fixed frame size"):
        build(name, height=None, width=None)
    with pytest.raises(ValueError, match="timesteps must be a positive integer"):
        build(name, timesteps=0)
    with pytest.raises(ValueError, match="option .stateful. of model .* must be true or false"):
        build(name, stateful="yes")
    with pytest.raises(ValueError, match="Unknown option"):
        build(name, not_an_option=1)


def test_too_small_frames_name_the_minimum():
    with pytest.raises(ValueError, match="input_height >= 8"):
        um.get_model("lstm_unet", 7, 32, 1, 2, depth=3)


def test_lstm_full_convolves_the_full_resolution_frames_before_pooling():
    """The Keras 2 model pooled the raw input first; ours convolves at full resolution first."""
    model, _, _ = build("lstm_full", height=32, width=32)
    first_conv = model.get_layer("encoder1_1_conv")
    assert first_conv.output.shape[1:3] == (32, 32)
    pool = model.get_layer("encoder1_pool")
    assert pool.input.shape[1:3] == (32, 32) and pool.output.shape[1:3] == (16, 16)
    assert sum(isinstance(layer, keras.layers.ConvLSTM2D) for layer in model.layers) == 2


def test_lstm_next_frame_has_a_conv_lstm_at_every_scale_and_icnr_subpixel_upsampling():
    model, _, _ = build("lstm_next_frame", height=32, width=32, depth=3)
    lstm_sizes = [layer.output.shape[2] for layer in model.layers if isinstance(layer, keras.layers.ConvLSTM2D)]
    assert lstm_sizes == [16, 8, 4]
    for level in (1, 2, 3):
        conv = model.get_layer(f"up{level}_conv")
        assert isinstance(conv.kernel_initializer, ICNR)
        assert isinstance(model.get_layer(f"up{level}_depth_to_space"), DepthToSpace)
