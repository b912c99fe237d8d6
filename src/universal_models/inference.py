"""Full-size prediction of large images by overlapping tiles with smooth blending.

A fully convolutional model can in principle take a whole image, but memory
grows with the pixel count, and models trained on patches see borders only at
patch edges. :func:`predict_tiled` cuts the image into tiles of a fixed size
that overlap, predicts them in batches, and blends the overlapping
probabilities with a window that falls off towards tile edges, so no seams
appear and memory stays bounded by the tile batch.
"""

from __future__ import annotations

import gc
from typing import Callable

import numpy as np

from .data.pipeline import tile_starts

#: Something that maps a batch ``(b, [time,] tile, tile, channels)`` to probabilities.
BatchPredictor = Callable[[np.ndarray], np.ndarray]


def keras_predictor(model) -> BatchPredictor:
    """Wrap a Keras model as a :data:`BatchPredictor` (inference mode, numpy out).

    Each call ends with a young-generation garbage collection: on the torch
    backend (Keras 3.13) a ``predict_on_batch`` call leaves reference cycles
    that hold its activation tensors, and Python's collector frees them only
    in occasional full collections, so over a folder of images the memory
    grew by about 0.5 MiB per image (``tests/test_reliability.py``). The
    collection takes well under a millisecond.
    """

    def predict(batch: np.ndarray) -> np.ndarray:
        outputs = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
        gc.collect(1)
        return outputs

    return predict


def fixed_input_size(model) -> tuple[int | None, int | None]:
    """``(height, width)`` a Keras model requires, ``None`` where any size goes."""
    shape = model.input_shape
    if isinstance(shape, list):
        shape = shape[0]
    return shape[-3], shape[-2]


def blend_window(height: int, width: int, overlap: int) -> np.ndarray:
    """Tile weights: 1 inside, ramping linearly down over ``overlap`` pixels at the edges.

    Never 0 (a pixel covered by one tile only keeps that tile's prediction).
    """

    def ramp(length: int) -> np.ndarray:
        if overlap <= 0:
            return np.ones(length, dtype=np.float32)
        position = np.arange(length, dtype=np.float32) + 0.5
        return np.clip(np.minimum(position, length - position) / overlap, 1e-3, 1.0)

    return ramp(height)[:, None] * ramp(width)[None, :]


def predict_tiled(
    predictor: BatchPredictor,
    image: np.ndarray,
    *,
    tile_size: int | tuple[int, int] = 256,
    overlap: int = 32,
    batch_size: int = 4,
    fit_to_image: bool = False,
) -> np.ndarray:
    """Class probabilities of a full image (or sequence) from overlapping tiles.

    Args:
        predictor: a :data:`BatchPredictor`, e.g. ``keras_predictor(model)``.
        image: ``float32 (height, width, channels)`` or a sequence ``(time,
            height, width, channels)``.
        tile_size: tile height and width (``int`` or pair); an image smaller
            than a tile is reflect-padded to the tile and cropped back.
        overlap: pixels shared by neighbouring tiles, blended with
            :func:`blend_window`; 0 gives plain tiling.
        batch_size: tiles per model call (the last batch is padded to this
            size, so compiled backends see one shape).
        fit_to_image: for models that take any size: tiles no larger than
            the image, and no more tiles per call than the image has (no
            work on padding; each new image size is a new input shape).

    Returns:
        ``float32 (height, width, outputs)`` (or ``(time, height, width,
        outputs)``) probabilities.

    Raises:
        ValueError: a bad tile size, overlap or batch size, or an image that
            is not 3-D or 4-D.

    Example:
        >>> probabilities = predict_tiled(keras_predictor(model), image, tile_size=256)  # doctest: +SKIP
        >>> labels = probabilities.argmax(-1)  # doctest: +SKIP
    """
    if image.ndim not in (3, 4):
        raise ValueError(f"image must be (height, width, channels) or (time, height, width, channels), got {image.shape}.")
    tile_height, tile_width = (tile_size, tile_size) if isinstance(tile_size, int) else tuple(tile_size)
    if min(tile_height, tile_width) < 1 or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"tile size and batch size must be positive, got {tile_size!r} and {batch_size!r}.")
    if not 0 <= overlap < min(tile_height, tile_width):
        raise ValueError(f"overlap must be in [0, tile size), got {overlap} for tiles of {tile_height} x {tile_width}.")
    height, width = image.shape[-3:-1]
    if fit_to_image:
        tile_height, tile_width = min(tile_height, height), min(tile_width, width)
        overlap = min(overlap, min(tile_height, tile_width) // 2)
    pad_height, pad_width = max(0, tile_height - height), max(0, tile_width - width)
    if pad_height or pad_width:
        spatial = ((0, pad_height), (0, pad_width))
        image = np.pad(image, ((0, 0),) * (image.ndim - 3) + spatial + ((0, 0),), mode="symmetric")
    padded_height, padded_width = image.shape[-3:-1]
    window = blend_window(tile_height, tile_width, overlap)[..., None]
    positions = [(top, left) for top in tile_starts(padded_height, tile_height, overlap)
                 for left in tile_starts(padded_width, tile_width, overlap)]
    if fit_to_image:
        batch_size = min(batch_size, len(positions))
    total = weight = None
    for start in range(0, len(positions), batch_size):
        chunk = positions[start:start + batch_size]
        tiles = np.stack([image[..., top:top + tile_height, left:left + tile_width, :] for top, left in chunk])
        if len(chunk) < batch_size:
            tiles = np.concatenate([tiles, np.zeros((batch_size - len(chunk),) + tiles.shape[1:], tiles.dtype)])
        outputs = np.asarray(predictor(tiles.astype(np.float32, copy=False)), dtype=np.float32)[: len(chunk)]
        if total is None:
            total = np.zeros(image.shape[:-1] + (outputs.shape[-1],), dtype=np.float32)
            weight = np.zeros(image.shape[:-1] + (1,), dtype=np.float32)
        for (top, left), output in zip(chunk, outputs):
            total[..., top:top + tile_height, left:left + tile_width, :] += output * window
            weight[..., top:top + tile_height, left:left + tile_width, :] += window
    probabilities = total / weight
    return probabilities[..., :height, :width, :]


def labels_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Class labels: argmax over classes, or ``p > 0.5`` for a single sigmoid channel."""
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] > 0.5).astype(np.int32)
    return probabilities.argmax(axis=-1).astype(np.int32)
