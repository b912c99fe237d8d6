"""Argument checks shared by the library: whole numbers, sequences of them, sizes, real numbers.

One rule for what counts as a whole number:

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


def check_integers(argument: str, values: Any) -> tuple[int, ...]:
    """A non-empty sequence of positive integers (one integer counts as a sequence of one), as a tuple.

    Raises:
        ValueError: ``values`` is empty, not a sequence, or holds anything but positive integers.

    Example:
        >>> check_integers("filters", [8, 16]), check_integers("filters", 8)
        ((8, 16), (8,))
    """
    if is_integer(values):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if not values or any(not is_integer(v) or v < 1 for v in values):
        raise ValueError(f"{argument} must be a non-empty sequence of positive integers, got {values!r}.")
    return tuple(int(v) for v in values)


def check_size(argument: str, size: Any) -> tuple[int, int]:
    """A size given as one positive integer (square) or ``(height, width)``, as ``(height, width)``.

    Raises:
        ValueError: ``size`` is neither.

    Example:
        >>> check_size("patch_size", 64), check_size("patch_size", (32, 48))
        ((64, 64), (32, 48))
    """
    if is_integer(size):
        size = (size, size)
    try:
        size = tuple(size)
    except TypeError:
        size = (size,)
    if len(size) != 2 or any(not is_integer(s) or s < 1 for s in size):
        raise ValueError(f"{argument} must be a positive integer or (height, width), got {size!r}.")
    return (int(size[0]), int(size[1]))


def check_number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                 strict_minimum: bool = False) -> float:
    """``value`` as a float, or ``ValueError`` naming the option and the allowed range.

    Any real number that is not a bool and not NaN is accepted (numpy scalars too).

    Example:
        >>> check_number("gamma", 2, minimum=0)
        2.0
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    too_small = minimum is not None and (value <= minimum if strict_minimum else value < minimum)
    if too_small or (maximum is not None and value > maximum):
        low = "" if minimum is None else f"{'>' if strict_minimum else '>='} {minimum}"
        high = "" if maximum is None else f"<= {maximum}"
        raise ValueError(f"{name} must be {' and '.join(part for part in (low, high) if part)}, got {value}")
    return value


__all__ = ["check_integer", "check_integers", "check_number", "check_size", "is_integer"]
