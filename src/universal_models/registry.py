"""Model registry: name -> builder, with kind and a one-line description.

Builders register themselves with :func:`register_model` when their module is
imported; :func:`get_model` validates the common arguments and the options
before it calls the builder, so that every model reports bad input the same way.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import numbers
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._validation import check_integer

#: The kinds of models in the registry.
KINDS = ("segmentation", "recurrent", "ladder")

# Modules whose import registers models. Imported on first use of the registry
# so that ``import universal_models`` stays cheap and free of import cycles.
_MODEL_MODULES = ("universal_models.models",)


@dataclass(frozen=True)
class ModelInfo:
    """What :func:`list_models` reports about one model."""

    name: str
    kind: str
    description: str


@dataclass(frozen=True)
class _Entry:
    info: ModelInfo
    builder: Callable[..., Any]
    options: dict[str, inspect.Parameter] = field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}
_loaded = False


def register_model(name: str, kind: str, description: str) -> Callable:
    """Class or function decorator that adds a model builder to the registry.

    The builder takes ``(input_height, input_width, input_channels, n_classes)``
    positionally and its options as keyword-only arguments, and returns
    ``(model, output_height, output_width)``.

    Example:
        >>> @register_model("tiny", "segmentation", "A tiny example.")
        ... def build_tiny(input_height, input_width, input_channels, n_classes, *, filters=8):
        ...     ...
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def decorator(builder: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].builder is not builder:
            raise ValueError(f"a model named {name!r} is already registered")
        parameters = inspect.signature(builder).parameters
        options = {
            key: value
            for key, value in parameters.items()
            if value.kind is inspect.Parameter.KEYWORD_ONLY
        }
        _REGISTRY[name] = _Entry(ModelInfo(name, kind, description), builder, options)
        return builder

    return decorator


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for module in _MODEL_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_models(kind: str | None = None) -> list[ModelInfo]:
    """All registered models, sorted by kind then name.

    Args:
        kind: only models of this kind (``"segmentation"``, ``"recurrent"`` or
            ``"ladder"``); all models when ``None``.

    Example:
        >>> [m.name for m in list_models("segmentation")][:3]
        ['fcn16', 'fcn32', 'fcn8']
    """
    _ensure_loaded()
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, got {kind!r}")
    infos = [entry.info for entry in _REGISTRY.values()]
    if kind is not None:
        infos = [info for info in infos if info.kind == kind]
    return sorted(infos, key=lambda info: (KINDS.index(info.kind), info.name))


def model_options(name: str) -> dict[str, Any]:
    """The options of model ``name`` with their defaults."""
    entry = _lookup(name)
    return {key: parameter.default for key, parameter in entry.options.items()}


def _lookup(name: str) -> _Entry:
    _ensure_loaded()
    if not isinstance(name, str):
        raise ValueError(f"model name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key in _REGISTRY:
        return _REGISTRY[key]
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"Unknown model {name!r}.{hint} Available models: "
        f"{', '.join(sorted(_REGISTRY))} (see universal_models.list_models())."
    )


#: what each type name of an option's annotation accepts (an annotation naming any other type is not checked)
_ANNOTATION_TYPES = {
    "int": lambda value: isinstance(value, numbers.Integral) and not isinstance(value, bool),
    "float": lambda value: isinstance(value, numbers.Real) and not isinstance(value, bool),
    "bool": lambda value: isinstance(value, (bool,)) or type(value).__name__ == "bool_",
    "str": lambda value: isinstance(value, str),
    "None": lambda value: value is None,
    "Sequence": lambda value: isinstance(value, (list, tuple)),
}
_ANNOTATION_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                     "None": "None (null)", "Sequence": "a list"}


def _check_option_value(model: str, option: str, parameter: inspect.Parameter, value: Any) -> None:
    """Refuse an option value whose type the builder's annotation does not allow (``dropout="a"``).

    The one check for every option of every model, read from the builder's signature: an
    annotation such as ``float``, ``int | None`` or ``float | Sequence[float]`` names the types
    allowed; an annotation with other names is left to the builder.
    """
    annotation = parameter.annotation
    if annotation is inspect.Parameter.empty:
        return
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    names = [part.strip().split("[")[0] for part in text.split("|")]
    if not names or any(name not in _ANNOTATION_TYPES for name in names):
        return
    if any(_ANNOTATION_TYPES[name](value) for name in names):
        return
    expected = " or ".join(_ANNOTATION_WORDS[name] for name in names)
    raise ValueError(
        f"option {option!r} of model {model!r} must be {expected} (default {parameter.default!r}), got "
        f"{value!r}; e.g. --option {option}={parameter.default if parameter.default is not None else '...'}."
    )


def get_model(
    name: str,
    input_height: int | None,
    input_width: int | None,
    input_channels: int,
    n_classes: int,
    **options: Any,
) -> tuple[Any, int | None, int | None]:
    """Build a registered model.

    Args:
        name: model name, see :func:`list_models` (case-insensitive).
        input_height: image height in pixels, or ``None`` for a model that takes
            any height at call time (segmentation and recurrent models).
        input_width: image width in pixels, or ``None`` (as ``input_height``).
        input_channels: channels of the input image (1 greyscale, 3 RGB, or any
            number of stacked images).
        n_classes: number of output classes. ``1`` gives one sigmoid channel
            (binary masks, greyscale frames), otherwise a softmax over the
            classes.
        **options: model-specific options; see the builder's docstring or
            :func:`model_options`.

    Returns:
        ``(model, output_height, output_width)``: a ``keras.Model`` and the
        spatial size of its output (equal to the input size for dense models,
        ``None`` where the input size is ``None``).

    Raises:
        ValueError: unknown model name (the message names the closest ones),
            sizes or class counts that are not positive integers, an input
            smaller than the model's minimum, an unknown option, or an option
            value of a type its builder does not take (``dropout="a"``).

    Example:
        >>> model, height, width = get_model("unet", 100, 76, 1, 3, base_filters=16)
        >>> (height, width)
        (100, 76)
    """
    entry = _lookup(name)
    input_height = check_integer("input_height", input_height, allow_none=True)
    input_width = check_integer("input_width", input_width, allow_none=True)
    input_channels = check_integer("input_channels", input_channels)
    n_classes = check_integer("n_classes", n_classes, expected="an integer >= 1 (1 for a binary mask or a greyscale "
                              "frame, else the number of classes including background)")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        messages = []
        for option in unknown:
            close = difflib.get_close_matches(option, list(entry.options), n=1)
            messages.append(f"{option!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        valid = ", ".join(sorted(entry.options)) or "none"
        raise ValueError(
            f"Unknown option{'s' if len(unknown) > 1 else ''} for model {entry.info.name!r}: "
            f"{', '.join(messages)}. Valid options: {valid}."
        )
    for option, value in options.items():
        _check_option_value(entry.info.name, option, entry.options[option], value)
    return entry.builder(input_height, input_width, input_channels, n_classes, **options)
