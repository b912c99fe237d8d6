"""Checkpoints that resume exactly: the model, optimizer and training state in one ``.keras`` file.

``last.keras`` carries the training state (next epoch, best score, history, the random-number
states of the model's layers and of the backend) as an extra ``universal_models_state.json``
member of its zip archive, which Keras ignores when it loads the model. Written atomically.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np

from .folder import (
    atomic_write,
)

STATE_MEMBER = "universal_models_state.json"


# -- reproducibility ----------------------------------------------------------------
def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and the backend, and ask for deterministic kernels.

    ``keras.utils.set_random_seed`` seeds Python's, numpy's and the backend's
    generators; with ``deterministic`` the backend's deterministic mode is
    switched on where it has one: ``torch.use_deterministic_algorithms(True,
    warn_only=True)`` on PyTorch (and ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which
    cuBLAS needs for deterministic results on a GPU, unless it is set), ``tf.config.experimental.enable_op_determinism``
    on TensorFlow (JAX on CPU is deterministic already).

    Example:
        >>> seed_everything(0)
    """
    keras.utils.set_random_seed(int(seed))
    if not deterministic:
        return
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        # cuBLAS is deterministic only with a fixed workspace; read when its first handle is made
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif backend == "tensorflow":
        import tensorflow as tf

        os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
        tf.config.experimental.enable_op_determinism()


# -- checkpoints ------------------------------------------------------------------------------


def save_checkpoint(model: keras.Model, path: str | Path, state: dict | None = None) -> Path:
    """Save ``model`` to ``path`` atomically, with an optional training ``state``.

    The model goes to a temporary ``.keras`` file in the same folder; the
    state is added to its zip archive as ``universal_models_state.json``; the
    file is flushed to disk and renamed over ``path``. Whatever happens, the
    file at ``path`` is either the previous complete checkpoint or the new one.

    Example:
        >>> save_checkpoint(model, "run/last.keras", {"epoch": 3})  # doctest: +SKIP
    """
    def write(temporary: Path) -> None:
        model.save(temporary)
        if state is not None:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(STATE_MEMBER, json.dumps(state))

    return atomic_write(path, write)


def read_checkpoint_state(path: str | Path) -> dict | None:
    """The training state stored in a checkpoint by :func:`save_checkpoint` (``None`` if absent)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if STATE_MEMBER not in archive.namelist():
                return None
            return json.loads(archive.read(STATE_MEMBER))
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path} is not a readable .keras checkpoint ({error}).") from error


def _seed_generator_variables(model: keras.Model) -> list:
    return [variable for variable in model.variables if "seed_generator_state" in variable.path]


def _seed_states(model: keras.Model) -> list[list]:
    """The states of the model's random generators (dropout ...), which ``model.save`` leaves out.

    In model order: their names get counters (``seed_generator_9``) that differ
    between a built and a loaded model, their order does not.
    """
    return [keras.ops.convert_to_numpy(variable).tolist() for variable in _seed_generator_variables(model)]


def _restore_seed_states(model: keras.Model, states: list[list]) -> None:
    variables = _seed_generator_variables(model)
    if len(states) != len(variables):
        raise ValueError(f"the checkpoint has {len(states)} random-generator states but the model has "
                         f"{len(variables)}; it was written by another model.")
    for variable, value in zip(variables, states):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def _encode_generator_state(state) -> str:
    """A torch generator state (a host uint8 tensor) as base64 text."""
    import base64

    return base64.b64encode(bytes(state.tolist())).decode("ascii")


def _decode_generator_state(text: str):
    import base64

    import torch

    # generator states are host tensors whatever device the generator serves
    return torch.tensor(list(base64.b64decode(text)), dtype=torch.uint8, device="cpu")


def _global_rng_state() -> dict:
    """Global random states that layers without their own seed draw from.

    PyTorch's unseeded dropout uses torch's global generator of the tensor's
    device (the CPU's, or each GPU's); Keras ops called with ``seed=None`` use
    Keras' global ``SeedGenerator``.
    """
    from keras.src.backend.common import global_state

    state: dict = {}
    generator = global_state.get_global_attribute("global_seed_generator")
    if generator is not None:
        state["keras"] = keras.ops.convert_to_numpy(generator.state).tolist()
    if keras.config.backend() == "torch":
        import torch

        state["torch"] = _encode_generator_state(torch.get_rng_state())
        if torch.cuda.is_available():
            state["torch_cuda"] = [_encode_generator_state(value) for value in torch.cuda.get_rng_state_all()]
    return state


def _restore_global_rng_state(state: dict) -> None:
    from keras.src.backend.common import global_state

    if "keras" in state:
        generator = keras.random.SeedGenerator(0)
        generator.state.assign(np.asarray(state["keras"], dtype=generator.state.dtype))
        global_state.set_global_attribute("global_seed_generator", generator)
    if "torch" in state and keras.config.backend() == "torch":
        import torch

        torch.set_rng_state(_decode_generator_state(state["torch"]))
        cuda_states = state.get("torch_cuda") or []
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([_decode_generator_state(value) for value in cuda_states])
