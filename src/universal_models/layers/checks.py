"""Input checks that explain themselves.

Keras reports a wrong channel count deep inside the first convolution
("expected axis -1 of input shape to have value 3"). :class:`InputGuard` sits
right after the model's ``Input`` and says which model expected what, and how
to fix the data or the model. It is an identity for well-formed input.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="universal_models")
class InputGuard(keras.layers.Layer):
    """Identity layer that checks the channel axis (and rank) of the input.

    Args:
        channels: the number of channels the model was built for.
        rank: expected rank including the batch axis (4 for images,
            5 for sequences).
        model_name: named in the error message.

    Raises:
        ValueError: at call time, when the input has another rank or channel
            count; the message says how to fix it.
    """

    def __init__(self, channels: int, rank: int = 4, model_name: str = "model", **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.rank = int(rank)
        self.model_name = model_name

    def _check(self, shape):
        layout = "(batch, height, width, channels)" if self.rank == 4 else "(batch, time, height, width, channels)"
        if len(shape) != self.rank:
            raise ValueError(
                f"{self.model_name} expects inputs of rank {self.rank} {layout}, got shape {tuple(shape)}. "
                + ("Add a batch axis (x[None]) or a channel axis (x[..., None])." if len(shape) < self.rank
                   else "Check the layout of your data.")
            )
        if shape[-1] is not None and shape[-1] != self.channels:
            raise ValueError(
                f"{self.model_name} was built for {self.channels}-channel images (last axis, channels-last "
                f"{layout}), but got shape {tuple(shape)} with {shape[-1]} channels. Convert the images "
                f"(e.g. greyscale <-> RGB), or build the model with input_channels={shape[-1]}."
            )

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        self._check(tuple(inputs.shape))
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "rank": self.rank, "model_name": self.model_name}
