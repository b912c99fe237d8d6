"""Choose a Keras backend before Keras is imported.

Keras reads its backend once, at import time, from the ``KERAS_BACKEND``
environment variable or else from ``keras.json`` in the Keras home folder, and
falls back to TensorFlow. On a machine that only has PyTorch (our default
backend) that fallback fails, so :mod:`universal_models` settles the question
before it imports Keras:

1. ``KERAS_BACKEND`` is set: it is respected as it is.
2. A ``keras.json`` that the user made or edited names a backend whose package
   is installed: it is respected. A backend named there that is not installed
   gives a warning, and the fallback of rule 3.
3. Otherwise the first installed of ``torch``, ``jax``, ``tensorflow`` is used,
   and written to ``keras.json`` when that file does not exist yet (Keras itself
   would otherwise write ``"tensorflow"`` there on its first import, which would
   make the next import choose differently).

A ``keras.json`` whose content is exactly what Keras writes on its first import
when the file is missing (:data:`KERAS_DEFAULT_CONFIG`: ``"tensorflow"`` and
Keras' default float type, epsilon and image layout) is not a choice: Keras
writes it even when ``KERAS_BACKEND`` names another backend, so a machine where
some program imported Keras first has it without its user ever choosing. Such a
file counts as no file (rule 3, no warning), and is left as it is. A user who
wants TensorFlow with that file sets ``KERAS_BACKEND=tensorflow``, or changes
any other entry of the file.

Nothing here imports Keras or any backend package; it only asks the import
system whether they are installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import warnings

#: Backends in the order we prefer them when the user has not chosen.
PREFERRED_BACKENDS = ("torch", "jax", "tensorflow")


def _is_installed(backend: str) -> bool:
    package = {"torch": "torch", "jax": "jax", "tensorflow": "tensorflow"}.get(backend)
    if package is None:  # "numpy" or an unknown name: let Keras judge it.
        return True
    return importlib.util.find_spec(package) is not None


def keras_config_path() -> str:
    """Where Keras looks for ``keras.json`` (same rule as Keras itself)."""
    if "KERAS_HOME" in os.environ:
        keras_dir = os.environ["KERAS_HOME"]
    else:
        base = os.path.expanduser("~")
        if not os.access(base, os.W_OK):
            base = "/tmp"
        keras_dir = os.path.join(base, ".keras")
    return os.path.expanduser(os.path.join(keras_dir, "keras.json"))


#: What Keras (3.10 to 3.15 at least) writes to a missing ``keras.json`` on its first import:
#: ``keras/src/backend/config.py`` dumps these four entries, with the backend default
#: ``"tensorflow"`` taken before ``KERAS_BACKEND`` is applied. ``tests/test_backend_select.py``
#: checks this against the installed Keras.
KERAS_DEFAULT_CONFIG = {
    "floatx": "float32",
    "epsilon": 1e-07,
    "backend": "tensorflow",
    "image_data_format": "channels_last",
}


def _read_config(path: str) -> dict | None:
    """The JSON object in ``path``, or ``None`` when it is missing or not a JSON object."""
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def is_keras_default_config(config: dict) -> bool:
    """Whether ``config`` is exactly the file Keras writes itself (no user choice in it)."""
    return config == KERAS_DEFAULT_CONFIG


def _configured_backend(path: str) -> str | None:
    """The backend the user chose in ``keras.json``; ``None`` without a file or a choice in it."""
    config = _read_config(path)
    if config is None or is_keras_default_config(config):
        return None
    backend = config.get("backend")
    return backend if isinstance(backend, str) and backend else None


def _write_default_config(path: str, backend: str) -> None:
    config = {
        "floatx": "float32",
        "epsilon": 1e-07,
        "backend": backend,
        "image_data_format": "channels_last",
    }
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(config, handle, indent=4)
        os.replace(temporary, path)
    except OSError:
        pass  # read-only home: the environment variable alone is enough.


def select_backend() -> str:
    """Set ``KERAS_BACKEND`` if needed and return the backend Keras will use.

    Returns the name that Keras will report. If Keras was imported before
    :mod:`universal_models`, its choice is final and is returned unchanged.
    """
    if "keras" in sys.modules:
        return sys.modules["keras"].config.backend()

    requested = os.environ.get("KERAS_BACKEND")
    if requested:
        return requested

    path = keras_config_path()
    configured = _configured_backend(path) if os.path.exists(path) else None
    if configured and _is_installed(configured):
        return configured

    for candidate in PREFERRED_BACKENDS:
        if _is_installed(candidate):
            break
    else:
        raise ImportError(
            "universal_models needs one Keras backend, and none of torch, jax or "
            "tensorflow is installed. Install one, for example "
            "`pip install 'universal-models[torch]'` (CPU build of PyTorch)."
        )
    if configured:
        warnings.warn(
            f"{path} asks for the Keras backend {configured!r}, which is not "
            f"installed; using {candidate!r} instead. Set KERAS_BACKEND or edit "
            "that file to choose another.",
            stacklevel=3,
        )
    elif not os.path.exists(path):
        _write_default_config(path, candidate)
    os.environ["KERAS_BACKEND"] = candidate
    return candidate
