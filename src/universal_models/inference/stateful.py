"""Stateful recurrent models: reset, stateless -> stateful twins, streaming, rollouts.

A stateful recurrent layer keeps its last state after each call and starts the
next call from it, so a long sequence can be fed in pieces (frame by frame from
a camera, or a simulation step by step) and give the same outputs as the whole
sequence at once. Keras 3 gives layers a ``reset_state()`` but models none;
:func:`reset_states` resets every stateful layer of a model.

Training is best done stateless on whole sequences; :func:`to_stateful` then
builds the same architecture with stateful layers and a fixed batch size and
copies the weights. :func:`predict_stream` feeds a stateful model and carries
the state on every backend. That needs care on JAX: ``model.predict`` (and
``predict_on_batch``) run a compiled, stateless function there, which reads the
recurrent state as a constant and drops its updates, so the state is never
carried (measured with Keras 3.13.2, see ``tests/test_stateful.py``). On JAX
:func:`predict_stream` therefore calls a jit-compiled function that takes the
state variables as inputs and returns their new values (``keras.StatelessScope``),
and writes them back into the model's state variables after each call. On
PyTorch it uses ``model.predict_on_batch`` and on TensorFlow an eager model
call, both of which update the state variables themselves.

:func:`rollout` predicts future frames autoregressively with a next-frame
model: it feeds the context frames, then each predicted frame back as the next
input.
"""

from __future__ import annotations

import copy
import weakref
from typing import Any

import keras
import numpy as np

from .._validation import check_integer


def _all_layers(layer) -> list:
    """``layer`` and every layer inside it (nested models, wrappers)."""
    found, stack = [], [layer]
    while stack:
        current = stack.pop()
        found.append(current)
        children = list(getattr(current, "layers", []) or [])
        for attribute in ("layer", "forward_layer", "backward_layer"):
            child = getattr(current, attribute, None)
            if isinstance(child, keras.layers.Layer):
                children.append(child)
        stack.extend(reversed(children))
    return found


def recurrent_layers(model: keras.Model, stateful_only: bool = False) -> list[keras.layers.RNN]:
    """The recurrent layers (``keras.layers.RNN`` and subclasses: ConvLSTM2D,
    LSTM, GRU ...) of ``model``, in order, including those of nested models.

    Args:
        model: a Keras model or layer.
        stateful_only: only the layers built with ``stateful=True``.

    Example:
        >>> model, _, _ = get_model("lstm_full", 32, 32, 1, 1)
        >>> [layer.name for layer in recurrent_layers(model)]
        ['lstm1', 'lstm2']
    """
    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.RNN)]
    if stateful_only:
        layers = [layer for layer in layers if layer.stateful]
    return layers


def _state_variables(model) -> list:
    variables = []
    for layer in recurrent_layers(model, stateful_only=True):
        if layer.states is None:
            raise ValueError(
                f"the stateful layer {layer.name!r} has no state yet: build the model first "
                "(models from get_model and to_stateful are built)."
            )
        variables.extend(keras.tree.flatten(layer.states))
    return variables


def reset_states(model: keras.Model) -> int:
    """Reset the state of every stateful recurrent layer of ``model`` to zeros.

    Call it between independent sequences when streaming with a stateful model
    (Keras 3 models have no ``reset_states`` method; their layers have
    ``reset_state``). Stateless layers have nothing to reset and are skipped.

    Args:
        model: a Keras model (nested models and wrapped layers included).

    Returns:
        The number of layers reset (0 for a stateless model).

    Example:
        >>> model, _, _ = get_model("lstm_shallow", 32, 32, 1, 1, stateful=True, batchsize=1, timesteps=1)
        >>> reset_states(model)
        1
    """
    layers = recurrent_layers(model, stateful_only=True)
    for layer in layers:
        layer.reset_state()
    return len(layers)


def is_stateful(model: keras.Model) -> bool:
    """Whether ``model`` has at least one stateful recurrent layer."""
    return bool(recurrent_layers(model, stateful_only=True))


def _make_stateful_config(config: Any, batchsize: int, timesteps: int | None) -> Any:
    """Copy of a model config with stateful recurrent layers and fixed input sizes."""
    if isinstance(config, list):
        return [_make_stateful_config(item, batchsize, timesteps) for item in config]
    if not isinstance(config, dict):
        return config
    # Layers are rebuilt for the new input shapes when the twin is assembled,
    # so the shapes they were built with are dropped.
    config = {
        key: _make_stateful_config(value, batchsize, timesteps)
        for key, value in config.items()
        if key != "build_config"
    }
    if "stateful" in config:
        config["stateful"] = True
    if config.get("build_input_shape"):  # Sequential models record their input shape here
        config["build_input_shape"] = [batchsize, timesteps, *config["build_input_shape"][2:]]
    if config.get("class_name") == "InputLayer":
        inner = config["config"]
        shape = list(inner.get("batch_shape") or inner.get("batch_input_shape"))
        if len(shape) < 3:
            raise ValueError(
                f"to_stateful needs sequence inputs (batch, time, ...); the input {inner.get('name')!r} has "
                f"shape {tuple(shape)}."
            )
        shape[0], shape[1] = batchsize, timesteps
        inner.pop("batch_input_shape", None)
        inner["batch_shape"] = shape
    return config


