"""A switch for the backend-specific fast paths of the library's layers.

Some layers (:class:`~universal_models.layers.normalization.BatchNormalization`,
:class:`~universal_models.layers.pooling.MaxPoolingWithArgmax2D`,
:class:`~universal_models.layers.pooling.MaxUnpooling2D`) call a fused PyTorch
kernel on the torch backend instead of a chain of ``keras.ops``; the output
:class:`~universal_models.layers.activation.Activation` computes a few-class
softmax over PyTorch's channels-last view;
:class:`~universal_models.layers.recurrent.ConvLSTM2D` unrolls short sequences
on every backend; and :class:`~universal_models.runtime.graph.GraphModel` runs its
graph through a lean plan on torch (direct convolutions, batch norm with an
in-place ReLU, batch norm folded into convolutions in inference, early release
of intermediates). Both ways give the same numbers (to float32 rounding;
``tests/test_performance_paths.py``, ``tests/test_graph.py``), so the switch exists for comparisons and
debugging only: set the environment
variable ``UNIVERSAL_MODELS_FAST_PATHS=0`` before the import, or use
:func:`use_fast_paths` around the calls.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_state = {"enabled": os.environ.get("UNIVERSAL_MODELS_FAST_PATHS", "1").strip().lower() not in ("0", "false", "no")}


def fast_paths_enabled() -> bool:
    """Whether layers may use their backend-specific fast paths (default: yes)."""
    return _state["enabled"]


@contextlib.contextmanager
def use_fast_paths(enabled: bool) -> Iterator[None]:
    """Enable or disable the layers' fast paths inside a ``with`` block.

    The choice is read when a layer is *called*, so it also affects models
    built outside the block. Not thread-local.

    Args:
        enabled: ``False`` runs every layer through its generic ``keras.ops`` code.

    Example:
        >>> with use_fast_paths(False):
        ...     reference = model.predict(images)
    """
    previous = _state["enabled"]
    _state["enabled"] = bool(enabled)
    try:
        yield
    finally:
        _state["enabled"] = previous
