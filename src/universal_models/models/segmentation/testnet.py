"""TestNet: a tiny encoder-decoder for quick experiments and smoke tests."""

from __future__ import annotations

from keras import layers

from ..._validation import check_integer
from ...layers.blocks import check_min_size, classifier_head, conv_stack, padded_input, restore_size
from ...registry import register_model
from ...runtime.graph import GraphModel


@register_model("testnet", "segmentation", "Tiny encoder-decoder: 3 conv blocks down, 3 up, batch norm throughout.")
def build_testnet(
    input_height,
    input_width,
    input_channels,
    n_classes,
    *,
    base_filters: int = 16,
    output_activation: str | None = "auto",
):
    """A small network for simple tasks and fast tests.

    Three encoder blocks (3x3 Conv-BatchNorm-ReLU, 2x2 max pooling) with
    ``base_filters``, twice and four times as many filters, then three decoder
    blocks (2x nearest upsampling, 3x3 Conv-BatchNorm-ReLU) back to full
    resolution, and a 1x1 classifier. About 84 k parameters by default.

    Args:
        input_height, input_width: image size (>= 8; other sizes are padded
            inside and cropped back), or ``None`` for any size.
        input_channels: channels of the input.
        n_classes: output classes; 1 gives a sigmoid channel.
        base_filters: filters of the first block.
        output_activation: ``"auto"``, ``"softmax"``, ``"sigmoid"`` or ``None``.

    Example:
        >>> model, h, w = build_testnet(64, 64, 1, 2)
    """
    base_filters = check_integer("base_filters", base_filters)
    check_min_size("testnet", input_height, input_width, 8, "it halves the resolution 3 times")
    inputs, tensor, needs_crop = padded_input(input_height, input_width, input_channels, 8, model_name="testnet")
    widths = [base_filters, base_filters * 2, base_filters * 4]
    for block, filters in enumerate(widths, start=1):
        tensor = conv_stack(tensor, filters, 1, name=f"encoder{block}")
        tensor = layers.MaxPooling2D(2, name=f"encoder{block}_pool")(tensor)
    for block, filters in zip((3, 2, 1), reversed(widths)):
        tensor = layers.UpSampling2D(2, name=f"decoder{block}_upsample")(tensor)
        tensor = conv_stack(tensor, filters, 1, name=f"decoder{block}")
    outputs = restore_size(classifier_head(tensor, n_classes, output_activation), inputs, needs_crop)
    return GraphModel(inputs, outputs, name="testnet"), input_height, input_width