def to_stateful(model: keras.Model, batchsize: int, timesteps: int | None = 1) -> keras.Model:
    """A stateful twin of a recurrent model, with the same weights.

    The twin is rebuilt from ``model.get_config()`` with every recurrent layer
    made stateful and the input fixed to ``(batchsize, timesteps, ...)``, then
    receives a copy of ``model``'s weights (the two models share nothing
    afterwards). It works for every functional or sequential model whose
    inputs are sequences, not only this library's.

    Args:
        model: a stateless (or stateful) recurrent Keras model taking
            ``(batch, time, ...)`` sequences.
        batchsize: number of sequences streamed in parallel.
        timesteps: frames per call (1 for frame-by-frame streaming), or ``None``
            to accept any number of frames per call.

    Returns:
        A built stateful ``keras.Model`` with zero state.

    Raises:
        ValueError: ``batchsize`` or ``timesteps`` is not a positive integer,
            the model has no recurrent layer, or its inputs are not sequences.

    Example:
        >>> model, _, _ = get_model("lstm_unet", 64, 64, 1, 1, base_filters=8)
        >>> streamer = to_stateful(model, batchsize=4)   # one frame of 4 sequences per call
        >>> streamer.input_shape
        (4, 1, 64, 64, 1)
    """
    batchsize = check_integer("batchsize", batchsize)
    timesteps = check_integer("timesteps", timesteps, allow_none=True)
    if not recurrent_layers(model):
        raise ValueError(f"model {model.name!r} has no recurrent layer, so it has no state to keep.")
    config = _make_stateful_config(copy.deepcopy(model.get_config()), batchsize, timesteps)
    twin = model.__class__.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


def _fixed_input_shape(model: keras.Model) -> tuple:
    shape = model.input_shape
    if isinstance(shape, list):
        raise ValueError(f"streaming needs a model with one input, {model.name!r} has {len(shape)}.")
    return shape


# -- running a stateful model while carrying its state --------------------------------
_JAX_STEPS: weakref.WeakKeyDictionary[keras.Model, Any] = weakref.WeakKeyDictionary()


def _jax_step(model: keras.Model):
    """A jit-compiled ``(weights, states, frames) -> (outputs, new states)`` for ``model``."""
    if model in _JAX_STEPS:
        return _JAX_STEPS[model]
    import jax  # only on the JAX backend

    def step(trainable, non_trainable, states, frames):
        mapping = list(zip(model.trainable_variables, trainable))
        mapping += list(zip(model.non_trainable_variables, non_trainable))
        mapping += list(zip(_state_variables(model), states))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            outputs = model(frames, training=False)
        return outputs, [scope.get_current_value(variable) for variable in _state_variables(model)]

    _JAX_STEPS[model] = jax.jit(step)
    return _JAX_STEPS[model]


def _run_stateful(model: keras.Model, frames: np.ndarray) -> np.ndarray:
    """One call of a stateful model that updates its state variables on every backend."""
    backend = keras.config.backend()
    if backend == "tensorflow":
        # Eager call: the compiled predict function is retraced with a free
        # time axis when the chunk length changes, where Keras' stateful RNN
        # batch-size check fails on symbolic shapes.
        return keras.ops.convert_to_numpy(model(frames, training=False))
    if backend != "jax":
        return keras.ops.convert_to_numpy(model.predict_on_batch(frames))
    variables = _state_variables(model)
    outputs, states = _jax_step(model)(
        [variable.value for variable in model.trainable_variables],
        [variable.value for variable in model.non_trainable_variables],
        [variable.value for variable in variables],
        frames,
    )
    for variable, value in zip(variables, states):
        variable.assign(value)
    return keras.ops.convert_to_numpy(outputs)


def _as_frames(frames, name: str) -> np.ndarray:
    frames = np.asarray(keras.ops.convert_to_numpy(frames) if not isinstance(frames, np.ndarray) else frames)
    if frames.ndim != 5:
        raise ValueError(
            f"{name} must be sequences (batch, time, height, width, channels), got shape {frames.shape}; "
            "for one sequence add a batch axis (frames[None])."
        )
    return frames.astype(keras.config.floatx(), copy=False)


