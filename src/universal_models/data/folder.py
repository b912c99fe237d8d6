"""Segmentation data in folders: images and masks with matching file names.

Layout (folder names are detected, or chosen with ``images_dir``/``masks_dir``)::

    data/
      images/   a.png  b.tif  c.jpg ...      (any mode of :mod:`~universal_models.data.reading`)
      masks/    a.png  b.tif  c.png ...      (same stems)

Masks can be

- class-index images (pixel value = class, 0 = background),
- binary 0/255 images (255 becomes class 1), as ISBI 2012 and most EM data, or
- one sub-folder per class, ``masks/<class>/<stem>.png``, each a binary mask of
  that class: sub-folders in sorted order (or ``class_dirs``) are classes 1, 2,
  ...; pixels in none of them are background (0); where two overlap the later
  class wins.

How each file's pixels are read (image modes, palettes, TIFF channels, mask
values, ``mask_mode``) is decided by :mod:`universal_models.data.reading`.
What a folder holds besides the data is skipped: files that are not images
(``README.txt``, ``Thumbs.db``, ``desktop.ini``), and files and folders whose
names start with ``.``, ``__``, ``@``, ``$`` or ``~$`` (``.DS_Store``,
``.ipynb_checkpoints``, ``__MACOSX``, ``@eaDir``, ``$RECYCLE.BIN``) or that are
named ``System Volume Information``.

Files are read lazily (one image when it is needed), so large folders never
sit in memory at once; a bounded cache keeps decoded images of small folders.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._validation import check_integer
from .reading import (
    IMAGE_EXTENSIONS,
    MASK_MODES,
    image_size,
    infer_class_count,
    inspect_image,
    mask_to_foreground,
    mask_to_labels,
    read_file,
    to_float_image,
)

#: Folder names tried, in order, when ``images_dir`` / ``masks_dir`` are not given.
IMAGE_DIR_NAMES = ("images", "image", "imgs", "img", "inputs", "input", "x", "raw")
MASK_DIR_NAMES = ("masks", "mask", "labels", "label", "annotations", "annotation", "gt", "groundtruth",
                  "ground_truth", "targets", "target", "y")
#: Entries of a data folder that are never data: by name prefix, and by name (lower case).
SYSTEM_PREFIXES = (".", "__", "@", "$", "~$")
SYSTEM_NAMES = ("thumbs.db", "desktop.ini", "system volume information")


def natural_key(text: str) -> list:
    """Sort key that orders ``2.png`` before ``10.png`` (numbers compare as numbers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def is_system_entry(path: str | Path) -> bool:
    """Whether a file or folder is left by a system or tool, not data (see the module docstring).

    Example:
        >>> is_system_entry(".ipynb_checkpoints"), is_system_entry("cell")
        (True, False)
    """
    name = Path(path).name
    return name.startswith(SYSTEM_PREFIXES) or name.lower() in SYSTEM_NAMES


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` (see :data:`IMAGE_EXTENSIONS`), in natural order.

    System and tool files (``.name``, ``~$name`` ..., see :func:`is_system_entry`) are skipped.

    Example:
        >>> list_images("data/images")  # doctest: +SKIP
        [PosixPath('data/images/2.png'), PosixPath('data/images/10.png')]
    """
    folder = Path(folder)
    files = [path for path in folder.iterdir()
             if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not is_system_entry(path)]
    return sorted(files, key=lambda path: natural_key(path.name))


def list_subfolders(folder: str | Path) -> list[Path]:
    """Sub-folders of ``folder`` that may hold data (system and tool folders skipped), in natural order."""
    return sorted((path for path in Path(folder).iterdir() if path.is_dir() and not is_system_entry(path)),
                  key=lambda path: natural_key(path.name))


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
    stem and reads every file's header, so that mistakes are reported before
    any training starts: image and mask sizes that differ, files no reading
    rule accepts, and images with different channel counts. Pixel values are
    checked when a file is read (:meth:`load`), or for the whole folder at
    once by :meth:`scan`.

    Args:
        root: the data folder.
        images_dir, masks_dir: sub-folder names (or absolute paths); detected
            from :data:`IMAGE_DIR_NAMES` / :data:`MASK_DIR_NAMES` when ``None``.
            ``masks_dir=False`` reads images only (for prediction).
        n_classes: number of classes; masks with labels outside ``[0,
            n_classes)`` are refused. ``None`` defers the check (see
            :meth:`scan`, which infers it).
        mask_mode: how mask values become classes: ``"auto"``, ``"index"``,
            ``"binary"`` or ``"threshold"`` (see
            :func:`~universal_models.data.reading.mask_to_labels`).
        channels: convert every image to this many channels (greyscale and
            RGB are converted into each other); by default the channel count
            all images share, and images with different counts are an error.
        class_dirs: for per-class mask sub-folders, their order (class 1, 2 ...);
            sorted names by default.
        cache_megabytes: decoded images kept in memory, at most this many MB.
        samples: used by :meth:`subset`.

    Raises:
        FileNotFoundError: missing folders.
        ValueError: an empty folder, images without masks or masks without
            images (named), image/mask size mismatches (named), unreadable
            headers (named), images with different channel counts and no
            ``channels``, or images that cannot be converted to ``channels``.

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
    ):
        if mask_mode not in MASK_MODES:
            raise ValueError(f"mask_mode must be one of {MASK_MODES}, got {mask_mode!r}.")
        n_classes = check_integer("n_classes", n_classes, allow_none=True)
        channels = check_integer("channels", channels, allow_none=True)
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
        if self.class_names is not None and mask_mode == "index":
            raise ValueError(f"mask_mode='index' does not apply to the per-class mask folders of {self.masks_dir}, "
                             "which hold binary masks; use 'auto', 'binary' or 'threshold'.")
        self.channels = self._inspect(channels)

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
        subfolders = list_subfolders(self.masks_dir)
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

    def _mask_paths(self, sample: Sample) -> list[Path]:
        if sample.mask is None:
            return []
        if isinstance(sample.mask, Path):
            return [sample.mask]
        return [path for _, path in sample.mask]

    def _inspect(self, channels: int | None) -> int:
        """Read every file's header: sizes must match, and the channel count is chosen once for all images."""
        found: dict[int, list[Path]] = {}
        for sample in self.samples:
            image = inspect_image(sample.image, "image")
            found.setdefault(image.channels, []).append(sample.image)
            for path in self._mask_paths(sample):
                mask = inspect_image(path, "mask")
                if (mask.height, mask.width) != (image.height, image.width):
                    raise ValueError(
                        f"image {sample.image} is {image.height} x {image.width} (height x width) but its mask "
                        f"{path} is {mask.height} x {mask.width}; a mask must have its image's size."
                    )
        return choose_channels(found, channels, self.images_dir)

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
        """Sample ``index``'s image as ``float32 (height, width, channels)`` (see :func:`to_float_image`)."""
        path = self.samples[index].image
        return to_float_image(read_file(path, "image")[0], path, self.channels)

    def load_mask(self, index: int) -> np.ndarray:
        """Sample ``index``'s mask as ``int32 (height, width)`` class indices (checked)."""
        sample = self.samples[index]
        if sample.mask is None:
            raise ValueError(f"image {sample.image} has no mask (this dataset was opened without masks).")
        if isinstance(sample.mask, Path):
            array, info = read_file(sample.mask, "mask")
            return mask_to_labels(array, sample.mask, self.mask_mode, n_classes=self.n_classes, lossy=info.lossy)
        labels = None
        for label, path in sample.mask:
            array, info = read_file(path, "mask")
            foreground = mask_to_foreground(array, path, self.mask_mode, lossy=info.lossy)
            labels = np.zeros(foreground.shape, np.int32) if labels is None else labels
            labels[foreground] = label
        if self.n_classes is not None and labels.max(initial=0) >= max(self.n_classes, 2):
            raise ValueError(
                f"the masks of {sample.image.name} in {self.masks_dir} give label {int(labels.max())}, outside "
                f"[0, {self.n_classes}) for n_classes={self.n_classes}: there are {len(self.class_names) - 1} class "
                f"folders. Set n_classes to {len(self.class_names)} (the folders plus the background)."
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

        Sets :attr:`n_classes` when it was ``None``: the largest label + 1 (at
        least 2), if the labels look like classes (see
        :func:`~universal_models.data.reading.infer_class_count`).

        Returns:
            ``int64 (n_classes,)`` pixel counts per class.

        Raises:
            ValueError: a mask with a label outside ``[0, n_classes)``, an
                unreadable file (named), or, when ``n_classes`` is inferred,
                masks whose values do not look like class labels.
        """
        counts = np.zeros(0, dtype=np.int64)
        largest = None
        for index in range(len(self)):
            found = np.bincount(self.load_mask(index).ravel())
            if found.size > counts.size:
                counts = np.pad(counts, (0, found.size - counts.size))
                largest = self.samples[index]
            counts[: found.size] += found
        if self.n_classes is None:
            if self.class_names is not None:
                self.n_classes = len(self.class_names)
            else:
                where = largest.mask if largest is not None else None
                self.n_classes = infer_class_count(counts, where=str(getattr(self, "masks_dir", self.root)),
                                                   mode=self.mask_mode, largest=where)
        return np.pad(counts, (0, max(0, self.n_classes - counts.size)))

    def subset(self, indices: Sequence[int]) -> SegmentationFolder:
        """A dataset of the given samples, sharing this one's settings."""
        subset = SegmentationFolder(
            self.root, n_classes=self.n_classes, mask_mode=self.mask_mode, channels=self.channels,
            cache_megabytes=self._cache_limit / 2**20, samples=[self.samples[i] for i in indices],
        )
        subset.class_names = self.class_names
        for name in ("images_dir", "masks_dir"):
            if hasattr(self, name):
                setattr(subset, name, getattr(self, name))
        return subset

    def split(self, validation: float | int) -> tuple[SegmentationFolder, SegmentationFolder]:
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


def choose_channels(found: dict[int, list[Path]], channels: int | None, folder: str | Path) -> int:
    """The channel count of a folder's images, decided once for all of them.

    Args:
        found: image files by the channel count they are read with.
        channels: the count asked for (``--channels``), or ``None`` for the one
            all images share.
        folder: named in messages.

    Raises:
        ValueError: images with different counts and no ``channels`` (the
            message lists them and names the option), or images that cannot
            be converted to ``channels`` (only greyscale and RGB are).

    Example:
        >>> choose_channels({1: ["a.png"], 3: ["b.png"]}, 3, "images")
        3
    """

    def listing(counts) -> str:
        return "; ".join(f"{len(found[count])} with {count} ({', '.join(Path(p).name for p in found[count][:3])}"
                         f"{' ...' if len(found[count]) > 3 else ''})" for count in sorted(counts))

    if channels is None:
        if len(found) == 1:
            return next(iter(found))
        how = ("choose one with --channels 1 (greyscale: colour images are turned to luminance) or --channels 3 "
               "(colour: greyscale images are repeated), channels=1 or 3 in Python"
               if set(found) <= {1, 3} else
               "only greyscale and RGB are converted into each other, so convert the other images to one channel "
               "count first")
        raise ValueError(f"the images in {folder} have different channel counts: {listing(found)}; a model takes "
                         f"one count, so {how}.")
    unconvertible = [count for count in found if count != channels and {count, channels} != {1, 3}]
    if unconvertible:
        raise ValueError(
            f"the images in {folder} cannot all be read with {channels} channels (--channels {channels}): "
            f"{listing(unconvertible)}; only greyscale and RGB are converted into each other. Convert those images "
            "or choose another channel count."
        )
    return channels


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
