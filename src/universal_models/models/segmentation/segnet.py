"""SegNet (Badrinarayanan, Kendall and Cipolla, 2015, arXiv:1511.00561)."""

from __future__ import annotations

from ..._validation import check_integer
from ...layers.blocks import check_min_size, classifier_head, conv_stack, padded_input, restore_size
from ...layers.pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from ...registry import register_model
from ...runtime.graph import GraphModel

#: Convolutions per encoder block in VGG16 (13 convolutions in 5 blocks).
VGG16_CONVS = (2, 2, 3, 3, 3)


def _block_filters(base_filters: int, n_blocks: int) -> list[int]:
    """VGG16 widths: 64, 128, 256, 512, 512 for base 64."""
    return [base_filters * min(2**index, 8) for index in range(n_blocks)]


def _segnet(name, input_height, input_width, input_channels, n_classes, *, base_filters, n_blocks,
            output_activation):
    n_blocks = check_integer("n_blocks", n_blocks, maximum=len(VGG16_CONVS))
    base_filters = check_integer("base_filters", base_filters)
    factor = 2**n_blocks
    check_min_size(name, input_height, input_width, factor, f"it max-pools {n_blocks} times")
    filters = _block_filters(base_filters, n_blocks)
    convs = VGG16_CONVS[:n_blocks]

    inputs, tensor, needs_crop = padded_input(input_height, input_width, input_channels, factor, model_name=name)
    indices = []
    for block in range(n_blocks):
        tensor = conv_stack(tensor, filters[block], convs[block], name=f"encoder{block + 1}")
        tensor, block_indices = MaxPoolingWithArgmax2D(2, name=f"encoder{block + 1}_pool")(tensor)
        indices.append(block_indices)

    # The decoder mirrors the encoder: unpool with the stored indices, then the
    # same number of convolutions, the last of which narrows to the width of the
    # next (shallower) block.
    for block in reversed(range(n_blocks)):
        prefix = f"decoder{block + 1}"
        tensor = MaxUnpooling2D(2, name=f"{prefix}_unpool")([tensor, indices[block]])
        out_filters = filters[block - 1] if block > 0 else filters[0]
        tensor = conv_stack(tensor, filters[block], convs[block] - 1, name=prefix)
        tensor = conv_stack(tensor, out_filters, 1, name=f"{prefix}_out")

    outputs = restore_size(classifier_head(tensor, n_classes, output_activation), inputs, needs_crop)
    return GraphModel(inputs, outputs, name=name), input_height, input_width


@register_model("segnet", "segmentation",
                "SegNet (Badrinarayanan et al. 2015): VGG16 encoder, decoder unpooling with max-pool indices.")
def build_segnet(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int = 64,
    n_blocks: int = 5,
    output_activation: str | None = "auto",
):
    """SegNet as in Badrinarayanan et al. 2015 ("SegNet: A Deep Convolutional
    Encoder-Decoder Architecture for Image Segmentation", arXiv:1511.00561).

    Encoder: the 13 convolutions of VGG16 in 5 blocks (Conv-Conv-Pool twice,
    then Conv-Conv-Conv-Pool three times), each convolution followed by batch
    normalisation and ReLU; 2x2 max pooling that records where each maximum
    was. Decoder: the mirror image, where each block first *unpools* its input
    with the indices of the matching encoder pooling (the defining idea of
    SegNet: boundaries are placed where the encoder saw them, with no learnt
    upsampling and no copied feature maps), then applies the same number of
    convolutions. A 1x1 convolution and softmax classify each pixel.

    Args:
        input_height, input_width: image size (>= ``2 ** n_blocks``; other sizes
            are padded inside and cropped back), or ``None`` for any size.
        input_channels: channels of the input.
        n_classes: output classes; 1 gives a sigmoid channel.
        base_filters: width of the first block (64 in VGG16); deeper blocks
            double it, up to 8 times.
        n_blocks: encoder blocks (5 in the paper).
        output_activation: ``"auto"``, ``"softmax"``, ``"sigmoid"`` or ``None``
            for logits.

    Example:
        >>> model, h, w = build_segnet(96, 128, 3, 12)
    """
    return _segnet("segnet", input_height, input_width, input_channels, n_classes,
                   base_filters=base_filters, n_blocks=n_blocks, output_activation=output_activation)


@register_model("segnet_shallow", "segmentation", "A smaller SegNet (3 blocks, 32 base filters) for simple tasks.")
def build_segnet_shallow(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int = 32,
    n_blocks: int = 3,
    output_activation: str | None = "auto",
):
    """SegNet with fewer and narrower blocks (first three VGG16 blocks at half
    width by default). Same layers and options as :func:`build_segnet`.

    Example:
        >>> model, h, w = build_segnet_shallow(64, 64, 1, 2)
    """
    return _segnet("segnet_shallow", input_height, input_width, input_channels, n_classes,
                   base_filters=base_filters, n_blocks=n_blocks, output_activation=output_activation)
