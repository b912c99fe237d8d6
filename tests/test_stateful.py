"""Stateful twins, streaming and rollouts, on every backend.

The key check: a stateless model run over whole sequences and its stateful
twin fed one frame (or a few frames) at a time give the same outputs to 1e-5,
with the state reset between sequences. On JAX this needs
:func:`universal_models.predict_stream`, because ``model.predict`` does not
carry the state there.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import perturb_weights
from tests.models.test_recurrent import CASES, MODELS
from universal_models.inference.stateful import is_stateful, recurrent_layers


def _model(name, n_classes=2, **options):
    model, _, _ = um.get_model(name, 16, 16, 1, n_classes, **{**CASES[name], **options})
    model.compile(optimizer="adam", loss="binary_crossentropy" if n_classes == 1 else "categorical_crossentropy")
    return model


def _trained(name, n_classes=2):
    """A model whose weights, batch-norm statistics included, are all away from their start."""
    model = _model(name, n_classes)
    perturb_weights(model)
    return model


def _whole(model, frames):
    return keras.ops.convert_to_numpy(model(frames, training=False))


def _sequences(seed, batch=2, frames=6):
    return np.random.default_rng(seed).random((batch, frames, 16, 16, 1)).astype("float32")


@pytest.mark.parametrize("name", MODELS)
def test_streaming_one_frame_at_a_time_equals_the_whole_sequence(name):
    model = _trained(name)
    first, second = _sequences(10), _sequences(11)
    streamer = um.to_stateful(model, batchsize=2)
    assert is_stateful(streamer) and not is_stateful(model)
    assert streamer.input_shape == (2, 1, 16, 16, 1)
    for sequences in (first, second):  # predict_stream resets the state between the two
        np.testing.assert_allclose(um.predict_stream(streamer, sequences), _whole(model, sequences), atol=1e-5)


def test_streaming_in_chunks_and_continuing_without_reset():
    model = _trained("lstm_unet")
    sequences = _sequences(12, frames=6)
    expected = _whole(model, sequences)
    chunked = um.to_stateful(model, batchsize=2, timesteps=2)
    np.testing.assert_allclose(um.predict_stream(chunked, sequences), expected, atol=1e-5)
    # Frames arriving later continue the same sequences when reset=False.
    streamer = um.to_stateful(model, batchsize=2)
    start = um.predict_stream(streamer, sequences[:, :2])
    rest = um.predict_stream(streamer, sequences[:, 2:], reset=False)
    np.testing.assert_allclose(np.concatenate([start, rest], axis=1), expected, atol=1e-5)


def test_state_is_really_carried_and_reset():
    """Controls that make the equivalence tests meaningful: a second sequence
    streamed without reset differs from the same sequence from zero state, and
    after reset_states the state variables are zero again."""
    model = _trained("lstm_shallow")
    streamer = um.to_stateful(model, batchsize=2)
    first, second = _sequences(13), _sequences(14)
    um.predict_stream(streamer, first)
    continued = um.predict_stream(streamer, second, reset=False)
    fresh = _whole(model, second)
    assert np.abs(continued[:, 0] - fresh[:, 0]).max() > 1e-3
    states = recurrent_layers(streamer)[0].states
    assert any(np.abs(keras.ops.convert_to_numpy(state)).max() > 0 for state in states)
    assert um.reset_states(streamer) == 1
    assert all(np.abs(keras.ops.convert_to_numpy(state)).max() == 0 for state in states)
    assert um.reset_states(model) == 0  # stateless: nothing to reset


def test_stateless_weights_load_into_a_stateful_model_from_get_model():
    model = _trained("lstm_full")
    stateful = _model("lstm_full", stateful=True, batchsize=2, timesteps=1)
    assert um.reset_states(stateful) == 2  # two stacked cells
    stateful.set_weights(model.get_weights())
    sequences = _sequences(15, frames=4)
    np.testing.assert_allclose(um.predict_stream(stateful, sequences), _whole(model, sequences), atol=1e-5)


def test_predict_stream_accepts_a_stateless_model():
    model = _trained("lstm_next_frame")
    sequences = _sequences(16, frames=3)
    np.testing.assert_allclose(um.predict_stream(model, sequences), _whole(model, sequences), atol=1e-5)
    with pytest.raises(ValueError, match="stateless.*reset=False"):
        um.predict_stream(model, sequences, reset=False)


def test_streaming_errors_are_clear():
    model = _model("lstm_shallow")
    streamer = um.to_stateful(model, batchsize=2, timesteps=4)
    with pytest.raises(ValueError, match="takes 4 frames per call but the sequences have 3 frames"):
        um.predict_stream(streamer, _sequences(0, frames=3))
    with pytest.raises(ValueError, match="takes 4 frames per call but the sequences have 6 frames"):
        um.predict_stream(streamer, _sequences(0, frames=6))
    with pytest.raises(ValueError, match="streams 2 sequences at a time but got 3"):
        um.predict_stream(streamer, _sequences(0, batch=3, frames=4))
    with pytest.raises(ValueError, match=r"\(batch, time, height, width, channels\)"):
        um.predict_stream(streamer, np.zeros((4, 16, 16, 1), "float32"))
    with pytest.raises(ValueError, match="batchsize must be a positive integer"):
        um.to_stateful(model, batchsize=0)
    plain = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Conv2D(2, 3)])
    with pytest.raises(ValueError, match="has no recurrent layer"):
        um.to_stateful(plain, batchsize=2)


def test_rollout_feeds_predictions_back():
    model = _trained("lstm_next_frame", n_classes=1)
    context = _sequences(17, frames=4)
    future = um.rollout(model, context, n_future=3)
    assert future.shape == (2, 3, 16, 16, 1)
    # Reference: re-run the stateless model on the growing sequence.
    sequence, expected = context, []
    for _ in range(3):
        frame = _whole(model, sequence)[:, -1:]
        expected.append(frame)
        sequence = np.concatenate([sequence, frame], axis=1)
    np.testing.assert_allclose(future, np.concatenate(expected, axis=1), atol=1e-5)
    # A stateful one-frame model is used as it is, from zero state.
    streamer = um.to_stateful(model, batchsize=2)
    np.testing.assert_allclose(um.rollout(streamer, context, n_future=3), future, atol=1e-5)


def test_rollout_errors_are_clear():
    with pytest.raises(ValueError, match="output frames must have the input's shape"):
        um.rollout(_model("lstm_shallow", n_classes=3), _sequences(0), n_future=2)
    with pytest.raises(ValueError, match="n_future must be a positive integer"):
        um.rollout(_model("lstm_shallow", n_classes=1), _sequences(0), n_future=0)


def test_stateful_model_saves_and_loads(tmp_path):
    model = _trained("lstm_unet")
    streamer = um.to_stateful(model, batchsize=2)
    path = tmp_path / "stateful.keras"
    streamer.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert is_stateful(loaded)
    sequences = _sequences(18, frames=3)
    np.testing.assert_allclose(um.predict_stream(loaded, sequences), _whole(model, sequences), atol=1e-5)


@pytest.mark.skipif(keras.config.backend() != "jax", reason="documents a Keras behaviour of the JAX backend")
def test_keras_predict_does_not_carry_state_on_jax():
    """Why predict_stream has a JAX path: with Keras 3.13.2, ``model.predict``
    on a stateful model reads the state as a constant and drops its updates,
    so streaming with it does not match the whole sequence. If this test
    fails, Keras carries the state now and the JAX path could be dropped."""
    model = _model("lstm_shallow")
    streamer = um.to_stateful(model, batchsize=2)
    sequences = _sequences(19, frames=3)
    outputs = [streamer.predict(sequences[:, [t]], verbose=0) for t in range(3)]
    assert np.abs(np.concatenate(outputs, axis=1) - _whole(model, sequences)).max() > 1e-3


def test_to_stateful_works_on_any_keras_sequence_model():
    model = keras.Sequential(
        [keras.Input((None, 8, 8, 1)), keras.layers.ConvLSTM2D(2, 3, padding="same", return_sequences=True)]
    )
    sequences = np.random.default_rng(20).random((2, 3, 8, 8, 1)).astype("float32")
    streamer = um.to_stateful(model, batchsize=2)
    assert streamer.input_shape == (2, 1, 8, 8, 1)
    np.testing.assert_allclose(um.predict_stream(streamer, sequences), _whole(model, sequences), atol=1e-5)
