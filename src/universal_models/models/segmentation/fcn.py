"""Fully convolutional networks FCN-32s, FCN-16s, FCN-8s (Long, Shelhamer and
Darrell, 2015, arXiv:1411.4038)."""

from __future__ import annotations

from keras import initializers, layers

from ..._validation import check_integer
from ...layers.blocks import (
    check_min_size,
    conv_bn_act,
    conv_stack,
    output_activation_layer,
    padded_input,
    restore_size,
)
from ...layers.initializers import BilinearUpsampling, glorot_uniform
from ...registry import register_model
from ...runtime.graph import GraphModel
from .segnet import VGG16_CONVS, _block_filters


def _upsample(tensor, n_classes: int, factor: int, *, name: str, trainable: bool = True):
    """Transposed convolution by ``factor`` (kernel ``2 * factor``), bilinear at start."""
    return layers.Conv2DTranspose(
        n_classes,
        2 * factor,
        strides=factor,
        padding="same",
        use_bias=False,
        kernel_initializer=BilinearUpsampling(),
        trainable=trainable,
        name=name,
    )(tensor)


def _score(tensor, n_classes: int, *, name: str, zero: bool = False):
    """1x1 convolution to class scores (skip scores start at zero, as in the paper)."""
    initializer = initializers.Zeros() if zero else glorot_uniform()
    return layers.Conv2D(n_classes, 1, kernel_initializer=initializer, name=name)(tensor)


def _fcn(stride: int, input_height, input_width, input_channels, n_classes, *, base_filters, fc_filters,
         dropout, batch_norm, output_activation):
    name = f"fcn{stride}"
    base_filters = check_integer("base_filters", base_filters)
    fc_filters = check_integer("fc_filters", fc_filters)
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    check_min_size(name, input_height, input_width, 32, "its VGG16 backbone max-pools 5 times")

    inputs, tensor, needs_crop = padded_input(input_height, input_width, input_channels, 32, model_name=name)
    pools = []
    for block, (filters, n_convs) in enumerate(zip(_block_filters(base_filters, 5), VGG16_CONVS), start=1):
        tensor = conv_stack(tensor, filters, n_convs, name=f"block{block}", batch_norm=batch_norm)
        tensor = layers.MaxPooling2D(2, name=f"block{block}_pool")(tensor)
        pools.append(tensor)

    # VGG16's fully connected layers as convolutions: fc6 (7x7) and fc7 (1x1).
    tensor = conv_bn_act(tensor, fc_filters, kernel_size=7, batch_norm=batch_norm, name="fc6")
    if dropout > 0:
        tensor = layers.Dropout(dropout, name="fc6_dropout")(tensor)
    tensor = conv_bn_act(tensor, fc_filters, kernel_size=1, batch_norm=batch_norm, name="fc7")
    if dropout > 0:
        tensor = layers.Dropout(dropout, name="fc7_dropout")(tensor)
    scores = _score(tensor, n_classes, name="score_fr")  # at 1/32 resolution

    if stride == 32:
        scores = _upsample(scores, n_classes, 32, name="upscore32", trainable=False)
    else:
        scores = _upsample(scores, n_classes, 2, name="upscore2")
        scores = layers.Add(name="fuse_pool4")([scores, _score(pools[3], n_classes, name="score_pool4", zero=True)])
        if stride == 16:
            scores = _upsample(scores, n_classes, 16, name="upscore16", trainable=False)
        else:
            scores = _upsample(scores, n_classes, 2, name="upscore_pool4")
            scores = layers.Add(name="fuse_pool3")([scores, _score(pools[2], n_classes, name="score_pool3", zero=True)])
            scores = _upsample(scores, n_classes, 8, name="upscore8", trainable=False)

    outputs = output_activation_layer(scores, n_classes, output_activation)
    outputs = restore_size(outputs, inputs, needs_crop)
    return GraphModel(inputs, outputs, name=name), input_height, input_width


