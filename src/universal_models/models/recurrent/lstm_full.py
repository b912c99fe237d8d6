"""Full LSTM: convolutional encoder, stacked ConvLSTM cells, convolutional decoder."""

from __future__ import annotations

from keras import layers

from ..._validation import check_integer
from ...layers.blocks import conv_stack
from ...layers.depth_to_space import subpixel_upsampling
from ...registry import register_model
from ...runtime.graph import GraphModel
from ._common import conv_lstm, sequence_input, sequence_output


@register_model(
    "lstm_full", "recurrent",
    "Convolutional encoder, stacked ConvLSTM2D cells, sub-pixel decoder; for higher-order temporal patterns.",
)
def build_lstm_full(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int = 16,
    depth: int = 2,
    lstm_layers: int = 2,
    lstm_filters: int | None = None,
    lstm_kernel_size: int = 3,
    batch_norm: bool = True,
    output_activation: str | None = "auto",
    stateful: bool = False,
    timesteps: int | None = None,
    batchsize: int | None = None,
):
    """Encoder, a stack of ConvLSTM cells, decoder.

    A single ConvLSTM cell (Shi et al. 2015, arXiv:1506.04214) learns
    first-order temporal patterns (where something is moving) easily and
    higher-order ones (how its motion changes) with difficulty; stacking cells,
    as Shi et al. do, gives the later cells the earlier cells' states as input.
    The encoder runs two 3x3 Conv-BatchNorm-ReLU at each resolution *before*
    each 2x2 max pooling, so the first convolutions see the full-resolution
    frames (the Keras 2 model this library replaces pooled the raw input first
    and so discarded its first convolutions). ``lstm_layers`` ConvLSTM cells run
    at ``1 / 2 ** depth`` resolution; the decoder upsamples with ICNR-initialised
    sub-pixel convolutions (Aitken et al. 2017, arXiv:1707.02937), each followed
    by two 3x3 convolutions. There are no skip connections: everything the
    decoder knows went through the recurrent cells.

    Args:
        input_height, input_width: frame size (>= ``2 ** depth``; other sizes are
            padded inside and cropped back).
        input_channels: channels of each frame.
        n_classes: output classes per pixel; 1 gives one sigmoid channel.
        base_filters: filters at full resolution, doubling per level.
        depth: number of poolings before the recurrent cells.
        lstm_layers: number of stacked ConvLSTM cells.
        lstm_filters: filters of each ConvLSTM (``base_filters * 2 ** depth``
            by default).
        lstm_kernel_size: kernel size of the ConvLSTM's convolutions.
        batch_norm: batch normalisation after the convolutions.
        output_activation: ``"auto"``, ``"softmax"``, ``"sigmoid"`` or ``None``.
        stateful: keep the ConvLSTM states between batches (streaming); needs
            ``batchsize`` and ``timesteps``.
        timesteps: frames per sequence, or ``None`` for any number (stateless).
        batchsize: sequences per batch, or ``None`` for any number (stateless).

    Returns:
        ``(model, output_height, output_width)``.

    Raises:
        ValueError: a size below ``2 ** depth``, an invalid option, or
            ``stateful=True`` without ``batchsize`` and ``timesteps``.

    Example:
        >>> model, h, w = build_lstm_full(64, 64, 1, 1, lstm_layers=3)
    """
    base_filters = check_integer("base_filters", base_filters)
    depth = check_integer("depth", depth)
    lstm_layers = check_integer("lstm_layers", lstm_layers)
    lstm_kernel_size = check_integer("lstm_kernel_size", lstm_kernel_size)
    bottom_filters = base_filters * 2**depth
    lstm_filters = bottom_filters if lstm_filters is None else check_integer("lstm_filters", lstm_filters)
    inputs, tensor, needs_crop = sequence_input(
        "lstm_full", input_height, input_width, input_channels, 2**depth,
        stateful=stateful, timesteps=timesteps, batchsize=batchsize,
        reason=f"it halves the resolution {depth} times",
    )
    for level in range(depth):
        tensor = conv_stack(tensor, base_filters * 2**level, 2, name=f"encoder{level + 1}", batch_norm=batch_norm)
        tensor = layers.MaxPooling2D(2, name=f"encoder{level + 1}_pool")(tensor)
    for index in range(1, lstm_layers + 1):
        tensor = conv_lstm(tensor, inputs, lstm_filters, name=f"lstm{index}", stateful=stateful,
                           kernel_size=lstm_kernel_size)
    for level in reversed(range(depth)):
        filters = base_filters * 2**level
        tensor = subpixel_upsampling(tensor, filters, name=f"decoder{level + 1}_up", batch_norm=batch_norm)
        tensor = conv_stack(tensor, filters, 2, name=f"decoder{level + 1}", batch_norm=batch_norm)
    outputs = sequence_output(tensor, inputs, n_classes, output_activation, needs_crop)
    return GraphModel(inputs, outputs, name="lstm_full"), input_height, input_width
