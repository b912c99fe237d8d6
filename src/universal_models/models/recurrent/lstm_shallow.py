"""Shallow LSTM: one convolutional downsampling, a ConvLSTM cell, convolutional upsampling."""

from __future__ import annotations

from ..._validation import check_integer
from ...layers.blocks import conv_bn_act
from ...layers.depth_to_space import subpixel_upsampling
from ...registry import register_model
from ...runtime.graph import GraphModel
from ._common import conv_lstm, sequence_input, sequence_output


@register_model(
    "lstm_shallow", "recurrent",
    "One stride-2 convolution, a ConvLSTM2D at half resolution, sub-pixel upsampling; for local features.",
)
def build_lstm_shallow(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    filters: int = 32,
    lstm_filters: int | None = None,
    lstm_kernel_size: int = 3,
    batch_norm: bool = True,
    output_activation: str | None = "auto",
    stateful: bool = False,
    timesteps: int | None = None,
    batchsize: int | None = None,
):
    """A small recurrent network for sequences whose features are local.

    A ConvLSTM (Shi et al. 2015, arXiv:1506.04214) at full resolution would
    need many filters on large feature maps, so this model first halves the
    resolution once (3x3 Conv-BatchNorm-ReLU with stride 2), runs the ConvLSTM
    at half resolution, upsamples back with an ICNR-initialised sub-pixel
    convolution (Shi et al. 2016; Aitken et al. 2017, arXiv:1707.02937) and
    refines with one 3x3 convolution before the classifier. Its receptive
    field is small (a few pixels per frame), so use it for data whose classes
    are decided locally; :func:`build_lstm_unet` sees more of the image.

    Args:
        input_height, input_width: frame size (>= 2; odd sizes are padded
            inside and cropped back).
        input_channels: channels of each frame.
        n_classes: output classes per pixel; 1 gives one sigmoid channel.
        filters: filters of the convolutions.
        lstm_filters: filters of the ConvLSTM (``filters`` by default).
        lstm_kernel_size: kernel size of the ConvLSTM's convolutions.
        batch_norm: batch normalisation after the convolutions.
        output_activation: ``"auto"``, ``"softmax"``, ``"sigmoid"`` or ``None``.
        stateful: keep the ConvLSTM state between batches (streaming); needs
            ``batchsize`` and ``timesteps``.
        timesteps: frames per sequence, or ``None`` for any number (stateless).
        batchsize: sequences per batch, or ``None`` for any number (stateless).

    Returns:
        ``(model, output_height, output_width)``.

    Raises:
        ValueError: a size below 2, an invalid option, or ``stateful=True``
            without ``batchsize`` and ``timesteps``.

    Example:
        >>> model, h, w = build_lstm_shallow(32, 32, 1, 3, filters=16)
    """
    filters = check_integer("filters", filters)
    lstm_kernel_size = check_integer("lstm_kernel_size", lstm_kernel_size)
    lstm_filters = filters if lstm_filters is None else check_integer("lstm_filters", lstm_filters)
    inputs, tensor, needs_crop = sequence_input(
        "lstm_shallow", input_height, input_width, input_channels, 2,
        stateful=stateful, timesteps=timesteps, batchsize=batchsize, reason="it halves the resolution once",
    )
    tensor = conv_bn_act(tensor, filters, strides=2, name="down", batch_norm=batch_norm)
    tensor = conv_lstm(tensor, inputs, lstm_filters, name="lstm", stateful=stateful, kernel_size=lstm_kernel_size)
    tensor = subpixel_upsampling(tensor, filters, name="up", batch_norm=batch_norm)
    tensor = conv_bn_act(tensor, filters, name="refine", batch_norm=batch_norm)
    outputs = sequence_output(tensor, inputs, n_classes, output_activation, needs_crop)
    return GraphModel(inputs, outputs, name="lstm_shallow"), input_height, input_width
