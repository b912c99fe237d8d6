"""U-Net (Ronneberger, Fischer and Brox, 2015, arXiv:1505.04597)."""

from __future__ import annotations

from keras import layers

from ..._validation import check_integer
from ...layers.blocks import check_min_size, classifier_head, conv_stack, padded_input, restore_size
from ...layers.initializers import glorot_uniform
from ...registry import register_model
from ...runtime.graph import GraphModel

UPSAMPLING_MODES = ("transpose", "bilinear")


def unet_encoder(tensor, base_filters: int, depth: int, batch_norm: bool, bn_momentum: float = 0.99):
    """U-Net contracting path and bottleneck.

    ``depth`` levels of two 3x3 convolutions and a 2x2 max pooling, filters
    doubling from ``base_filters``, then the two bottleneck convolutions.
    Returns ``(bottleneck, skips)``, ``skips`` ordered from the finest level.
    """
    skips = []
    for level in range(depth):
        tensor = conv_stack(tensor, base_filters * 2**level, 2, name=f"encoder{level + 1}",
                            batch_norm=batch_norm, bn_momentum=bn_momentum)
        skips.append(tensor)
        tensor = layers.MaxPooling2D(2, name=f"encoder{level + 1}_pool")(tensor)
    tensor = conv_stack(tensor, base_filters * 2**depth, 2, name="bottleneck", batch_norm=batch_norm,
                        bn_momentum=bn_momentum)
    return tensor, skips


def unet_decoder(tensor, skips, base_filters: int, upsampling: str, batch_norm: bool,
                 bn_momentum: float = 0.99):
    """U-Net expanding path: per level, upsample 2x, concatenate the skip, two convolutions."""
    for level in reversed(range(len(skips))):
        filters = base_filters * 2**level
        prefix = f"decoder{level + 1}"
        if upsampling == "transpose":
            tensor = layers.Conv2DTranspose(
                filters, 2, strides=2, padding="same", kernel_initializer=glorot_uniform(), name=f"{prefix}_upconv"
            )(tensor)
        else:
            tensor = layers.UpSampling2D(2, interpolation="bilinear", name=f"{prefix}_upsample")(tensor)
            tensor = layers.Conv2D(filters, 1, kernel_initializer=glorot_uniform(), name=f"{prefix}_reduce")(tensor)
        tensor = layers.Concatenate(name=f"{prefix}_concat")([skips[level], tensor])
        tensor = conv_stack(tensor, filters, 2, name=prefix, batch_norm=batch_norm, bn_momentum=bn_momentum)
    return tensor


def _unet(
    name: str,
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int,
    depth: int,
    dropout: float,
    batch_norm: bool,
    bn_momentum: float,
    upsampling: str,
    output_activation,
):
    depth = check_integer("depth", depth)
    base_filters = check_integer("base_filters", base_filters)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if upsampling not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling must be one of {UPSAMPLING_MODES}, got {upsampling!r}")
    number = isinstance(bn_momentum, (int, float)) and not isinstance(bn_momentum, bool)
    if not number or not 0.0 <= bn_momentum < 1.0:
        raise ValueError(f"bn_momentum must be a number in [0, 1) (Keras' default 0.99), got {bn_momentum!r}")
    factor = 2**depth
    check_min_size(name, input_height, input_width, factor, f"it halves the resolution {depth} times")

    inputs, tensor, needs_crop = padded_input(input_height, input_width, input_channels, factor, model_name=name)
    tensor, skips = unet_encoder(tensor, base_filters, depth, batch_norm, bn_momentum)
    if dropout > 0:
        # The paper's dropout sits at the end of the contracting path.
        tensor = layers.Dropout(dropout, name="bottleneck_dropout")(tensor)
    tensor = unet_decoder(tensor, skips, base_filters, upsampling, batch_norm, bn_momentum)
    outputs = restore_size(classifier_head(tensor, n_classes, output_activation), inputs, needs_crop)
    return GraphModel(inputs, outputs, name=name), input_height, input_width


@register_model("unet", "segmentation", "U-Net (Ronneberger et al. 2015): 4 down/4 up levels, skip concatenation.")
def build_unet(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int = 64,
    depth: int = 4,
    dropout: float = 0.0,
    batch_norm: bool = True,
    bn_momentum: float = 0.99,
    upsampling: str = "transpose",
    output_activation: str | None = "auto",
):
    """U-Net as in Ronneberger et al. 2015 ("U-Net: Convolutional Networks for
    Biomedical Image Segmentation", arXiv:1505.04597).

    ``depth`` levels down and up, two 3x3 convolutions (ReLU) per level, filters
    doubling per level from ``base_filters`` (64, 128, 256, 512 and 1024 at the
    bottom for the defaults), 2x2 max pooling, 2x2 transposed-convolution
    upsampling and concatenation of the encoder features. Two departures from
    the paper, both usual today: convolutions are zero-padded ("same") so the
    output has the input's size, and batch normalisation follows every
    convolution unless ``batch_norm=False``. Inputs whose size is not a
    multiple of ``2 ** depth`` are padded inside the model and the output is
    cropped back.

    Args:
        input_height, input_width: image size (>= ``2 ** depth``), or ``None``
            for any size at call time.
        input_channels: channels of the input.
        n_classes: output classes; 1 gives a sigmoid channel, more a softmax.
        base_filters: filters of the first level (64 in the paper).
        depth: number of poolings (4 in the paper).
        dropout: dropout rate at the end of the contracting path (the paper
            used dropout there; 0 disables it).
        batch_norm: batch normalisation after every convolution.
        bn_momentum: momentum of the batch norms' moving mean and variance
            (``moving = moving * momentum + batch * (1 - momentum)``; Keras'
            default 0.99). Lower values (0.9) let the statistics used for
            validation and prediction follow the weights in short runs of a
            few hundred steps.
        upsampling: ``"transpose"`` (the paper's learnt 2x2 up-convolution) or
            ``"bilinear"`` (fixed bilinear upsampling followed by a 1x1
            convolution, free of checkerboard patterns).
        output_activation: ``"auto"`` (sigmoid or softmax by ``n_classes``),
            ``"softmax"``, ``"sigmoid"``, or ``None`` for logits.

    Returns:
        ``(model, output_height, output_width)``.

    Example:
        >>> model, h, w = build_unet(128, 128, 3, 2)
    """
    return _unet(
        "unet", input_height, input_width, input_channels, n_classes,
        base_filters=base_filters, depth=depth, dropout=dropout, batch_norm=batch_norm,
        bn_momentum=bn_momentum, upsampling=upsampling, output_activation=output_activation,
    )


@register_model("unet_shallow", "segmentation", "A smaller U-Net (3 levels, 16 base filters) for simple tasks.")
def build_unet_shallow(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int = 16,
    depth: int = 3,
    dropout: float = 0.0,
    batch_norm: bool = True,
    bn_momentum: float = 0.99,
    upsampling: str = "transpose",
    output_activation: str | None = "auto",
):
    """The U-Net idea with fewer levels and filters (about 0.48 M parameters
    against 31 M), for simple tasks and small data.

    Same layers and options as :func:`build_unet`; only the defaults differ
    (``depth=3``, ``base_filters=16``).

    Example:
        >>> model, h, w = build_unet_shallow(64, 64, 1, 1)
    """
    return _unet(
        "unet_shallow", input_height, input_width, input_channels, n_classes,
        base_filters=base_filters, depth=depth, dropout=dropout, batch_norm=batch_norm,
        bn_momentum=bn_momentum, upsampling=upsampling, output_activation=output_activation,
    )
