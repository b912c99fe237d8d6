"""Segmentation data in folders: images and masks with matching file names.

Layout (folder names are detected, or chosen with ``images_dir``/``masks_dir``)::

    data/
      images/   a.png  b.tif  c.jpg ...      (greyscale or RGB; 8/16-bit or float)
      masks/    a.png  b.tif  c.png ...      (same stems)

Masks can be

- class-index images (pixel value = class, 0 = background),
- binary 0/255 images (255 becomes class 1), as ISBI 2012 and most EM data, or
- one sub-folder per class, ``masks/<class>/<stem>.png``, each a binary mask of
  that class: sub-folders in sorted order (or ``class_dirs``) are classes 1, 2,
  ...; pixels in none of them are background (0); where two overlap the later
  class wins.

Files are read lazily (one image when it is needed), so large folders never
sit in memory at once; a bounded cache keeps decoded images of small folders.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
#: Folder names tried, in order, when ``images_dir`` / ``masks_dir`` are not given.
IMAGE_DIR_NAMES = ("images", "image", "imgs", "img", "inputs", "input", "x", "raw")
MASK_DIR_NAMES = ("masks", "mask", "labels", "label", "annotations", "annotation", "gt", "groundtruth",
                  "ground_truth", "targets", "target", "y")
#: How mask pixel values become classes.
MASK_MODES = ("auto", "index", "binary")


def natural_key(text: str) -> list:
    """Sort key that orders ``2.png`` before ``10.png`` (numbers compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (see :data:`IMAGE_EXTENSIONS`), in natural order.

    Hidden files (``.name``) are skipped.

    Example:
        >>> list_images("data/images")  # doctest: +SKIP
        [PosixPath('data/images/2.png'), PosixPath('data/images/10.png')]
    """
    folder = Path(folder)
    files = [path for path in folder.iterdir()
             if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")]
    return sorted(files, key=lambda path: natural_key(path.name))


def _open_error(path: Path, error: Exception) -> ValueError:
    return ValueError(
        f"cannot read image file {path}: {error}. The file is unreadable, truncated or not an image in a "
        f"supported format ({', '.join(IMAGE_EXTENSIONS)}); replace or remove it."
    )


def read_image(path: str | Path) -> np.ndarray:
    """Decode one image file into a numpy array, as stored.

    PNG, JPEG and BMP are read with Pillow (palette images give their palette
    indices, which is how class-index masks are often saved), TIFF with
    tifffile. Returns ``(height, width)`` for single-channel images and
    ``(height, width, channels)`` otherwise, in the file's dtype.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be decoded (truncated, corrupt, unknown
            format); the message names the file.

    Example:
        >>> mask = read_image("masks/0.png")  # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist.")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            array = np.asarray(tifffile.imread(path))
        else:
            from PIL import Image

            with Image.open(path) as image:
                image.load()
                if image.mode in ("P", "PA"):
                    image = image.convert("P") if image.mode == "PA" else image
                elif image.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                    image = image.convert("RGB")
                elif image.mode == "LA":
                    image = image.convert("L")
                array = np.asarray(image)
    except (OSError, ValueError, SyntaxError, RuntimeError, EOFError) as error:
        raise _open_error(path, error) from error
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or array.size == 0:
        raise ValueError(
            f"image file {path} has shape {array.shape}; expected a 2-D image (height, width) or "
            "(height, width, channels). Multi-page TIFF stacks are not supported: save one file per image."
        )
    return array


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image file from its header (no full decode).

    Raises:
        ValueError: the header cannot be read (the message names the file).
    """
    path = Path(path)
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                shape = tiff.pages[0].shape
            return int(shape[0]), int(shape[1])
        from PIL import Image

        with Image.open(path) as image:
            width, height = image.size
        return int(height), int(width)
    except (OSError, ValueError, SyntaxError, IndexError, RuntimeError) as error:
        raise _open_error(path, error) from error


def to_float_image(array: np.ndarray, path: str | Path = "<array>", channels: int | None = None) -> np.ndarray:
    """Scale a decoded image to ``float32 (height, width, channels)`` in ``[0, 1]``.

    Integer images are divided by their dtype's maximum (255, 65535 ...);
    float images are kept as they are (they must be finite). An alpha channel
    is dropped. With ``channels`` given, greyscale is repeated to RGB and RGB
    is turned to greyscale (luminance) as needed.

    Raises:
        ValueError: NaN or infinite values, or a channel count that cannot
            be converted (the message names the file).
    """
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[-1] in (2, 4):  # grey + alpha, RGB + alpha
        array = array[..., :-1]
    if np.issubdtype(array.dtype, np.integer):
        image = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    elif array.dtype == bool:
        image = array.astype(np.float32)
    else:
        image = array.astype(np.float32)
        if not np.all(np.isfinite(image)):
            raise ValueError(f"image {path} contains NaN or infinite values; fix or remove the file.")
    if channels is not None and image.shape[-1] != channels:
        if channels == 3 and image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        elif channels == 1 and image.shape[-1] == 3:
            image = (image @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        else:
            raise ValueError(
                f"image {path} has {image.shape[-1]} channels but {channels} are expected; "
                "use images with the same number of channels (1 greyscale or 3 RGB)."
            )
    return image


def mask_to_labels(array: np.ndarray, path: str | Path = "<array>", mode: str = "auto") -> np.ndarray:
    """Turn a decoded mask image into ``int32 (height, width)`` class indices.

    Args:
        array: the decoded mask (see :func:`read_image`).
        path: its file name, for error messages.
        mode: ``"auto"`` (a mask whose values are all 0 or 255 is binary and
            255 becomes 1; other masks are class indices), ``"index"`` (pixel
            values are the classes) or ``"binary"`` (non-zero is class 1).

    Raises:
        ValueError: colour-coded (RGB with differing channels) or
            non-integer masks, negative values, or an unknown mode.

    Example:
        >>> mask_to_labels(np.array([[0, 255]], dtype=np.uint8)).tolist()
        [[0, 1]]
    """
    if mode not in MASK_MODES:
        raise ValueError(f"mask mode must be one of {MASK_MODES}, got {mode!r}.")
    if array.ndim == 3:
        if array.shape[-1] in (2, 4):
            array = array[..., :-1]
        if not np.all(array == array[..., :1]):
            raise ValueError(
                f"mask {path} is a colour image with different colours per channel; expected class indices "
                "(one channel, pixel value = class) or a 0/255 binary mask. Convert colour-coded masks to "
                "class-index PNGs first."
            )
        array = array[..., 0]
    if array.dtype == bool:
        return array.astype(np.int32)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise ValueError(f"mask {path} has non-integer values; masks must hold class indices (0, 1, 2 ...).")
    labels = array.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"mask {path} has negative values (minimum {labels.min()}); class indices start at 0.")
    if mode == "binary" or (mode == "auto" and np.all((labels == 0) | (labels == 255)) and labels.max(initial=0) == 255):
        return (labels > 0).astype(np.int32)
    return labels.astype(np.int32)


def _find_dir(root: Path, given: str | None, candidates: Sequence[str], what: str, option: str) -> Path:
    if given is not None:
        folder = Path(given)
        folder = folder if folder.is_absolute() else root / folder
        if not folder.is_dir():
            raise FileNotFoundError(f"{what} folder {folder} does not exist; check {option}.")
        return folder
    existing = {path.name.lower(): path for path in root.iterdir() if path.is_dir()} if root.is_dir() else {}
    for name in candidates:
        if name in existing:
            return existing[name]
    raise FileNotFoundError(
        f"no {what} folder in {root}: looked for a sub-folder named one of {', '.join(candidates)}. "
        f"Name the folder with {option} (found: {', '.join(sorted(existing)) or 'no sub-folders'})."
    )


@dataclass(frozen=True)
class Sample:
    """One image file and its mask: a file, or ``(class, file)`` pairs for per-class masks."""

    image: Path
    mask: Path | tuple[tuple[int, Path], ...] | None
    name: str = field(default="")


class SegmentationFolder:
    """Images and masks in folders, read lazily (see the module docstring for layouts).

    Construction is cheap: it lists the files, pairs images with masks by file
    stem and checks image and mask sizes from the file headers, so that
    mistakes are reported before any training starts. Pixel values are checked
    when a file is read (:meth:`load`), or for the whole folder at once by
    :meth:`scan`.

    Args:
        root: the data folder.
        images_dir, masks_dir: sub-folder names (or absolute paths); detected
            from :data:`IMAGE_DIR_NAMES` / :data:`MASK_DIR_NAMES` when ``None``.
            ``masks_dir=False`` reads images only (for prediction).
        n_classes: number of classes; masks with labels outside ``[0,
            n_classes)`` are refused. ``None`` defers the check (see
            :meth:`scan`, which infers it).
        mask_mode: see :func:`mask_to_labels`.
        channels: convert every image to this many channels; by default the
            channel count of the first image, and other counts are an error.
        class_dirs: for per-class mask sub-folders, their order (class 1, 2 ...);
            sorted names by default.
        cache_megabytes: decoded images kept in memory, at most this many MB.
        samples, convert_channels: used by :meth:`subset`.

    Raises:
        FileNotFoundError: missing folders.
        ValueError: an empty folder, images without masks or masks without
            images (named), image/mask size mismatches (named), unreadable
            headers (named).

    Example:
        >>> data = SegmentationFolder("isbi2012", images_dir="image", masks_dir="label")  # doctest: +SKIP
        >>> image, mask = data.load(0)  # float32 (512, 512, 1), int32 (512, 512) in {0, 1}
    """

    def __init__(
        self,
        root: str | Path,
        *,
        images_dir: str | None = None,
        masks_dir: str | None | bool = None,
        n_classes: int | None = None,
        mask_mode: str = "auto",
        channels: int | None = None,
        class_dirs: Sequence[str] | None = None,
        cache_megabytes: float = 256.0,
        samples: Sequence[Sample] | None = None,
        convert_channels: bool = False,
    ):
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}.")
        if n_classes is not None and (isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 1):
            raise ValueError(f"n_classes must be a positive integer or None, got {n_classes!r}.")
        self.root = Path(root)
        self.mask_mode = mask_mode
        self.n_classes = n_classes
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._cache_bytes = 0
        self._cache_limit = int(cache_megabytes * 2**20)
        self._lock = threading.Lock()
        if samples is not None:  # a subset made by split()
            self.samples = list(samples)
            self.channels = channels
            self.convert_channels = convert_channels
            self.class_names = None
            return
        if not self.root.exists():
            raise FileNotFoundError(f"data folder {self.root} does not exist.")
        if not self.root.is_dir():
            raise ValueError(f"{self.root} is a file; expected a folder with images/ and masks/ sub-folders.")
        self.images_dir = _find_dir(self.root, images_dir, IMAGE_DIR_NAMES, "image", "images_dir (--images-dir)")
        images = list_images(self.images_dir)
        if not images:
            raise ValueError(
                f"image folder {self.images_dir} has no image files ({', '.join(IMAGE_EXTENSIONS)}); "
                "put the images there or choose another folder."
            )
        self._check_unique_stems(images, self.images_dir)
        self.class_names = None
        if masks_dir is False:
            self.samples = [Sample(path, None, path.stem) for path in images]
        else:
            self.masks_dir = _find_dir(self.root, masks_dir, MASK_DIR_NAMES, "mask", "masks_dir (--masks-dir)")
            self.samples = self._pair(images, class_dirs)
        self.convert_channels = channels is not None
        self.channels = channels if channels is not None else self._first_image_channels(self.samples[0].image)
        self._check_sizes()

    # -- discovery -------------------------------------------------------------
    @staticmethod
    def _check_unique_stems(files: list[Path], folder: Path) -> None:
        seen: dict[str, Path] = {}
        for path in files:
            if path.stem in seen:
                raise ValueError(
                    f"{folder} has two files with the stem {path.stem!r} ({seen[path.stem].name} and {path.name}); "
                    "images and masks are paired by stem, so keep one of them."
                )
            seen[path.stem] = path

    def _pair(self, images: list[Path], class_dirs: Sequence[str] | None) -> list[Sample]:
        subfolders = sorted((path for path in self.masks_dir.iterdir() if path.is_dir()),
                            key=lambda path: natural_key(path.name))
        mask_files = list_images(self.masks_dir)
        if class_dirs is not None or (subfolders and not mask_files):
            return self._pair_per_class(images, subfolders, class_dirs)
        if not mask_files:
            raise ValueError(f"mask folder {self.masks_dir} has no mask files ({', '.join(IMAGE_EXTENSIONS)}).")
        self._check_unique_stems(mask_files, self.masks_dir)
        masks = {path.stem: path for path in mask_files}
        image_stems = {path.stem for path in images}
        missing = [path.name for path in images if path.stem not in masks]
        orphans = sorted(name for name in masks if name not in image_stems)
        if missing or orphans:
            parts = []
            if missing:
                parts.append(f"{len(missing)} image(s) without a mask in {self.masks_dir}: {', '.join(missing[:5])}"
                             + (" ..." if len(missing) > 5 else ""))
            if orphans:
                parts.append(f"{len(orphans)} mask(s) without an image in {self.images_dir}: "
                             f"{', '.join(masks[name].name for name in orphans[:5])}"
                             + (" ..." if len(orphans) > 5 else ""))
            raise ValueError(
                "images and masks do not match: " + "; ".join(parts)
                + ". Every image needs a mask with the same file stem (extensions may differ)."
            )
        return [Sample(path, masks[path.stem], path.stem) for path in images]

    def _pair_per_class(self, images, subfolders, class_dirs) -> list[Sample]:
        if class_dirs is not None:
            folders = []
            for name in class_dirs:
                folder = self.masks_dir / name
                if not folder.is_dir():
                    raise FileNotFoundError(f"class folder {folder} (from class_dirs) does not exist.")
                folders.append(folder)
        else:
            folders = subfolders
        if not folders:
            raise ValueError(f"mask folder {self.masks_dir} has no per-class sub-folders.")
        self.class_names = ("background",) + tuple(folder.name for folder in folders)
        per_class = []
        for folder in folders:
            files = list_images(folder)
            self._check_unique_stems(files, folder)
            per_class.append({path.stem: path for path in files})
        samples = []
        for path in images:
            found = tuple((label, files[path.stem]) for label, files in enumerate(per_class, start=1)
                          if path.stem in files)
            if not found:
                raise ValueError(
                    f"image {path.name} has no mask in any class folder of {self.masks_dir} "
                    f"({', '.join(folder.name for folder in folders)}); give each image at least one class mask "
                    "with the same file stem (an all-black mask for an image without objects)."
                )
            samples.append(Sample(path, found, path.stem))
        return samples

    @staticmethod
    def _first_image_channels(path: Path) -> int:
        array = read_image(path)
        channels = 1 if array.ndim == 2 else array.shape[-1]
        return {2: 1, 4: 3}.get(channels, channels)

    def _mask_paths(self, sample: Sample) -> list[Path]:
        if sample.mask is None:
            return []
        if isinstance(sample.mask, Path):
            return [sample.mask]
        return [path for _, path in sample.mask]

    def _check_sizes(self) -> None:
        for sample in self.samples:
            size = image_size(sample.image)
            for mask in self._mask_paths(sample):
                mask_size = image_size(mask)
                if mask_size != size:
                    raise ValueError(
                        f"image {sample.image} is {size[0]} x {size[1]} (height x width) but its mask {mask} is "
                        f"{mask_size[0]} x {mask_size[1]}; a mask must have its image's size."
                    )

    # -- access ----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    @property
    def has_masks(self) -> bool:
        """Whether the samples have masks (``masks_dir=False`` reads images only)."""
        return bool(self.samples) and self.samples[0].mask is not None

    def image_size(self, index: int) -> tuple[int, int]:
        """``(height, width)`` of sample ``index`` (from the header)."""
        return image_size(self.samples[index].image)

    def load_image(self, index: int) -> np.ndarray:
        """Sample ``index``'s image as ``float32 (height, width, channels)`` in [0, 1]."""
        sample = self.samples[index]
        array = read_image(sample.image)
        if not self.convert_channels:
            found = 1 if array.ndim == 2 else {2: 1, 4: 3}.get(array.shape[-1], array.shape[-1])
            if found != self.channels:
                raise ValueError(
                    f"image {sample.image} has {found} channels but the first image of the folder has "
                    f"{self.channels}; use images with the same number of channels, or choose the channel count "
                    "(channels=1 or 3) to convert them."
                )
        return to_float_image(array, sample.image, self.channels)

    def load_mask(self, index: int) -> np.ndarray:
        """Sample ``index``'s mask as ``int32 (height, width)`` class indices (checked)."""
        sample = self.samples[index]
        if sample.mask is None:
            raise ValueError(f"image {sample.image} has no mask (this dataset was opened without masks).")
        if isinstance(sample.mask, Path):
            labels = mask_to_labels(read_image(sample.mask), sample.mask, self.mask_mode)
            where = sample.mask
        else:
            labels = None
            for label, path in sample.mask:
                binary = mask_to_labels(read_image(path), path, "binary")
                labels = np.zeros_like(binary) if labels is None else labels
                labels = np.where(binary > 0, label, labels)
            where = sample.mask[0][1].parent.parent
        if self.n_classes is not None and labels.size and labels.max() >= max(self.n_classes, 2):
            raise ValueError(
                f"mask {where} has label {int(labels.max())}, outside [0, {self.n_classes}) for "
                f"n_classes={self.n_classes}. Set n_classes to the number of classes including the background "
                "(for 0/255 binary masks: 2), or fix the mask."
            )
        return labels

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None]:
        """``(image, mask)`` of sample ``index`` (mask ``None`` without masks), cached within the limit."""
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
        image = self.load_image(index)
        mask = self.load_mask(index) if self.samples[index].mask is not None else None
        if mask is not None and mask.shape != image.shape[:2]:
            raise ValueError(
                f"image {self.samples[index].image} is {image.shape[:2]} but its mask decodes to {mask.shape}; "
                "a mask must have its image's size."
            )
        nbytes = image.nbytes + (mask.nbytes if mask is not None else 0)
        with self._lock:
            if nbytes <= self._cache_limit:
                self._cache[index] = (image, mask)
                self._cache_bytes += nbytes
                while self._cache_bytes > self._cache_limit:
                    _, (old_image, old_mask) = self._cache.popitem(last=False)
                    self._cache_bytes -= old_image.nbytes + (old_mask.nbytes if old_mask is not None else 0)
        return image, mask

    def name(self, index: int) -> str:
        """The file stem of sample ``index``."""
        return self.samples[index].name

    def scan(self) -> np.ndarray:
        """Read every mask once: check it and count pixels per class.

        Sets :attr:`n_classes` when it was ``None`` (largest label + 1, at
        least 2).

        Returns:
            ``int64 (n_classes,)`` pixel counts per class.

        Raises:
            ValueError: a mask with a label outside ``[0, n_classes)`` or an
                unreadable file (named).
        """
        counts = np.zeros(0, dtype=np.int64)
        for index in range(len(self)):
            labels = self.load_mask(index)
            found = np.bincount(labels.ravel())
            if found.size > counts.size:
                counts = np.pad(counts, (0, found.size - counts.size))
            counts[: found.size] += found
        if self.n_classes is None:
            self.n_classes = max(2, counts.size)
        return np.pad(counts, (0, max(0, self.n_classes - counts.size)))

    def subset(self, indices: Sequence[int]) -> "SegmentationFolder":
        """A dataset of the given samples, sharing this one's settings."""
        subset = SegmentationFolder(
            self.root, n_classes=self.n_classes, mask_mode=self.mask_mode, channels=self.channels,
            cache_megabytes=self._cache_limit / 2**20, samples=[self.samples[i] for i in indices],
            convert_channels=self.convert_channels,
        )
        subset.class_names = self.class_names
        return subset

    def split(self, validation: float | int) -> tuple["SegmentationFolder", "SegmentationFolder"]:
        """``(train, validation)``: the last samples in natural file order are the validation set.

        Args:
            validation: a fraction in ``(0, 1)`` of the samples, or a count
                ``>= 1``. ISBI 2012 (files ``0.png`` ... ``29.png``) with
                ``validation=5`` gives slices 25-29 for validation.

        Raises:
            ValueError: a split that leaves no training or no validation sample.
        """
        count = validation_count(len(self), validation)
        cut = len(self) - count
        return self.subset(range(cut)), self.subset(range(cut, len(self)))


def validation_count(total: int, validation: float | int) -> int:
    """How many of ``total`` samples ``validation`` (fraction or count) selects.

    Raises:
        ValueError: a negative value, or a split leaving no training or
            validation sample.
    """
    if isinstance(validation, bool) or validation <= 0:
        raise ValueError(f"the validation split must be a fraction in (0, 1) or a count >= 1, got {validation!r}.")
    count = int(validation) if validation >= 1 else int(round(total * validation))
    if validation >= 1 and validation != int(validation):
        raise ValueError(f"a validation split >= 1 is a number of samples and must be whole, got {validation!r}.")
    if count < 1 or count >= total:
        raise ValueError(
            f"a validation split of {validation!r} leaves {count} of {total} samples for validation; "
            "at least one sample is needed in each of training and validation."
        )
    return count
