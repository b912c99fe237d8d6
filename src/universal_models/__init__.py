"""universal-models: Keras 3 models for dense prediction on images and sequences.

Importing this package picks a Keras backend if you have not (see
:func:`backend`), then exposes the model factory:

>>> import universal_models as um
>>> model, height, width = um.get_model("unet", 128, 128, 3, n_classes=2)
"""

from __future__ import annotations

from ._backend_select import select_backend as _select_backend
from ._compat import install as _install_moved_modules

_select_backend()
_install_moved_modules()  # old module paths (universal_models.graph, .stateful, ...) keep working

import keras  # noqa: E402  (must follow the backend choice)

from .runtime.graph import GraphModel  # noqa: E402
from .registry import ModelInfo, get_model, list_models, model_options, register_model  # noqa: E402
from .inference.stateful import predict_stream, reset_states, rollout, to_stateful  # noqa: E402
# registers every loss, metric, layer and model (and the string names of losses and metrics): saved models
# load after this import
from . import layers, losses, metrics, models  # noqa: E402,F401
from .inference.loading import load_model  # noqa: E402
from .runtime.allocator import keep_freed_memory  # noqa: E402
from .training.preparation import prepare_training  # noqa: E402

__version__ = "0.1.0"


def backend() -> str:
    """The active Keras backend: ``"torch"``, ``"jax"`` or ``"tensorflow"``.

    Chosen at import time: ``KERAS_BACKEND`` if set, else the backend in
    ``keras.json`` if that backend is installed, else the first installed of
    torch, jax, tensorflow. A ``keras.json`` exactly as Keras writes it on its
    first import (``"tensorflow"`` and Keras' defaults) is not taken for a
    choice; a missing backend named in an edited one gives a warning.
    """
    return keras.config.backend()



def __getattr__(name: str):
    # an old submodule reached as an attribute (``universal_models.allocator``), as it was when
    # the package imported it itself
    from ._compat import MOVED

    if f"{__name__}.{name}" in MOVED:
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GraphModel",
    "ModelInfo",
    "__version__",
    "backend",
    "get_model",
    "keep_freed_memory",
    "list_models",
    "load_model",
    "model_options",
    "predict_stream",
    "prepare_training",
    "register_model",
    "reset_states",
    "rollout",
    "to_stateful",
]
