"""Full-size prediction of large images by overlapping tiles with smooth blending.

A fully convolutional model can in principle take a whole image, but memory
grows with the pixel count, and models trained on patches see borders only at
patch edges. :func:`predict_tiled` cuts the image into tiles of a fixed size
that overlap, predicts them in batches, and blends the overlapping
probabilities with a window that falls off towards tile edges, so no seams
appear and memory stays bounded by the tile batch. :func:`predict_images` does
the same for a stream of images, filling each model call with the tiles of
consecutive images (a folder of small images costs one call per batch of
images, not one per image).
"""

from __future__ import annotations

import collections
import gc
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from .._validation import is_integer
from ..data.pipeline import tile_starts

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


_END = object()


class _TiledImage:
    """One image in flight through :func:`predict_images`: its tiles, and the blended sums so far."""

    def __init__(self, image, tile_height, tile_width, overlap, fit_to_image):
        if image.ndim not in (3, 4):
            raise ValueError(
                f"image must be (height, width, channels) or (time, height, width, channels), got {image.shape}.")
        self.height, self.width = image.shape[-3:-1]
        if fit_to_image:
            tile_height, tile_width = min(tile_height, self.height), min(tile_width, self.width)
            overlap = min(overlap, min(tile_height, tile_width) // 2)
        pad_height, pad_width = max(0, tile_height - self.height), max(0, tile_width - self.width)
        if pad_height or pad_width:
            spatial = ((0, pad_height), (0, pad_width))
            image = np.pad(image, ((0, 0),) * (image.ndim - 3) + spatial + ((0, 0),), mode="symmetric")
        self.image = image
        self.tile_height, self.tile_width = tile_height, tile_width
        self.tile_shape = image.shape[:-3] + (tile_height, tile_width, image.shape[-1])  # what a call may mix
        self.window = blend_window(tile_height, tile_width, overlap)[..., None]
        padded_height, padded_width = image.shape[-3:-1]
        self.positions = [(top, left) for top in tile_starts(padded_height, tile_height, overlap)
                          for left in tile_starts(padded_width, tile_width, overlap)]
        self.pending = len(self.positions)
        self.total = self.weight = None

    def tile(self, top: int, left: int) -> np.ndarray:
        return self.image[..., top:top + self.tile_height, left:left + self.tile_width, :]

    def add(self, top: int, left: int, output: np.ndarray) -> None:
        if self.total is None:
            self.total = np.zeros(self.image.shape[:-1] + (output.shape[-1],), dtype=np.float32)
            self.weight = np.zeros(self.image.shape[:-1] + (1,), dtype=np.float32)
        self.total[..., top:top + self.tile_height, left:left + self.tile_width, :] += output * self.window
        self.weight[..., top:top + self.tile_height, left:left + self.tile_width, :] += self.window
        self.pending -= 1

    def probabilities(self) -> np.ndarray:
        return (self.total / self.weight)[..., :self.height, :self.width, :]


def _tile_shape_and_checks(tile_size, overlap, batch_size) -> tuple[int, int]:
    tile_height, tile_width = (tile_size, tile_size) if is_integer(tile_size) else tuple(tile_size)
    tile_height, tile_width = int(tile_height), int(tile_width)
    if min(tile_height, tile_width) < 1 or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"tile size and batch size must be positive, got {tile_size!r} and {batch_size!r}.")
    if not 0 <= overlap < min(tile_height, tile_width):
        raise ValueError(f"overlap must be in [0, tile size), got {overlap} for tiles of {tile_height} x {tile_width}.")
    return tile_height, tile_width


def predict_images(
    predictor: BatchPredictor,
    images: Iterable[np.ndarray],
    *,
    tile_size: int | tuple[int, int] = 256,
    overlap: int = 32,
    batch_size: int = 4,
    fit_to_image: bool = False,
) -> Iterator[np.ndarray]:
    """Class probabilities of many images (or sequences), in order, from overlapping tiles.

    Each result is what :func:`predict_tiled` gives for that image, but the tiles of consecutive
    images share model calls: a folder of images that are one tile each is predicted
    ``batch_size`` images per call, not one image (plus, for a model built for one size,
    ``batch_size - 1`` padded tiles) per call. A call holds tiles of one shape only, so with
    ``fit_to_image`` an image of another size starts a new call. Memory stays bounded: the images
    held are the ones with a tile in the batch being filled.

    Args:
        predictor, tile_size, overlap, batch_size, fit_to_image: as for :func:`predict_tiled`,
            except that with ``fit_to_image`` the last call of a run of same-size images is not
            padded (its images may have a size of their own).
        images: an iterable (a generator is fine) of ``float32 (height, width, channels)`` or
            ``(time, height, width, channels)`` arrays.

    Yields:
        ``float32 (height, width, outputs)`` (or ``(time, height, width, outputs)``)
        probabilities, one array per image, in the order of ``images``. If reading an image
        raises, the images before it are yielded first, then the error is raised.

    Example:
        >>> for path, probabilities in zip(paths, predict_images(keras_predictor(model), (load(p) for p in paths))):
        ...     save(path, probabilities.argmax(-1))  # doctest: +SKIP
    """
    tile_height, tile_width = _tile_shape_and_checks(tile_size, overlap, batch_size)
    in_flight: collections.deque[_TiledImage] = collections.deque()
    batch: list[tuple[_TiledImage, int, int]] = []

    def run_batch() -> None:
        tiles = np.stack([item.tile(top, left) for item, top, left in batch])
        if len(batch) < batch_size and not fit_to_image:  # compiled backends see one shape
            tiles = np.concatenate([tiles, np.zeros((batch_size - len(batch),) + tiles.shape[1:], tiles.dtype)])
        outputs = np.asarray(predictor(tiles.astype(np.float32, copy=False)), dtype=np.float32)[: len(batch)]
        for (item, top, left), output in zip(batch, outputs):
            item.add(top, left, output)
        batch.clear()

    def finish() -> Iterator[np.ndarray]:
        if batch:
            run_batch()
        while in_flight:
            yield in_flight.popleft().probabilities()

    iterator = iter(images)
    while True:
        try:
            image = next(iterator, _END)
            if image is _END:
                break
            item = _TiledImage(np.asarray(image), tile_height, tile_width, overlap, fit_to_image)
        except Exception:
            yield from finish()  # what was read before the bad image is not lost
            raise
        in_flight.append(item)
        for top, left in item.positions:
            if batch and (len(batch) == batch_size or batch[0][0].tile_shape != item.tile_shape):
                run_batch()
            batch.append((item, top, left))
        while in_flight and in_flight[0].pending == 0:
            yield in_flight.popleft().probabilities()
    yield from finish()


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
            the image, and no padded tiles in a call (no work on padding;
            each new image size is a new input shape).

    Returns:
        ``float32 (height, width, outputs)`` (or ``(time, height, width,
        outputs)``) probabilities.

    Raises:
        ValueError: a bad tile size, overlap or batch size, or an image that
            is not 3-D or 4-D.

    Many images: :func:`predict_images` batches the tiles of consecutive images together.

    Example:
        >>> probabilities = predict_tiled(keras_predictor(model), image, tile_size=256)  # doctest: +SKIP
        >>> labels = probabilities.argmax(-1)  # doctest: +SKIP
    """
    return next(predict_images(predictor, [image], tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                               fit_to_image=fit_to_image))


def labels_from_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Class labels: argmax over classes, or ``p > 0.5`` for a single sigmoid channel."""
    if probabilities.shape[-1] == 1:
        return (probabilities[..., 0] > 0.5).astype(np.int32)
    return probabilities.argmax(axis=-1).astype(np.int32)
