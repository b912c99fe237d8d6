"""Batches for Keras' ``fit``: random training patches and fixed validation tiles.

Both datasets are ``keras.utils.PyDataset`` subclasses that read samples from a
*source*: anything with ``__len__`` and ``load(index) -> (image, mask)``, such
as :class:`ArraySource` (arrays in memory, e.g. the generated datasets) or
:class:`~universal_models.data.SegmentationFolder` (files read lazily).

Every batch is a pure function of ``(seed, epoch, batch index)``: which
samples, where the patches are cut and how they are augmented. So batches do
not depend on worker count, thread timing or prefetching, and a training run
resumed after an interruption sees exactly the batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import keras
import numpy as np

from .._validation import check_integer, check_size
from .augmentation import PairedAugmentation
from .folder import validation_count


class Source(Protocol):
    """What the datasets need from a collection of samples."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]: ...


class ArraySource:
    """Samples held in memory as arrays (the :class:`Source` of generated data).

    Args:
        images: ``(n, height, width, channels)`` images or ``(n, time, height,
            width, channels)`` sequences, float in [0, 1].
        masks: ``(n, height, width)`` / ``(n, time, height, width)`` integer
            labels, or ``None``.
        names: a name per sample (default ``"0"``, ``"1"`` ...).

    Raises:
        ValueError: images and masks whose counts or sizes differ, or images
            that are not 4-D or 5-D.

    Example:
        >>> source = ArraySource(np.zeros((4, 32, 32, 1), "float32"), np.zeros((4, 32, 32), "int32"))
        >>> image, mask = source.load(0)
    """

    def __init__(self, images: np.ndarray, masks: np.ndarray | None = None, names: Sequence[str] | None = None):
        images = np.asarray(images)
        if images.ndim not in (4, 5):
            raise ValueError(
                f"images must be (n, height, width, channels) or (n, time, height, width, channels); "
                f"got shape {images.shape}."
            )
        if masks is not None:
            masks = np.asarray(masks)
            if masks.shape != images.shape[:-1]:
                raise ValueError(
                    f"masks must have the images' shape without the channel axis, {images.shape[:-1]}; "
                    f"got {masks.shape}."
                )
        if images.dtype.kind == "f":
            finite = np.isfinite(images).reshape(len(images), -1).all(axis=1)
            if not finite.all():
                bad = np.flatnonzero(~finite)
                raise ValueError(
                    f"images {bad[:5].tolist()}{' ...' if len(bad) > 5 else ''} ({len(bad)} of {len(images)}) contain "
                    "NaN or infinite values, which would make the weights NaN. Fix or drop them, e.g. "
                    "np.nan_to_num(images) or images[np.isfinite(images).all(axis=(1, 2, 3))]."
                )
        if masks is not None and masks.dtype.kind not in "iub":
            if not np.all(np.isfinite(masks)) or not np.array_equal(masks, np.round(masks)):
                raise ValueError("masks must hold integer class labels (0, 1, ... n_classes - 1); got non-integer "
                                 f"values of dtype {masks.dtype}. Threshold or round them first.")
        self.images, self.masks = images, masks
        self.names = list(names) if names is not None else [str(i) for i in range(len(images))]
        self.channels = images.shape[-1]

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(image, mask)`` of sample ``index`` (``mask`` is ``None`` without masks)."""
        image = self.images[index].astype(np.float32, copy=False)
        return image, (None if self.masks is None else self.masks[index].astype(np.int32, copy=False))

    def image_size(self, index: int) -> tuple[int, int]:
        """``(height, width)`` of sample ``index``."""
        return tuple(self.images.shape[-3:-1])

    def name(self, index: int) -> str:
        """The name of sample ``index``."""
        return self.names[index]

    @property
    def has_masks(self) -> bool:
        """Whether the samples have masks."""
        return self.masks is not None

    def subset(self, indices: Sequence[int]) -> ArraySource:
        """The given samples."""
        indices = list(indices)
        masks = None if self.masks is None else self.masks[indices]
        return ArraySource(self.images[indices], masks, [self.names[i] for i in indices])

    def split(self, validation: float | int) -> tuple[ArraySource, ArraySource]:
        """``(train, validation)``: the last samples are the validation set (fraction or count)."""
        count = validation_count(len(self), validation)
        cut = len(self) - count
        return self.subset(range(cut)), self.subset(range(cut, len(self)))


def _pad_to(image: np.ndarray, mask: np.ndarray | None, height: int, width: int):
    """Reflect-pad the two spatial axes up to at least ``height`` x ``width``."""
    image_height, image_width = image.shape[-3:-1]
    pad_height, pad_width = max(0, height - image_height), max(0, width - image_width)
    if not pad_height and not pad_width:
        return image, mask
    spatial = ((pad_height // 2, pad_height - pad_height // 2), (pad_width // 2, pad_width - pad_width // 2))
    mode = "reflect" if pad_height < image_height and pad_width < image_width else "symmetric"
    image = np.pad(image, ((0, 0),) * (image.ndim - 3) + spatial + ((0, 0),), mode=mode)
    if mask is not None:
        mask = np.pad(mask, ((0, 0),) * (mask.ndim - 2) + spatial, mode=mode)
    return image, mask


class PatchDataset(keras.utils.PyDataset):
    """Random training patches of a source, augmented, in batches.

    An epoch draws ``steps_per_epoch * batch_size`` samples: the source's
    samples in a random order (repeated as needed, so each sample is seen
    equally often), each cut at a random position to ``patch_size`` (images
    smaller than a patch are reflect-padded), then augmented as a batch.

    Args:
        source: the samples (:class:`ArraySource`, ``SegmentationFolder``).
        batch_size: patches per batch.
        patch_size: ``int`` or ``(height, width)``.
        steps_per_epoch: batches per epoch; by default enough patches to cover
            every sample's area once.
        augmentation: a :class:`PairedAugmentation`, or ``None``.
        seed: the seed of sample order, patch positions and augmentation.
        epoch: the epoch to start at (``fit(initial_epoch=...)`` on resume).
        n_output_channels: the model's output channels. ``1`` gives targets
            ``float32 (b, h, w, 1)`` for a sigmoid output; otherwise targets are
            ``int32 (b, h, w)`` labels, checked to lie in ``[0, max(n, 2))``
            (a clear error naming the sample otherwise); ``None``: labels
            unchecked.
        workers, use_multiprocessing, max_queue_size: as in
            ``keras.utils.PyDataset`` (threads by default).

    Raises:
        ValueError: an empty source, a source without masks, bad sizes.

    Example:
        >>> from universal_models.data import make_shapes
        >>> images, masks = make_shapes(32, 64, 64)
        >>> batches = PatchDataset(ArraySource(images, masks), batch_size=8, patch_size=48)
        >>> x, y = batches[0]
        >>> x.shape, y.shape
        ((8, 48, 48, 1), (8, 48, 48))
    """

    def __init__(
        self,
        source: Source,
        *,
        batch_size: int,
        patch_size: int | tuple[int, int],
        steps_per_epoch: int | None = None,
        augmentation: PairedAugmentation | None = None,
        seed: int = 0,
        epoch: int = 0,
        n_output_channels: int | None = None,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        if len(source) == 0:
            raise ValueError("the training data has no samples.")
        if not getattr(source, "has_masks", True):
            raise ValueError("the training data has no masks; training needs a mask for every image.")
        batch_size = check_integer("batch_size", batch_size)
        self.source = source
        self.batch_size = batch_size
        self.patch_size = check_size("patch_size", patch_size)
        if steps_per_epoch is None:
            area = sum(np.prod(source.image_size(i)) for i in range(len(source)))
            steps_per_epoch = max(1, math.ceil(area / np.prod(self.patch_size) / batch_size))
        steps_per_epoch = check_integer("steps_per_epoch", steps_per_epoch)
        self.steps_per_epoch = steps_per_epoch
        self.augmentation = augmentation
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.n_output_channels = n_output_channels
        self._orders: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.steps_per_epoch

    def on_epoch_end(self) -> None:
        """Keras calls this after each epoch: the next batches belong to the next epoch."""
        self.epoch += 1

    def order(self, epoch: int) -> np.ndarray:
        """The sample indices of ``epoch``, ``steps_per_epoch * batch_size`` of them."""
        if epoch not in self._orders:
            rng = np.random.default_rng([self.seed, epoch, 0])
            needed = self.steps_per_epoch * self.batch_size
            rounds = math.ceil(needed / len(self.source))
            order = np.concatenate([rng.permutation(len(self.source)) for _ in range(rounds)])[:needed]
            self._orders = {epoch: order}  # one epoch at a time is all Keras asks for
        return self._orders[epoch]

    def batch(self, epoch: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index`` of ``epoch`` (what ``self[index]`` returns during that epoch)."""
        if not 0 <= index < self.steps_per_epoch:
            raise IndexError(f"batch index {index} out of range [0, {self.steps_per_epoch}).")
        rng = np.random.default_rng([self.seed, epoch, index + 1])
        samples = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        height, width = self.patch_size
        images, masks = [], []
        for sample in samples:
            image, mask = _pad_to(*self.source.load(int(sample)), height, width)
            top = int(rng.integers(0, image.shape[-3] - height + 1))
            left = int(rng.integers(0, image.shape[-2] - width + 1))
            images.append(image[..., top:top + height, left:left + width, :])
            masks.append(mask[..., top:top + height, left:left + width])
        images, masks = np.stack(images), np.stack(masks)
        self._check_labels(masks, samples)
        if self.augmentation is not None:
            images, masks = _augment_folded(self.augmentation, images, masks, int(rng.integers(2**31 - 1)))
        return self._targets(images, masks)

    def _check_labels(self, masks: np.ndarray, samples: np.ndarray) -> None:
        if self.n_output_channels is None:
            return
        n_classes = max(self.n_output_channels, 2)
        if masks.size == 0 or (masks.min() >= 0 and masks.max() < n_classes):
            return
        for mask, sample in zip(masks, samples):
            if mask.min() < 0 or mask.max() >= n_classes:
                name = self.source.name(int(sample)) if hasattr(self.source, "name") else str(sample)
                raise ValueError(
                    f"the mask of sample {name} has labels {int(mask.min())} ... {int(mask.max())}, outside the "
                    f"model's {n_classes} classes [0, {n_classes - 1}]. Fix the mask, or train with more classes "
                    "(n_classes = largest label + 1)."
                )

    def _targets(self, images: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = images.astype(np.float32, copy=False)
        if self.n_output_channels == 1:
            return images, masks[..., None].astype(np.float32)
        return images, masks.astype(np.int32, copy=False)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.batch(self.epoch, index)


def _augment_folded(augmentation: PairedAugmentation, images: np.ndarray, masks: np.ndarray, seed: int):
    """Augment images, or sequences with one transform for all their frames (time folded into channels)."""
    if images.ndim == 4:
        return augmentation(images, masks, seed)
    batch, time, height, width, channels = images.shape
    folded_images = images.transpose(0, 2, 3, 1, 4).reshape(batch, height, width, time * channels)
    folded_masks = masks.transpose(0, 2, 3, 1)
    folded_images, folded_masks = augmentation(folded_images, folded_masks, seed)
    images = folded_images.reshape(batch, height, width, time, channels).transpose(0, 3, 1, 2, 4)
    return images, folded_masks.transpose(0, 3, 1, 2)


def tile_starts(length: int, tile: int, overlap: int = 0) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``.

    The last tile ends at the border (it may overlap more). A length shorter
    than the tile gives one tile at 0 (the caller pads).

    Example:
        >>> tile_starts(512, 128)
        [0, 128, 256, 384]
        >>> tile_starts(300, 128, overlap=16)
        [0, 112, 172]
    """
    if tile < 1 or not 0 <= overlap < tile:
        raise ValueError(f"need tile >= 1 and 0 <= overlap < tile, got tile={tile}, overlap={overlap}.")
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


class TileDataset(keras.utils.PyDataset):
    """Validation batches: every sample cut into a fixed grid of patch-size tiles.

    Deterministic (no augmentation, no randomness), so validation losses are
    comparable between epochs and runs. Tiles cover each image; the last tile
    of a row or column is aligned to the border.

    Args:
        source: the validation samples.
        batch_size: tiles per batch.
        patch_size: tile size, ``int`` or ``(height, width)``.
        n_output_channels: as :class:`PatchDataset`.

    Example:
        >>> from universal_models.data import make_shapes
        >>> tiles = TileDataset(ArraySource(*make_shapes(2, 64, 64)), batch_size=4, patch_size=32)
        >>> len(tiles), tiles[0][0].shape
        (2, (4, 32, 32, 1))
    """

    def __init__(self, source: Source, *, batch_size: int, patch_size: int | tuple[int, int],
                 n_output_channels: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if len(source) == 0:
            raise ValueError("the validation data has no samples.")
        if not getattr(source, "has_masks", True):
            raise ValueError("the validation data has no masks.")
        self.source = source
        self.batch_size = batch_size
        self.patch_size = check_size("patch_size", patch_size)
        self.n_output_channels = n_output_channels
        height, width = self.patch_size
        self.tiles = []
        for sample in range(len(source)):
            sample_height, sample_width = source.image_size(sample)
            for top in tile_starts(max(sample_height, height), height):
                for left in tile_starts(max(sample_width, width), width):
                    self.tiles.append((sample, top, left))

    def __len__(self) -> int:
        return math.ceil(len(self.tiles) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        height, width = self.patch_size
        images, masks = [], []
        for sample, top, left in self.tiles[index * self.batch_size:(index + 1) * self.batch_size]:
            image, mask = _pad_to(*self.source.load(sample), height, width)
            images.append(image[..., top:top + height, left:left + width, :])
            masks.append(mask[..., top:top + height, left:left + width])
        images, masks = np.stack(images).astype(np.float32), np.stack(masks)
        if self.n_output_channels == 1:
            return images, masks[..., None].astype(np.float32)
        return images, masks.astype(np.int32)
