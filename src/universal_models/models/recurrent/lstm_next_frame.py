"""Next-frame network after Mahjourian, Wicke and Angelova (2016, arXiv:1609.06377)."""

from __future__ import annotations

from keras import layers

from ..._validation import check_integer
from ...layers.blocks import conv_bn_act
from ...layers.depth_to_space import subpixel_upsampling
from ...registry import register_model
from ...runtime.graph import GraphModel
from ._common import conv_lstm, sequence_input, sequence_output


@register_model(
    "lstm_next_frame", "recurrent",
    "Stride-2 convolutions with a ConvLSTM2D at every scale, ICNR sub-pixel upsampling (Mahjourian et al. 2016).",
)
def build_lstm_next_frame(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int = 32,
    depth: int = 3,
    lstm_kernel_size: int = 3,
    skip_connections: bool = True,
    subpixel_blur: bool = True,
    batch_norm: bool = True,
    output_activation: str | None = "auto",
    stateful: bool = False,
    timesteps: int | None = None,
    batchsize: int | None = None,
):
    """A recurrent encoder-decoder for next-frame prediction, after the network
    of Mahjourian et al. 2016 ("Geometry-Based Next Frame Prediction from
    Monocular Video", arXiv:1609.06377).

    Encoder: ``depth`` levels, each a 3x3 Conv-BatchNorm-ReLU with stride 2
    (filters doubling from ``base_filters``) followed by a ConvLSTM cell (Shi et
    al. 2015) at that scale, so motion is tracked at every resolution. Decoder:
    sub-pixel blocks (a convolution to ``4 * filters`` channels and
    depth-to-space, Shi et al. 2016) back to full resolution, each followed by
    a 3x3 convolution; with ``skip_connections`` each block also sees the
    recurrent features of the same scale (the input frames at full
    resolution). The convolution feeding each depth-to-space is ICNR-initialised
    (Aitken et al. 2017, arXiv:1707.02937), so the network starts free of the
    checkerboard artifacts that disabled this model in the Keras 2 library it
    replaces, and a 2 x 2 blur follows each depth-to-space (Sugawara et al.
    2019), so that it stays free of them while it trains
    (:func:`~universal_models.layers.depth_to_space.subpixel_upsampling`).

    To predict greyscale frames use ``input_channels == n_classes == 1`` (sigmoid
    output, train with binary cross-entropy or MSE against frame ``t + 1``); for
    RGB frames use ``n_classes=3, output_activation="sigmoid"``. Predict further
    ahead with :func:`universal_models.rollout`.

    Args:
        input_height, input_width: frame size (>= ``2 ** depth``; other sizes are
            padded inside and cropped back).
        input_channels: channels of each frame.
        n_classes: output channels; 1 gives one sigmoid channel.
        base_filters: filters at half resolution, doubling per level.
        depth: number of stride-2 levels (each with its ConvLSTM).
        lstm_kernel_size: kernel size of the ConvLSTMs' convolutions.
        skip_connections: concatenate the encoder's features of the same scale
            in the decoder.
        subpixel_blur: the 2 x 2 blur after each depth-to-space (``False``
            for the ablation in ``benchmarks/next_frame.py``).
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
        >>> model, h, w = build_lstm_next_frame(64, 64, 1, 1, base_filters=16)
        >>> model.compile(optimizer="adam", loss="binary_crossentropy")
    """
    base_filters = check_integer("base_filters", base_filters)
    depth = check_integer("depth", depth)
    lstm_kernel_size = check_integer("lstm_kernel_size", lstm_kernel_size)
    inputs, tensor, needs_crop = sequence_input(
        "lstm_next_frame", input_height, input_width, input_channels, 2**depth,
        stateful=stateful, timesteps=timesteps, batchsize=batchsize,
        reason=f"it halves the resolution {depth} times",
    )
    skips = [tensor]
    for level in range(depth):
        filters = base_filters * 2**level
        tensor = conv_bn_act(tensor, filters, strides=2, name=f"down{level + 1}", batch_norm=batch_norm)
        tensor = conv_lstm(tensor, inputs, filters, name=f"down{level + 1}_lstm", stateful=stateful,
                           kernel_size=lstm_kernel_size)
        skips.append(tensor)
    for level in reversed(range(depth)):
        filters = base_filters * 2 ** max(level - 1, 0)
        prefix = f"up{level + 1}"
        tensor = subpixel_upsampling(tensor, filters, name=prefix, batch_norm=batch_norm, blur=subpixel_blur)
        if skip_connections:
            tensor = layers.Concatenate(name=f"{prefix}_concat")([skips[level], tensor])
        tensor = conv_bn_act(tensor, filters, name=f"{prefix}_refine", batch_norm=batch_norm)
    outputs = sequence_output(tensor, inputs, n_classes, output_activation, needs_crop)
    return GraphModel(inputs, outputs, name="lstm_next_frame"), input_height, input_width