def predict_stream(model: keras.Model, frames, *, reset: bool = True) -> np.ndarray:
    """Feed sequences to a stateful model piece by piece, carrying its state.

    The frames go through ``model`` in consecutive chunks of the model's
    ``timesteps`` (all at once if it takes any number), each call starting
    from the state the previous one left, so the outputs equal those of the
    stateless model run over the whole sequences (tested to 1e-5 on PyTorch,
    JAX and TensorFlow). The state after the last frame stays in the model: call
    again with ``reset=False`` to continue the same sequences as new frames
    arrive.

    A stateless model is accepted too: it is converted with
    ``to_stateful(model, batchsize=len(frames), timesteps=1)`` first (a rebuild
    and a weight copy on each call, and its state is discarded afterwards).

    Args:
        model: a recurrent model (stateful: ``batchsize`` must equal
            ``len(frames)``).
        frames: ``(batch, time, height, width, channels)``; ``time`` must be a
            multiple of the model's ``timesteps``.
        reset: start the sequences from zero state (:func:`reset_states`).
            ``False`` continues from the model's current state.

    Returns:
        ``numpy`` outputs ``(batch, time, ...)``, one per input frame.

    Raises:
        ValueError: ``frames`` is not 5-D, its batch differs from the stateful
            model's batch size, it has fewer frames than the model's
            ``timesteps`` or a number that is not a multiple of it, or
            ``reset=False`` with a stateless model.

    Example:
        >>> model, _, _ = get_model("lstm_shallow", 32, 32, 1, 1)
        >>> streamer = to_stateful(model, batchsize=2)
        >>> first = predict_stream(streamer, frames[:, :5])             # frames 0-4
        >>> later = predict_stream(streamer, frames[:, 5:], reset=False)  # frames 5-...
    """
    frames = _as_frames(frames, "frames")
    if not is_stateful(model):
        if not reset:
            raise ValueError(
                f"model {model.name!r} is stateless, so it keeps no state between calls and reset=False cannot "
                "continue a sequence; stream with a stateful twin: streamer = to_stateful(model, batchsize)."
            )
        model = to_stateful(model, batchsize=len(frames), timesteps=1)
    batchsize, timesteps = _fixed_input_shape(model)[:2]
    if len(frames) != batchsize:
        raise ValueError(
            f"the stateful model {model.name!r} streams {batchsize} sequences at a time but got {len(frames)}; "
            f"pass exactly {batchsize} sequences, or make a twin with to_stateful(model, batchsize={len(frames)})."
        )
    n_frames = frames.shape[1]
    step = timesteps or n_frames
    if n_frames < step or n_frames % step:
        raise ValueError(
            f"the stateful model {model.name!r} takes {step} frames per call but the sequences have "
            f"{n_frames} frames (fewer or not a multiple); pass a multiple of {step} frames, or stream one "
            "frame at a time with to_stateful(model, batchsize, timesteps=1)."
        )
    if reset:
        reset_states(model)
    outputs = [_run_stateful(model, frames[:, start : start + step]) for start in range(0, n_frames, step)]
    return np.concatenate(outputs, axis=1)


def rollout(model: keras.Model, context, n_future: int) -> np.ndarray:
    """Predict ``n_future`` frames after ``context`` by feeding predictions back.

    ``model`` must be a next-frame model: its output at frame ``t`` predicts
    frame ``t + 1`` and has the input's shape (``n_classes ==
    input_channels``, e.g. ``lstm_next_frame`` with one greyscale channel).
    The context frames are fed first (their last output is the first
    prediction), then each prediction is fed back as the next input.

    Stateless models are run through a stateful twin
    (``to_stateful(model, batchsize=len(context), timesteps=None)``), so each
    frame is processed once: ``context + n_future - 1`` frame-steps in all,
    plus one model rebuild and weight copy per call, instead of the
    quadratic cost of re-running the growing sequence. A stateful model with
    the right batch size and any number of frames per call (``timesteps`` None)
    or one frame per call is used as it is, after :func:`reset_states`.

    Args:
        model: a next-frame model.
        context: ``(batch, time, height, width, channels)`` observed frames.
        n_future: number of frames to predict (>= 1).

    Returns:
        ``numpy`` array ``(batch, n_future, height, width, channels)``.

    Raises:
        ValueError: ``context`` is not 5-D, ``n_future`` is not a positive
            integer, or the model's output cannot be fed back as input (its
            shape differs from a frame's).

    Example:
        >>> model, _, _ = get_model("lstm_next_frame", 64, 64, 1, 1)
        >>> future = rollout(model, sequences[:, :10], n_future=10)   # (batch, 10, 64, 64, 1)
    """
    context = _as_frames(context, "context")
    n_future = check_integer("n_future", n_future)
    input_shape, output_shape = _fixed_input_shape(model), model.output_shape
    if tuple(input_shape[2:]) != tuple(output_shape[2:]):
        raise ValueError(
            f"rollout feeds predictions back as input, so the model's output frames must have the input's "
            f"shape; {model.name!r} maps frames {tuple(input_shape[2:])} to {tuple(output_shape[2:])}. "
            "Build a next-frame model with n_classes equal to input_channels."
        )
    batchsize, timesteps = input_shape[:2]
    reusable = is_stateful(model) and batchsize == len(context) and timesteps in (None, 1)
    streamer = model if reusable else to_stateful(model, batchsize=len(context), timesteps=None)
    reset_states(streamer)
    if timesteps == 1 and reusable:
        outputs = predict_stream(streamer, context, reset=False)
    else:
        outputs = _run_stateful(streamer, context)
    frame = outputs[:, -1:]
    future = [frame]
    for _ in range(n_future - 1):
        frame = _run_stateful(streamer, frame)
        future.append(frame)
    return np.concatenate(future, axis=1)
