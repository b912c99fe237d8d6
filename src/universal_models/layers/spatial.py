"""Pad images to a multiple of a size, and crop them back.

Encoder-decoder networks halve the resolution several times, so they need input
sizes that are multiples of ``2 ** depth``. :class:`PadToMultiple` pads height
and width up to the next multiple (centred, so that the image stays in the
middle of the receptive fields) and :class:`CropToMatch` removes the same
border at the end, so a model built with these two takes any size and returns
its input's size. Both work on images ``(batch, height, width, channels)`` and
on sequences ``(batch, time, height, width, channels)``, with static or
``None`` sizes.
"""

from __future__ import annotations

import keras
from keras import ops


def _padding_for(size, multiple):
    """Total, leading and trailing padding that makes ``size`` a multiple."""
    total = (multiple - size % multiple) % multiple
    before = total // 2
    return before, total - before


@keras.saving.register_keras_serializable(package="universal_models")
class PadToMultiple(keras.layers.Layer):
    """Zero-pad height and width up to the next multiple of ``multiple``.

    Args:
        multiple: height and width of the output are multiples of this.
        mode: ``"constant"`` (zeros) or ``"reflect"``.

    Example:
        >>> PadToMultiple(16)(keras.ops.ones((1, 100, 76, 3))).shape
        (1, 112, 80, 3)
    """

    def __init__(self, multiple: int, mode: str = "constant", **kwargs):
        super().__init__(**kwargs)
        if int(multiple) < 1:
            raise ValueError(f"multiple must be >= 1, got {multiple}")
        if mode not in ("constant", "reflect"):
            raise ValueError(f"mode must be 'constant' or 'reflect', got {mode!r}")
        self.multiple = int(multiple)
        self.mode = mode

    def call(self, inputs):
        shape = ops.shape(inputs)
        height, width = shape[-3], shape[-2]
        top, bottom = _padding_for(height, self.multiple)
        left, right = _padding_for(width, self.multiple)
        pad_width = [[0, 0]] * (len(inputs.shape) - 3) + [[top, bottom], [left, right], [0, 0]]
        return ops.pad(inputs, pad_width, mode=self.mode)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        for axis in (-3, -2):
            if shape[axis] is not None:
                shape[axis] = sum(_padding_for(shape[axis], self.multiple)) + shape[axis]
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "mode": self.mode}


@keras.saving.register_keras_serializable(package="universal_models")
class CropToMatch(keras.layers.Layer):
    """Crop height and width of ``inputs[0]`` to those of ``inputs[1]``.

    Removes the border that :class:`PadToMultiple` added (the same centred
    split), so ``CropToMatch()([model_output, model_input])`` restores the input
    size.
    """

    def call(self, inputs):
        tensor, reference = inputs
        shape, reference_shape = ops.shape(tensor), ops.shape(reference)
        height, width = reference_shape[-3], reference_shape[-2]
        top = (shape[-3] - height) // 2
        left = (shape[-2] - width) // 2
        return tensor[..., top : top + height, left : left + width, :]

    def compute_output_shape(self, input_shapes):
        shape, reference = list(input_shapes[0]), input_shapes[1]
        shape[-3], shape[-2] = reference[-3], reference[-2]
        return tuple(shape)
