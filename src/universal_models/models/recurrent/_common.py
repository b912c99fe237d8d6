"""Pieces shared by the recurrent models.

Every recurrent model takes sequences ``(batch, time, height, width, channels)``
and returns one prediction per frame. Its 2-D layers run on all frames at once:
the padded input is folded to ``(batch * time, height, width, channels)``
(:class:`~universal_models.layers.FoldTime`), so the same encoder and decoder
blocks as the segmentation models apply unchanged and their parameters do not
depend on the number of frames; the time axis is unfolded only around the
``ConvLSTM2D`` cells.
"""

from __future__ import annotations

from ..._validation import check_integer
from ...layers.blocks import check_min_size, classifier_head, padded_input, restore_size
from ...layers.initializers import HostOrthogonal, glorot_uniform
from ...layers.recurrent import ConvLSTM2D
from ...layers.time import FoldTime, UnfoldTime


def check_sequence_options(model_name: str, stateful, timesteps, batchsize) -> tuple[int | None, int | None]:
    """Validate the ``stateful``/``timesteps``/``batchsize`` options of a recurrent model.

    Returns:
        ``(timesteps, batchsize)`` as Python ints (or ``None``).

    Raises:
        ValueError: ``stateful`` is not a bool; ``timesteps`` or ``batchsize``
            is neither ``None`` nor a positive integer; or ``stateful=True``
            without both ``batchsize`` and ``timesteps``.
    """
    if not isinstance(stateful, bool):
        raise ValueError(f"stateful must be True or False, got {stateful!r}.")
    timesteps = check_integer("timesteps", timesteps, allow_none=True)
    batchsize = check_integer("batchsize", batchsize, allow_none=True)
    if stateful and (batchsize is None or timesteps is None):
        missing = " and ".join(
            argument for argument, value in (("batchsize", batchsize), ("timesteps", timesteps)) if value is None
        )
        raise ValueError(
            f"{model_name} with stateful=True needs both batchsize and timesteps (missing: {missing}): a "
            "stateful ConvLSTM keeps one state per sequence of the batch, so both sizes must be fixed. "
            "For frame-by-frame streaming use batchsize=<number of parallel sequences>, timesteps=1, "
            "or build a stateless model and call universal_models.to_stateful(model, batchsize)."
        )
    return timesteps, batchsize


def sequence_input(model_name: str, input_height, input_width, input_channels: int, multiple: int, *,
                   stateful: bool, timesteps, batchsize, reason: str):
    """The model's ``Input`` and its padded frames folded into the batch axis.

    Validates the sequence options, the frame size (fixed: Keras' ConvLSTM2D
    needs static spatial dimensions) and its minimum (``multiple``), pads
    height and width to a multiple of ``multiple`` when needed.

    Returns:
        ``(inputs, folded, needs_crop)``: the ``(batch, time, h, w, c)`` input,
        the padded frames as ``(batch * time, h', w', c)``, and whether the
        output must be cropped back (see :func:`sequence_output`).
    """
    timesteps, batchsize = check_sequence_options(model_name, stateful, timesteps, batchsize)
    if input_height is None or input_width is None:
        raise ValueError(
            f"{model_name} needs a fixed frame size, got input_height={input_height!r}, "
            f"input_width={input_width!r}: Keras' ConvLSTM2D builds its state for one spatial size. "
            "Give the frame size (frames of other sizes need another model built for them; the weights "
            "transfer with model.set_weights / get_weights)."
        )
    check_min_size(model_name, input_height, input_width, multiple, reason)
    inputs, padded, needs_crop = padded_input(
        input_height, input_width, input_channels, multiple,
        name="frames", sequence=True, timesteps=timesteps, batch_size=batchsize,
    )
    return inputs, FoldTime(name="fold_time")(padded), needs_crop


def conv_lstm(folded, inputs, filters: int, *, name: str, stateful: bool, kernel_size: int = 3):
    """A ``ConvLSTM2D`` (Shi et al. 2015, arXiv:1506.04214) on folded frames.

    Unfolds ``(batch * time, h, w, c)`` to ``(batch, time, h, w, c)`` (sizes
    taken from the model input ``inputs``), runs the cell over time (returning
    every step, "same" padding) and folds the result again.
    """
    sequence = UnfoldTime(name=f"{name}_unfold_time")([folded, inputs])
    sequence = ConvLSTM2D(
        filters, kernel_size, padding="same", return_sequences=True, stateful=stateful,
        kernel_initializer=glorot_uniform(), recurrent_initializer=HostOrthogonal(), name=name,
    )(sequence)
    return FoldTime(name=f"{name}_fold_time")(sequence)


def sequence_output(folded, inputs, n_classes: int, output_activation, needs_crop: bool):
    """Classifier on the folded frames, time axis restored, padding cropped."""
    tensor = classifier_head(folded, n_classes, output_activation)
    tensor = UnfoldTime(name="unfold_time")([tensor, inputs])
    return restore_size(tensor, inputs, needs_crop)
