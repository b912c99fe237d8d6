"""Argument checks shared by the library: one rule for what counts as a whole number.

Sizes and counts (image sizes, channels, classes, filters, batch sizes ...) come
from Python code, JSON files and numpy arrays alike, so any integral number is
accepted (``64``, ``np.int64(64)``, ``np.uint8(3)``), and returned as a Python
``int``; booleans are refused even though Python counts them as integers, and
so are floats, even whole ones (``64.0``), and strings.
"""

from __future__ import annotations

import numbers
from typing import Any


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integral number that is not a bool (``int``, ``np.int64`` ...).

    Example:
        >>> import numpy as np
        >>> is_integer(np.int64(3)), is_integer(True), is_integer(3.0)
        (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_integer(argument: str, value: Any, *, minimum: int | None = 1, maximum: int | None = None,
                  allow_none: bool = False, expected: str | None = None) -> int | None:
    """``value`` as a Python ``int``, or ``ValueError`` naming the argument and what it must be.

    Args:
        argument: the argument's name, for the message.
        value: the value given.
        minimum, maximum: the allowed range (inclusive; ``None`` for no bound).
        allow_none: whether ``None`` is allowed (and returned).
        expected: what the message says the value must be, when the default
            ("a positive integer", "an integer >= 2", "an integer from 1 to 5")
            needs more words.

    Raises:
        ValueError: ``"{argument} must be {expected}, got {value!r}."``.

    Example:
        >>> import numpy as np
        >>> check_integer("input_height", np.int64(64))
        64
    """
    if value is None and allow_none:
        return None
    if is_integer(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum):
        return int(value)
    if expected is None:
        if maximum is not None:
            expected = f"an integer from {minimum} to {maximum}" if minimum is not None else f"an integer <= {maximum}"
        elif minimum == 1:
            expected = "a positive integer"
        else:
            expected = "an integer" if minimum is None else f"an integer >= {minimum}"
        if allow_none:
            expected += " or None"
    raise ValueError(f"{argument} must be {expected}, got {value!r}.")


__all__ = ["check_integer", "is_integer"]
