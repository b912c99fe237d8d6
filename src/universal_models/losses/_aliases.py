"""String names for the library's losses and metrics in ``compile``.

``keras.losses.get("dice_loss")`` and ``keras.metrics.get("iou")`` look names
up in Keras' own tables of built-in objects (``keras.saving.get_custom_objects``
is not consulted for plain strings), so the aliases are added to those tables,
next to Keras' names; none of them shadows a Keras name.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping


def register_aliases(kind: str, aliases: Mapping[str, type]) -> None:
    """Make ``compile(loss=alias)`` / ``compile(metrics=[alias])`` build ``aliases[alias]()``.

    Args:
        kind: ``"losses"`` or ``"metrics"``.
        aliases: string name -> class (instantiated with its defaults).

    Raises:
        ValueError: if an alias is already a Keras name for another object.
        RuntimeError: if this Keras version keeps no such table.
    """
    module = importlib.import_module(f"keras.src.{kind}")
    table = getattr(module, "ALL_OBJECTS_DICT", None)
    if not isinstance(table, dict):
        raise RuntimeError(
            f"keras {getattr(importlib.import_module('keras'), '__version__', '?')} has no keras.src.{kind}."
            "ALL_OBJECTS_DICT; string names of universal_models objects cannot be registered. Pass instances "
            "(e.g. loss=DiceLoss()) instead of strings."
        )
    for alias, cls in aliases.items():
        existing = table.get(alias, cls)
        if not getattr(existing, "__module__", "").startswith("universal_models"):  # ours again after a reload is fine
            raise ValueError(f"{alias!r} is already a name in keras.{kind}; pick another alias for {cls.__name__}")
        table[alias] = cls
