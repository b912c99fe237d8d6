"""The data of a training run: the folders or generated datasets a :class:`TrainConfig` names."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.augmentation import PairedAugmentation
from ..data.folder import SegmentationFolder
from ..data.generated import GENERATED_DATASETS, SHAPE_CLASSES
from ..data.pipeline import ArraySource
from .config import TrainConfig


@dataclass
class DataSplit:
    """The data of a run: training and validation sources and what they hold."""

    train: Any
    validation: Any
    n_classes: int
    channels: int
    class_names: tuple[str, ...]
    sequence: bool


# -- data -----------------------------------------------------------------------------
def load_data(config: TrainConfig) -> DataSplit:
    """Build the training and validation sources of ``config``.

    Raises:
        ValueError / FileNotFoundError: bad folders or files (named), a
            split that leaves nothing for training or validation, labels
            outside ``[0, n_classes)``.
    """
    if config.data in GENERATED_DATASETS:
        return _generated_data(config)
    train = SegmentationFolder(config.data, images_dir=config.images_dir, masks_dir=config.masks_dir,
                               n_classes=config.n_classes, mask_mode=config.mask_mode, channels=config.channels)
    if config.val_data is not None:
        validation = SegmentationFolder(config.val_data, images_dir=config.images_dir, masks_dir=config.masks_dir,
                                        n_classes=config.n_classes, mask_mode=config.mask_mode,
                                        channels=config.channels)
        if validation.channels != train.channels:
            raise ValueError(
                f"the validation images in {config.val_data} have {validation.channels} channel(s) but the training "
                f"images in {config.data} have {train.channels}; choose one count for both with --channels 1 or "
                "--channels 3."
            )
    else:
        train, validation = train.split(config.val_split)
    counts = train.scan()  # checks every training mask, infers n_classes when not given
    validation.n_classes = train.n_classes
    validation.scan()
    n_classes = train.n_classes
    names = train.class_names or (("background", "foreground") if n_classes == 2 else
                                  tuple(f"class {i}" for i in range(n_classes)))
    if config.class_names:
        names = _checked_names(config.class_names, n_classes)
    if counts.size and (counts > 0).sum() < 2:
        raise ValueError(
            f"the training masks in {config.data} contain only class {int(np.argmax(counts))}; "
            "a segmentation model needs at least two classes in its training data."
        )
    return DataSplit(train, validation, n_classes, train.channels, tuple(names), sequence=False)


def _generated_data(config: TrainConfig) -> DataSplit:
    dataset = GENERATED_DATASETS[config.data]
    size = config.image_size
    if dataset.sequence:
        images, masks = dataset.make(config.n_samples, config.timesteps, size, size, seed=config.seed)
    else:
        images, masks = dataset.make(config.n_samples, size, size, seed=config.seed)
    n_classes = config.n_classes or dataset.n_classes
    if config.channels is not None and config.channels != images.shape[-1]:
        raise ValueError(f"--channels {config.channels} applies to data folders; the generated {config.data} data "
                         f"has {images.shape[-1]} channel(s), so leave --channels out.")
    if n_classes < dataset.n_classes:
        raise ValueError(f"the {config.data} data has {dataset.n_classes} classes; n_classes={n_classes} is too few.")
    train, validation = ArraySource(images, masks).split(config.val_split)
    if config.data == "particles":
        names = ("background",) + tuple(f"particle class {i}" for i in range(1, n_classes))
    else:
        names = SHAPE_CLASSES + tuple(f"class {i}" for i in range(len(SHAPE_CLASSES), n_classes))
    if config.class_names:
        names = _checked_names(config.class_names, n_classes)
    return DataSplit(train, validation, n_classes, images.shape[-1], names[:n_classes], dataset.sequence)


def _checked_names(names: Sequence[str], n_classes: int) -> tuple[str, ...]:
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names ({', '.join(names)}) for {n_classes} classes; give one name "
                         "per class, background first.")
    return tuple(str(name) for name in names)


def _augmentation(config: TrainConfig) -> PairedAugmentation | None:
    if not config.augment:
        return None
    return PairedAugmentation(flips=config.flips, rotation=config.rotation, brightness=config.brightness,
                              contrast=config.contrast)
