"""Data tools: generated datasets, folder datasets, MNIST and augmentation.

- Generated, seedable, no download: :func:`make_shapes`, :func:`make_moving_shapes`,
  :func:`make_particles` (and by name in :data:`GENERATED_DATASETS`).
- Folders of images and masks, read lazily: :class:`SegmentationFolder`; how each file is read
  (image modes, TIFF channels, mask values): :mod:`~universal_models.data.reading`.
- Paired augmentation of images and masks with Keras layers: :class:`PairedAugmentation`.
- Batches for ``fit``: :class:`PatchDataset` (random patches), :class:`TileDataset`
  (fixed validation tiles), over an :class:`ArraySource` or a folder.
"""

from .augmentation import PairedAugmentation, SegmentationRandomRotation
from .folder import SegmentationFolder, list_images
from .generated import GENERATED_DATASETS, SHAPE_CLASSES, make_moving_shapes, make_particles, make_shapes
from .mnist import load_mnist, read_idx
from .moving_mnist import moving_mnist, moving_shapes
from .pipeline import ArraySource, PatchDataset, TileDataset, tile_starts
from .reading import inspect_image, mask_to_foreground, mask_to_labels, read_image, to_float_image

__all__ = [
    "ArraySource",
    "GENERATED_DATASETS",
    "PairedAugmentation",
    "PatchDataset",
    "SHAPE_CLASSES",
    "SegmentationFolder",
    "SegmentationRandomRotation",
    "TileDataset",
    "inspect_image",
    "list_images",
    "load_mnist",
    "make_moving_shapes",
    "make_particles",
    "make_shapes",
    "mask_to_foreground",
    "mask_to_labels",
    "moving_mnist",
    "moving_shapes",
    "read_idx",
    "read_image",
    "tile_starts",
    "to_float_image",
]
