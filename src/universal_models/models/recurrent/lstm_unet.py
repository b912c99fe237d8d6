"""LSTM U-Net: a U-Net with a convolutional LSTM between encoder and decoder."""

from __future__ import annotations

from keras import layers

from ..._validation import check_integer
from ...registry import register_model
from ...runtime.graph import GraphModel
from ..segmentation.unet import UPSAMPLING_MODES, unet_decoder, unet_encoder
from ._common import conv_lstm, sequence_input, sequence_output


@register_model(
    "lstm_unet", "recurrent",
    "U-Net applied to every frame with a ConvLSTM2D between encoder and decoder; predicts every frame.",
)
def build_lstm_unet(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int = 16,
    depth: int = 4,
    lstm_filters: int | None = None,
    lstm_kernel_size: int = 3,
    dropout: float = 0.0,
    batch_norm: bool = True,
    upsampling: str = "transpose",
    output_activation: str | None = "auto",
    stateful: bool = False,
    timesteps: int | None = None,
    batchsize: int | None = None,
):
    """U-Net (Ronneberger et al. 2015, arXiv:1505.04597) on every frame of a
    sequence, with a convolutional LSTM (Shi et al. 2015, arXiv:1506.04214) at
    the bottom, so that each frame's prediction also uses the earlier frames.

    Encoder and decoder are those of :func:`~universal_models.models.segmentation.unet.build_unet`
    (two 3x3 Conv-BatchNorm-ReLU per level, 2x2 max pooling, filters doubling
    from ``base_filters``, skip concatenations) applied to all frames at once,
    so their parameters do not depend on the number of frames. Between the
    bottleneck and the decoder a ``ConvLSTM2D`` runs over time at the coarsest
    resolution, where one step of its kernel sees the largest part of the
    image. Sizes that are not multiples of ``2 ** depth`` are padded inside and
    cropped back.

    For next-frame prediction of greyscale frames use ``input_channels == 1``,
    ``n_classes == 1`` (sigmoid output) and frame ``t + 1`` as the target of
    frame ``t``; :func:`universal_models.rollout` then predicts further ahead.

    Args:
        input_height, input_width: frame size (>= ``2 ** depth``);
            fixed (Keras' ConvLSTM2D needs a static frame size).
        input_channels: channels of each frame.
        n_classes: output classes per pixel; 1 gives one sigmoid channel
            (binary masks, greyscale frames), more a softmax.
        base_filters: filters of the first level.
        depth: number of poolings.
        lstm_filters: filters of the ConvLSTM; by default those of the bottleneck
            (``base_filters * 2 ** depth``).
        lstm_kernel_size: kernel size of the ConvLSTM's convolutions.
        dropout: dropout rate after the bottleneck (0 disables it).
        batch_norm: batch normalisation after every convolution (statistics
            over all frames of the batch).
        upsampling: ``"transpose"`` (2x2 transposed convolution) or
            ``"bilinear"`` (bilinear upsampling and a 1x1 convolution).
        output_activation: ``"auto"`` (sigmoid or softmax by ``n_classes``),
            ``"softmax"``, ``"sigmoid"``, or ``None`` for logits.
        stateful: keep the ConvLSTM state from one batch to the next (for
            streaming); needs ``batchsize`` and ``timesteps``. Clear it with
            :func:`universal_models.reset_states`.
        timesteps: frames per sequence, or ``None`` for any number (stateless).
        batchsize: sequences per batch, or ``None`` for any number (stateless).

    Returns:
        ``(model, output_height, output_width)``; the model maps
        ``(batch, time, height, width, input_channels)`` to
        ``(batch, time, height, width, n_classes)``.

    Raises:
        ValueError: a size below ``2 ** depth``, an invalid option, or
            ``stateful=True`` without ``batchsize`` and ``timesteps``.

    Example:
        >>> model, h, w = build_lstm_unet(64, 64, 1, 2, base_filters=8, depth=3)
        >>> model.output_shape
        (None, None, 64, 64, 2)
    """
    base_filters = check_integer("base_filters", base_filters)
    depth = check_integer("depth", depth)
    lstm_kernel_size = check_integer("lstm_kernel_size", lstm_kernel_size)
    bottom_filters = base_filters * 2**depth
    lstm_filters = bottom_filters if lstm_filters is None else check_integer("lstm_filters", lstm_filters)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    if upsampling not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {upsampling!r}.")
    inputs, tensor, needs_crop = sequence_input(
        "lstm_unet", input_height, input_width, input_channels, 2**depth,
        stateful=stateful, timesteps=timesteps, batchsize=batchsize,
        reason=f"it halves the resolution {depth} times",
    )

    tensor, skips = unet_encoder(tensor, base_filters, depth, batch_norm)
    tensor = conv_lstm(tensor, inputs, lstm_filters, name="bottleneck_lstm", stateful=stateful,
                       kernel_size=lstm_kernel_size)
    if dropout > 0:
        tensor = layers.Dropout(dropout, name="bottleneck_dropout")(tensor)

    tensor = unet_decoder(tensor, skips, base_filters, upsampling, batch_norm)

    outputs = sequence_output(tensor, inputs, n_classes, output_activation, needs_crop)
    return GraphModel(inputs, outputs, name="lstm_unet"), input_height, input_width
