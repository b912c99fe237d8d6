"""Small functional building blocks shared by the models.

Each helper takes a Keras tensor and returns one, naming its layers from the
``name`` prefix so that weights stay addressable (``encoder1_conv2`` ...).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from .activation import Activation
from .checks import InputGuard
from .initializers import glorot_uniform, he_normal
from .normalization import BatchNormalization
from .spatial import CropToMatch, PadToMultiple

#: Activations accepted for ``output_activation``; "auto" picks by n_classes.
OUTPUT_ACTIVATIONS = ("auto", "softmax", "sigmoid", "linear", None)


def conv_bn_act(
    tensor,
    filters: int,
    *,
    name: str,
    kernel_size: int = 3,
    strides: int = 1,
    batch_norm: bool = True,
    activation: str | None = "relu",
    kernel_initializer: Any = None,
    bn_momentum: float = 0.99,
):
    """Conv2D (no bias when batch norm follows) -> BatchNorm -> activation.

    ``kernel_initializer=None`` is He-normal (:func:`~universal_models.layers.initializers.he_normal`);
    ``bn_momentum`` is the batch norm's ``momentum`` (Keras' default 0.99).
    """
    tensor = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=not batch_norm,
        kernel_initializer=he_normal() if kernel_initializer is None else kernel_initializer,
        name=f"{name}_conv",
    )(tensor)
    if batch_norm:
        tensor = BatchNormalization(momentum=bn_momentum, name=f"{name}_bn")(tensor)
    if activation is not None:
        tensor = layers.Activation(activation, name=f"{name}_{activation}")(tensor)
    return tensor


def conv_stack(tensor, filters: int, n_convs: int, *, name: str, batch_norm: bool = True, **kwargs):
    """``n_convs`` times :func:`conv_bn_act`, named ``{name}_1``, ``{name}_2`` ..."""
    for index in range(1, n_convs + 1):
        tensor = conv_bn_act(tensor, filters, name=f"{name}_{index}", batch_norm=batch_norm, **kwargs)
    return tensor


def resolve_output_activation(n_classes: int, output_activation: str | None) -> str:
    """The activation of the last layer: sigmoid for one class, softmax otherwise."""
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(
            f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}; "
            "use None (or 'linear') to get logits."
        )
    if output_activation == "auto":
        return "sigmoid" if n_classes == 1 else "softmax"
    return "linear" if output_activation is None else output_activation


def classifier_head(tensor, n_classes: int, output_activation: str | None, *, name: str = "classifier"):
    """1x1 convolution to ``n_classes`` channels plus the output activation.

    The activation runs in float32 so that mixed-precision models still give
    well-formed probabilities.
    """
    tensor = layers.Conv2D(
        n_classes, 1, padding="same", kernel_initializer=glorot_uniform(), name=f"{name}_conv"
    )(tensor)
    return output_activation_layer(tensor, n_classes, output_activation, name=name)


def output_activation_layer(tensor, n_classes: int, output_activation: str | None, *, name: str = "classifier"):
    """The model's output activation (float32 even under mixed precision)."""
    activation = resolve_output_activation(n_classes, output_activation)
    return Activation(activation, dtype="float32", name=f"{name}_{activation}")(tensor)


def check_min_size(model_name: str, input_height, input_width, minimum: int, reason: str) -> None:
    """Raise ``ValueError`` if a known input size is below ``minimum``."""
    for argument, value in (("input_height", input_height), ("input_width", input_width)):
        if value is not None and value < minimum:
            raise ValueError(
                f"{model_name} needs {argument} >= {minimum} ({reason}); got {value}. "
                "Use larger images or patches, or a model or option with fewer downsampling steps."
            )


def padded_input(input_height, input_width, input_channels: int, multiple: int, *, name: str = "image",
                 batch_size: int | None = None, timesteps: int | None = None, sequence: bool = False,
                 model_name: str = "this model"):
    """An ``Input``, checked by :class:`InputGuard`, and padded to a multiple of ``multiple``.

    Returns ``(inputs, tensor, needs_crop)``; when the size is known and already
    a multiple, no padding layer is added and ``needs_crop`` is False.
    """
    shape = (input_height, input_width, input_channels)
    if sequence:
        shape = (timesteps,) + shape
    if batch_size is not None:
        inputs = keras.Input(batch_shape=(batch_size,) + shape, name=name)
    else:
        inputs = keras.Input(shape=shape, name=name)
    tensor = InputGuard(input_channels, rank=len(shape) + 1, model_name=model_name, name="input_guard")(inputs)
    aligned = all(size is not None and size % multiple == 0 for size in (input_height, input_width))
    if aligned:
        return inputs, tensor, False
    return inputs, PadToMultiple(multiple, name="pad_to_multiple")(tensor), True


def restore_size(tensor, inputs, needs_crop: bool):
    """Crop the model output back to the input size if it was padded."""
    if not needs_crop:
        return tensor
    return CropToMatch(name="crop_to_input")([tensor, inputs])