_FCN_DOC = """{title} (Long, Shelhamer and Darrell 2015, "Fully Convolutional Networks for
    Semantic Segmentation", arXiv:1411.4038).

    VGG16 backbone (13 3x3 convolutions in 5 blocks, max pooling after each),
    its fully connected layers recast as convolutions (fc6: 7x7, fc7: 1x1, each
    with dropout), a 1x1 class-score layer, and transposed-convolution
    upsampling initialised to bilinear interpolation. {skips} The final
    upsampling is fixed bilinear interpolation, as in the paper's reference
    models. Departures from the paper: convolutions are zero-padded ("same") so
    no 100-pixel input padding is needed, and batch normalisation follows every
    backbone convolution by default because no ImageNet weights are loaded
    (we build everything offline and train from scratch; ``batch_norm=False``
    gives the paper's plain layers).

    Args:
        input_height, input_width: image size (>= 32; other sizes are padded
            inside and cropped back), or ``None`` for any size.
        input_channels: channels of the input.
        n_classes: output classes; 1 gives a sigmoid channel.
        base_filters: width of VGG16's first block (64).
        fc_filters: width of fc6 and fc7 (4096 in the paper; most of the
            parameters are here, so smaller values make a much lighter model).
        dropout: dropout after fc6 and fc7 (0.5 in the paper).
        batch_norm: batch normalisation after the backbone and fc convolutions.
        output_activation: ``"auto"``, ``"softmax"``, ``"sigmoid"`` or ``None``.

    Example:
        >>> model, h, w = build_{name}(224, 224, 3, 21, fc_filters=1024)
    """


_SKIPS = {
    32: "The class scores are upsampled 32x in one step.",
    16: "The scores are upsampled 2x and added to scores from pool4 (a skip that starts at zero), then "
        "upsampled 16x.",
    8: "The scores are upsampled 2x and added to pool4 scores, upsampled 2x again and added to pool3 scores "
       "(skips that start at zero), then upsampled 8x.",
}


@register_model("fcn32", "segmentation", "FCN-32s (Long et al. 2015): VGG16 backbone, scores upsampled 32x.")
def build_fcn32(input_height, input_width, input_channels, n_classes, *, base_filters: int = 64,
                fc_filters: int = 4096, dropout: float = 0.5, batch_norm: bool = True,
                output_activation: str | None = "auto"):
    return _fcn(32, input_height, input_width, input_channels, n_classes, base_filters=base_filters,
                fc_filters=fc_filters, dropout=dropout, batch_norm=batch_norm, output_activation=output_activation)


@register_model("fcn16", "segmentation", "FCN-16s (Long et al. 2015): FCN-32s plus a pool4 skip.")
def build_fcn16(input_height, input_width, input_channels, n_classes, *, base_filters: int = 64,
                fc_filters: int = 4096, dropout: float = 0.5, batch_norm: bool = True,
                output_activation: str | None = "auto"):
    return _fcn(16, input_height, input_width, input_channels, n_classes, base_filters=base_filters,
                fc_filters=fc_filters, dropout=dropout, batch_norm=batch_norm, output_activation=output_activation)


@register_model("fcn8", "segmentation", "FCN-8s (Long et al. 2015): FCN-32s plus pool4 and pool3 skips.")
def build_fcn8(input_height, input_width, input_channels, n_classes, *, base_filters: int = 64,
               fc_filters: int = 4096, dropout: float = 0.5, batch_norm: bool = True,
               output_activation: str | None = "auto"):
    return _fcn(8, input_height, input_width, input_channels, n_classes, base_filters=base_filters,
                fc_filters=fc_filters, dropout=dropout, batch_norm=batch_norm, output_activation=output_activation)


# The variants share one docstring, filled in per variant (as Keras' applications do).
for _stride, _builder in ((32, build_fcn32), (16, build_fcn16), (8, build_fcn8)):
    _builder.__doc__ = _FCN_DOC.format(title=f"FCN-{_stride}s", skips=_SKIPS[_stride], name=f"fcn{_stride}")
del _stride, _builder
