"""How image and mask files are read: one documented rule for each way pixels are stored.

Each rule is decided from the file's header (Pillow's mode and palette, the
PNG bit depth, tifffile's series shape and axes), by the same code that later
decodes the file. So :func:`inspect_image` can tell a folder, before any pixel
is decoded, the size and channel count every file will have when
:func:`read_image` reads it. ``docs/cli.md`` has these rules as a table.

Images (the model's input), :func:`read_image` with ``role="image"``:

- greyscale (``1``, ``L``, 16-bit ``I;16``, 32-bit ``I``/``F``): one channel;
  grey + alpha (``LA``): one channel, the alpha is dropped;
- ``RGB``: three channels; ``RGBA``: three, the alpha is dropped; ``CMYK``,
  ``YCbCr``, ``HSV``: converted to RGB;
- palette (``P``, ``PA``): the colours of the palette, as RGB, or as one grey
  channel when every palette entry is grey;
- 16-bit colour PNGs are refused: Pillow keeps only 8 bits of their channels;
- TIFF (read with tifffile, its first image series): ``(height, width)`` is one
  channel; samples (``YXS`` or planar ``SYX``) and ImageJ channels (``CYX``)
  are channels, an extra sample marked as alpha is dropped; plain pages
  (``QYX``, as ``tifffile.imwrite`` stores an array it cannot tell apart) are
  channels along the array's shortest axis, first or last (a ``(3, 48, 48)``
  array: 3 channels; ``(48, 48, 2)``: 2 channels), and refused when no axis is
  shortest; z-stacks, time series and higher-dimensional files are refused.

:func:`to_float_image` then scales the values to ``float32``: 1-bit to 0/1,
8- and 16-bit integers divided by the type's maximum (255, 65535; signed types
by theirs, so they lie in [-1, 1]); other integers and floats are kept as they
are when they lie in [0, 1], else scaled per image to [0, 1] by their minimum
and maximum. NaN and infinite values are refused.

Masks, ``role="mask"``: palette images give their palette indices (the usual
way to store class-index masks); alpha channels are dropped; colour images
must be grey (equal channels). :func:`mask_to_labels` turns the values into
classes by ``mode``:

- ``"auto"``: a mask holding only 0 and 255 (or 0 and its type's maximum,
  65535 for 16-bit) is binary, the high value class 1; other masks are class
  indices. JPEG masks are refused: JPEG compression changes pixel values, so
  they are not exact labels.
- ``"index"``: pixel values are the classes.
- ``"binary"``: non-zero is class 1.
- ``"threshold"``: values at or above half of the full scale (128 of 255,
  32768 of 65535, 0.5 for float masks in [0, 1]) are class 1; masks holding
  only 0 and 1 are taken as they are. For binary masks with anti-aliased,
  resized or JPEG-compressed edges.

A class count inferred from masks is checked by :func:`infer_class_count`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
TIFF_EXTENSIONS = (".tif", ".tiff")
#: How mask pixel values become classes (see :func:`mask_to_labels`).
MASK_MODES = ("auto", "index", "binary", "threshold")
#: What a file is read for.
ROLES = ("image", "mask")
#: Class counts above this are not inferred from masks: give ``n_classes``.
MAX_INFERRED_CLASSES = 128
#: Above this many inferred classes, a class count of mostly empty labels is refused (auto mode).
SPARSE_CHECK_FROM = 16
#: A label with less than this share of the pixels counts as nearly empty.
NEARLY_EMPTY = 0.001

#: Pillow modes converted before reading (colour spaces to RGB, premultiplied alpha to plain).
_PIL_CONVERSIONS = {"CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "RGBX": "RGB", "RGBa": "RGBA",
                    "La": "LA"}
_GREY_MODES = ("1", "L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
_TIFF_ALPHA = (1, 2)  # EXTRASAMPLE.ASSOCALPHA, UNASSALPHA
_STACK_AXES = {"Z": "z-slices", "T": "time points"}


class _RuleError(ValueError):
    """A file that decodes but that no reading rule accepts (raised as it is, not as 'cannot read')."""


def _open_error(path: Path, error: Exception) -> ValueError:
    return ValueError(
        f"cannot read image file {path}: {error}. The file is unreadable, truncated or not an image in a "
        f"supported format ({', '.join(IMAGE_EXTENSIONS)}); replace or remove it."
    )


@contextlib.contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """Turn the decoders' errors into one message naming the file; rule errors pass unchanged."""
    try:
        yield
    except _RuleError:
        raise
    except (OSError, ValueError, SyntaxError, RuntimeError, EOFError, IndexError) as error:
        raise _open_error(path, error) from error


@dataclass(frozen=True)
class ImageFile:
    """What an image file holds and how it is read, from its header (see the module docstring).

    Attributes:
        path: the file.
        format: ``"PNG"``, ``"JPEG"``, ``"BMP"``, ``"TIFF"`` ...
        height, width: the size as read.
        channels: channels as read for ``role`` (images: alpha dropped, palette
            colours expanded; masks: before :func:`mask_to_labels`).
        stored: how the pixels are stored, for messages (``"palette PNG"``,
            ``"uint16 TIFF, 3 pages"`` ...).
        lossy: whether the format's compression changes pixel values (JPEG).
        role: ``"image"`` or ``"mask"``.
    """

    path: Path
    format: str
    height: int
    width: int
    channels: int
    stored: str
    lossy: bool
    role: str
    _convert: str | None = field(default=None, repr=False)  # Pillow mode to convert to
    _keep: int | None = field(default=None, repr=False)  # channels kept (the rest is alpha)
    _channel_axis: int | None = field(default=None, repr=False)  # TIFF: the axis that holds channels


# -- Pillow files -----------------------------------------------------------------------------------------
def _png_header(path: Path) -> tuple[int, int] | None:
    """``(bit depth, colour type)`` from a PNG's IHDR chunk."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _palette_is_grey(image) -> bool:
    palette = image.palette
    if palette is None:  # some formats (BMP) read the palette with the pixels
        image.load()
        palette = image.palette
    if palette is None:
        return False
    step = max(len(palette.mode), 3)
    entries = np.frombuffer(bytes(palette.palette), dtype=np.uint8)
    entries = entries[: entries.size // step * step].reshape(-1, step)[:, :3]
    return bool(np.all(entries == entries[:, :1]))


def _pil_file(image, path: Path, role: str) -> ImageFile:
    mode = image.mode
    width, height = image.size
    lossy = image.format in ("JPEG", "MPO")
    header = _png_header(path) if image.format == "PNG" else None
    if header is not None and header[0] == 16 and header[1] in (2, 4, 6):  # RGB, grey + alpha, RGBA
        raise _RuleError(
            f"{path} is a 16-bit colour PNG; Pillow, which reads PNG files here, keeps only 8 of its 16 bits per "
            "channel. Save it as a 16-bit TIFF (read in full) or as an 8-bit PNG."
        )
    convert = _PIL_CONVERSIONS.get(mode)
    mode = convert or mode
    stored = f"{image.format} image (Pillow mode {mode})"
    if mode in ("P", "PA"):
        if role == "mask":  # palette indices are the classes
            return ImageFile(path, image.format, height, width, 1, f"palette {image.format}", lossy, role,
                             None, 1 if mode == "PA" else None)
        grey = _palette_is_grey(image)
        return ImageFile(path, image.format, height, width, 1 if grey else 3,
                         f"palette {image.format} ({'grey' if grey else 'colour'} palette)", lossy, role,
                         "RGB", 1 if grey else None)
    if mode in _GREY_MODES or mode.startswith("I;16"):
        return ImageFile(path, image.format, height, width, 1, stored, lossy, role, convert)
    if mode == "LA":
        return ImageFile(path, image.format, height, width, 1, stored, lossy, role, convert, 1)
    if mode == "RGB":
        return ImageFile(path, image.format, height, width, 3, stored, lossy, role, convert)
    if mode == "RGBA":
        return ImageFile(path, image.format, height, width, 3, stored, lossy, role, convert, 3)
    raise _RuleError(
        f"{path} is a {image.format} image in Pillow mode {mode!r}, which is not read here; save it as greyscale, "
        "RGB, RGBA or palette PNG, or as TIFF."
    )


def _pil_pixels(image, info: ImageFile) -> np.ndarray:
    image.load()
    if info._convert is not None:
        image = image.convert(info._convert)
    array = np.asarray(image)
    if array.dtype.byteorder not in ("=", "|"):  # I;16B
        array = array.astype(array.dtype.newbyteorder("="))
    if info._keep is not None:
        array = array[..., : info._keep]
    return array


# -- TIFF files ---------------------------------------------------------------------------------------------
def _tiff_shape(series) -> tuple[tuple[int, ...], str]:
    """The first series' shape and axes without axes of length 1 (height and width stay)."""
    kept = [(size, axis) for size, axis in zip(series.shape, series.axes) if size != 1 or axis in "YX"]
    return tuple(size for size, _ in kept), "".join(axis for _, axis in kept)


def _tiff_file(tiff, path: Path, role: str) -> ImageFile:
    series = tiff.series[0]
    shape, axes = _tiff_shape(series)
    stored = f"{series.dtype} TIFF of shape {shape} (axes {axes})"
    if len(shape) == 2:
        return ImageFile(path, "TIFF", shape[0], shape[1], 1, stored, False, role)
    if len(shape) != 3:
        raise _RuleError(
            f"{path} is a {stored}; expected one 2-D image, with or without channels. Save one image per file."
        )
    other = [axis for axis in axes if axis not in "YX"]
    letter = other[0] if len(other) == 1 else "Q"
    if letter in _STACK_AXES:
        count = shape[axes.index(letter)]
        raise _RuleError(
            f"{path} is a stack of {count} {_STACK_AXES[letter]} ({stored}), not one image; save one 2-D image "
            "per file (or save channels as channels, not as z-slices or frames)."
        )
    if letter in "SC" and len(other) == 1:
        channel_axis = axes.index(letter)
    else:  # plain pages: the channels are along the shortest axis, first or last
        first, last = shape[0] < min(shape[1:]), shape[-1] < min(shape[:-1])
        if not first and not last:
            raise _RuleError(
                f"{path} is a {stored} whose channel axis cannot be told apart from its height and width (no "
                "axis is shorter than the others). Save it as (height, width, channels) with "
                "tifffile.imwrite(path, array, photometric='minisblack', planarconfig='contig')."
            )
        channel_axis = 0 if first else 2
    channels = shape[channel_axis]
    height, width = (size for axis, size in enumerate(shape) if axis != channel_axis)
    keep = None
    if letter == "S":
        alpha = sum(1 for sample in tiff.pages[0].extrasamples if int(sample) in _TIFF_ALPHA)
        if alpha and channels - alpha in (1, 3):
            keep = channels - alpha
    return ImageFile(path, "TIFF", height, width, keep or channels, stored, False, role, None, keep, channel_axis)


def _tiff_pixels(tiff, info: ImageFile) -> np.ndarray:
    series = tiff.series[0]
    array = np.asarray(series.asarray()).reshape(_tiff_shape(series)[0])
    if info._channel_axis == 0:
        array = np.moveaxis(array, 0, -1)
    if info._keep is not None:
        array = array[..., : info._keep]
    return array


# -- the public readers -------------------------------------------------------------------------------------
@contextlib.contextmanager
def _opened(path: str | Path, role: str) -> Iterator[tuple[ImageFile, Callable[[], np.ndarray]]]:
    """``(what the header says, a function that decodes the pixels)`` of an open file."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}.")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist.")
    with _decoding(path):
        if path.suffix.lower() in TIFF_EXTENSIONS:
            import tifffile

            with tifffile.TiffFile(path) as tiff:
                info = _tiff_file(tiff, path, role)
                yield info, lambda: _tiff_pixels(tiff, info)
        else:
            from PIL import Image

            with Image.open(path) as image:
                info = _pil_file(image, path, role)
                yield info, lambda: _pil_pixels(image, info)


def inspect_image(path: str | Path, role: str = "image") -> ImageFile:
    """What :func:`read_image` will give for ``path``, from the file's header (no pixels decoded).

    Args:
        path: an image file (:data:`IMAGE_EXTENSIONS`).
        role: ``"image"`` or ``"mask"`` (palette files differ, see the module docstring).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unreadable header (the message names the file), or a
            file that no reading rule accepts (says why and what to do).

    Example:
        >>> inspect_image("images/0.png").channels  # doctest: +SKIP
        3
    """
    with _opened(path, role) as (info, _):
        return info


def read_image(path: str | Path, role: str = "image") -> np.ndarray:
    """Decode one image file by the rules of the module docstring, in the file's dtype.

    Returns ``(height, width)`` for single-channel images and ``(height, width,
    channels)`` otherwise: alpha dropped, palette images as their colours
    (``role="image"``) or as their palette indices (``role="mask"``), TIFF
    channels moved last. :func:`to_float_image` scales an image,
    :func:`mask_to_labels` turns a mask into classes.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file cannot be decoded (truncated, corrupt, unknown
            format), or no reading rule accepts it; the message names the file.

    Example:
        >>> mask = read_image("masks/0.png", role="mask")  # doctest: +SKIP
    """
    return read_file(path, role)[0]


def read_file(path: str | Path, role: str = "image") -> tuple[np.ndarray, ImageFile]:
    """:func:`read_image`'s array and :func:`inspect_image`'s description of one file, in one reading."""
    with _opened(path, role) as (info, decode):
        array = decode()
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.size == 0 or array.shape[:2] != (info.height, info.width):
        raise ValueError(f"image file {info.path} decodes to shape {array.shape}, not the {info.height} x "
                         f"{info.width} of its header; replace or remove it.")
    return array, info


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image file as read, from its header (no full decode).

    Raises:
        ValueError: the header cannot be read (the message names the file).
    """
    info = inspect_image(path)
    return info.height, info.width


# -- images -------------------------------------------------------------------------------------------------
def _scaled(array: np.ndarray, path) -> np.ndarray:
    """Values in [0, 1] by the rule of the module docstring (float32)."""
    if array.dtype == bool:
        return array.astype(np.float32)
    if array.dtype.kind in "ui" and array.dtype.itemsize <= 2:
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    values = array.astype(np.float32)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"image {path} contains NaN or infinite values; fix or remove the file.")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low >= 0.0 and high <= 1.0:
        return values
    if high == low:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def to_float_image(array: np.ndarray, path: str | Path = "<array>", channels: int | None = None) -> np.ndarray:
    """Scale a decoded image to ``float32 (height, width, channels)``.

    1-bit images become 0/1; 8- and 16-bit integers are divided by their
    type's maximum (255, 65535 ...); other integers and floats are kept when
    they lie in [0, 1] and otherwise scaled to [0, 1] by the image's minimum and
    maximum. Every channel of ``array`` is kept (:func:`read_image` has dropped
    alpha channels already). With ``channels`` given, greyscale is repeated to
    RGB and RGB is turned to greyscale (luminance) as needed.

    Raises:
        ValueError: NaN or infinite values, or a channel count that cannot
            be converted (the message names the file).

    Example:
        >>> to_float_image(np.array([[0, 255]], np.uint8)).tolist()
        [[[0.0], [1.0]]]
    """
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    image = _scaled(array, path)
    if channels is not None and image.shape[-1] != channels:
        if channels == 3 and image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        elif channels == 1 and image.shape[-1] == 3:
            image = (image @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]
        else:
            raise ValueError(
                f"image {path} has {image.shape[-1]} channels but {channels} are expected; only greyscale and RGB "
                "are converted into each other: use images with the expected number of channels."
            )
    return image


# -- masks --------------------------------------------------------------------------------------------------
def _check_mode(mode: str) -> None:
    if mode not in MASK_MODES:
        raise ValueError(f"mask mode must be one of {MASK_MODES}, got {mode!r}.")


def _full_scale(dtype: np.dtype) -> float | None:
    """The value of 'fully on' for a mask type: 1 (1-bit, float), 255 (8-bit), 65535 (16-bit) ..."""
    if dtype.kind in "bf":  # bool (1-bit) or float
        return 1.0
    if dtype.kind in "ui" and dtype.itemsize <= 2:
        return float(np.iinfo(dtype).max)
    return None


def _histogram(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(distinct values, pixel counts)`` of a mask."""
    if values.dtype.kind in "ub" or (values.dtype.kind == "i" and values.size and values.min() >= 0):
        if values.size and int(values.max()) < 2**20:
            counts = np.bincount(values.ravel().astype(np.int64))
            found = np.flatnonzero(counts)
            return found, counts[found]
    return np.unique(values, return_counts=True)


def describe_values(values: np.ndarray, counts: np.ndarray) -> str:
    """``"0 (93.1 % of the pixels), 255 (5.2 %) and 47 other values from 1 to 254 (1.7 %)"``.

    Example:
        >>> describe_values(np.array([0, 1]), np.array([3, 1]))
        '0 (75 % of the pixels) and 1 (25 %)'
    """
    values, counts = np.asarray(values), np.asarray(counts, dtype=np.float64)
    total = counts.sum() or 1.0

    def share(count):
        percent = 100.0 * count / total
        return f"{percent:.3g} %"

    def value(item):
        return f"{item:g}" if isinstance(item, (float, np.floating)) else str(item)

    order = np.argsort(-counts, kind="stable")
    shown = order if len(order) <= 4 else order[:2]
    parts = [f"{value(values[index])} ({share(counts[index])}{' of the pixels' if n == 0 else ''})"
             for n, index in enumerate(shown)]
    if len(order) > len(shown):
        rest = np.sort(order[len(shown):])
        parts.append(f"{len(rest)} other values from {value(values[rest].min())} to {value(values[rest].max())} "
                     f"({share(counts[rest].sum())})")
    return ", ".join(parts[:-1]) + f" and {parts[-1]}" if len(parts) > 1 else parts[0]


def _threshold_words(high) -> str:
    return "values >= 128 of 255 are foreground" if high <= 255 else "values >= 32768 of 65535 are foreground"


def _not_labels_hint(found: np.ndarray, counts: np.ndarray) -> str:
    """The likely cause of mask values that are not labels, and what to do, from their histogram."""
    high = found.max(initial=0)
    extremes = counts[(found == 0) | (found == high)].sum()
    if high in (255, 65535) and found.size > 2 and extremes >= 0.8 * counts.sum():
        return (
            "Binary masks with anti-aliased, resized or JPEG-compressed edges look like this: read them with "
            f"mask_mode='threshold' (--mask-mode threshold: {_threshold_words(high)}), or save exact 0/255 masks."
        )
    if found.size <= 16:
        return (
            f"If these {found.size} values are {found.size} classes, store them as 0 ... {found.size - 1} (masks "
            "spread over 0-255 for viewing are not labels; a value marking pixels to leave out, often 255, must "
            "become one of the classes)."
        )
    return "Masks must hold the class of each pixel (0, 1, 2 ...); greyscale images are not masks."


def _single_channel(array: np.ndarray, path) -> np.ndarray:
    if array.ndim == 3:
        if not np.all(array == array[..., :1]):
            raise ValueError(
                f"mask {path} is a colour image with different colours per channel; expected class indices "
                "(one channel, pixel value = class) or a 0/255 binary mask. Convert colour-coded masks to "
                "class-index PNGs first."
            )
        array = array[..., 0]
    if array.ndim != 2:
        raise ValueError(f"mask {path} has shape {array.shape}; expected a 2-D (height, width) mask.")
    return array


def _integer_labels(values: np.ndarray, path) -> np.ndarray:
    if values.dtype == bool:
        return values.astype(np.int64)
    if values.dtype.kind not in "iu":
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise ValueError(
                f"mask {path} has non-integer values; masks must hold class indices (0, 1, 2 ...). For soft "
                "binary masks in [0, 1] use mask_mode='threshold' (--mask-mode threshold: >= 0.5 is foreground)."
            )
    labels = values.astype(np.int64)
    if labels.size and labels.min() < 0:
        raise ValueError(f"mask {path} has negative values (minimum {labels.min()}); class indices start at 0.")
    return labels


def _foreground(values: np.ndarray, path, mode: str, lossy: bool) -> np.ndarray:
    """A boolean foreground of a binary mask (per-class files, or ``binary``/``threshold`` modes)."""
    if values.dtype == bool:
        return values
    if mode == "binary":
        return _integer_labels(values, path) > 0
    found, counts = _histogram(values)
    if mode == "threshold":
        if np.all((found == 0) | (found == 1)):
            return values == 1
        scale = _full_scale(values.dtype)
        if scale is None or (values.dtype.kind == "f" and (found.min() < 0 or found.max() > 1)):
            raise ValueError(
                f"mask {path} is {values.dtype} with values {describe_values(found, counts)}; a threshold at half "
                "the full scale needs 8-bit, 16-bit or 1-bit masks, or float masks in [0, 1]. Convert the masks."
            )
        return values >= scale / 2
    # auto: one foreground value, or refused
    labels = _integer_labels(values, path)
    if np.count_nonzero(found) <= 1:
        return labels > 0
    raise ValueError(
        f"class mask {path} is not a binary mask: its values are {describe_values(found, counts)}"
        f"{' (a JPEG file: compression changed them)' if lossy else ''}. Each per-class mask must hold 0 and "
        f"one value for the class. {_not_labels_hint(found, counts)}"
    )


def mask_to_foreground(array: np.ndarray, path: str | Path = "<array>", mode: str = "auto", *,
                       lossy: bool = False) -> np.ndarray:
    """A binary (per-class) mask as a boolean foreground.

    ``mode`` ``"auto"`` accepts 0 and one other value (the foreground) and
    refuses masks with several non-zero values; ``"binary"``: non-zero is
    foreground; ``"threshold"``: half the full scale (see :func:`mask_to_labels`).

    Raises:
        ValueError: a mask that is not binary in ``auto`` mode, negative or
            colour-coded values, or ``mode="index"``.

    Example:
        >>> mask_to_foreground(np.array([[0, 255]], np.uint8)).tolist()
        [[False, True]]
    """
    _check_mode(mode)
    if mode == "index":
        raise ValueError("mask_mode='index' does not apply to per-class masks, which are binary; use 'auto', "
                         "'binary' or 'threshold'.")
    return _foreground(_single_channel(np.asarray(array), path), path, mode, lossy)


def mask_to_labels(array: np.ndarray, path: str | Path = "<array>", mode: str = "auto", *,
                   n_classes: int | None = None, lossy: bool = False) -> np.ndarray:
    """Turn a decoded mask into ``int32 (height, width)`` class indices.

    Args:
        array: the decoded mask (:func:`read_image` with ``role="mask"``).
        path: its file name, for error messages.
        mode: ``"auto"``, ``"index"``, ``"binary"`` or ``"threshold"`` (see
            the module docstring).
        n_classes: when given, labels must lie in ``[0, max(n_classes, 2))``.
        lossy: the mask comes from a lossy format (JPEG), whose values are
            refused as labels in ``auto`` mode.

    Raises:
        ValueError: colour-coded (RGB with differing channels) or non-integer
            masks, negative values, labels outside the classes, a lossy mask
            in auto mode (each names the file and says what to do), or an
            unknown mode.

    Example:
        >>> mask_to_labels(np.array([[0, 255]], dtype=np.uint8)).tolist()
        [[0, 1]]
    """
    _check_mode(mode)
    values = _single_channel(np.asarray(array), path)
    if mode in ("binary", "threshold"):
        return _foreground(values, path, mode, lossy).astype(np.int32)
    labels = _integer_labels(values, path)
    high = int(labels.max(initial=0))
    if mode == "auto":
        scale = _full_scale(values.dtype)
        if high in {255, scale} and high > 1 and np.all((labels == 0) | (labels == high)):
            return (labels > 0).astype(np.int32)
        if lossy:
            found, counts = _histogram(labels)
            raise ValueError(
                f"mask {path} is a JPEG file: JPEG compression changes pixel values, so they are not exact class "
                f"labels (found {describe_values(found, counts)}). Save the masks as PNG or TIFF; for binary "
                f"masks, mask_mode='threshold' (--mask-mode threshold: {_threshold_words(high)})."
            )
    if n_classes is not None and high >= max(n_classes, 2):
        found, counts = _histogram(labels)
        raise ValueError(
            f"mask {path} has label {high}, outside [0, {n_classes}) for n_classes={n_classes} (its values: "
            f"{describe_values(found, counts)}). Set n_classes to the number of classes including the background "
            f"(for 0/255 binary masks: 2), or fix the mask."
            + (f" {_not_labels_hint(found, counts)}" if high >= 255 and mode == "auto" else "")
        )
    return labels.astype(np.int32)


def infer_class_count(counts: np.ndarray, *, where: str, mode: str = "auto", largest: str | Path | None = None) -> int:
    """The number of classes that label pixel counts imply, if they look like classes.

    ``counts[k]`` is the number of pixels of label ``k`` over all masks. The
    count is the largest label + 1 (at least 2). It is refused, as masks whose
    values are not classes, when it is above :data:`MAX_INFERRED_CLASSES`
    (128: more classes are taken only from an explicit ``n_classes``), or, in
    ``auto`` mode, when it is above 16 and more than half of the labels below
    it are absent or hold under 0.1 % of the pixels (as anti-aliased edges,
    JPEG noise or values spread for viewing do).

    Args:
        counts: pixel counts per label.
        where: the masks, for the message (a folder).
        mode: the mask mode that produced the labels.
        largest: the file that holds the largest label, for the message.

    Raises:
        ValueError: with a summary of the values and what to do.

    Example:
        >>> infer_class_count(np.array([90, 5, 5]), where="masks/")
        3
    """
    counts = np.asarray(counts, dtype=np.int64)
    n_classes = max(2, counts.size)
    share = counts / max(int(counts.sum()), 1)
    empty = int(np.count_nonzero(share < NEARLY_EMPTY))
    if n_classes > MAX_INFERRED_CLASSES:
        problem = (f"would make {n_classes} classes; more than {MAX_INFERRED_CLASSES} are only used when you give "
                   "the number of classes")
    elif mode == "auto" and n_classes > SPARSE_CHECK_FROM and empty > n_classes / 2:
        problem = (f"would make {n_classes} classes, but {empty} of the labels 0 ... {n_classes - 1} are absent or "
                   f"hold under {100 * NEARLY_EMPTY:g} % of the pixels")
    else:
        return n_classes
    found = np.flatnonzero(counts)
    held = f" (the largest, {counts.size - 1}, in {largest})" if largest is not None else ""
    raise ValueError(
        f"the masks in {where} do not look like class labels: their values, {describe_values(found, counts[found])}, "
        f"read as class indices{held}, {problem}. {_not_labels_hint(found, counts[found])} To use the values "
        "as they are, as class indices, give the number of classes with n_classes (--n-classes N)."
    )


__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFile",
    "MASK_MODES",
    "MAX_INFERRED_CLASSES",
    "describe_values",
    "image_size",
    "infer_class_count",
    "inspect_image",
    "mask_to_foreground",
    "mask_to_labels",
    "read_file",
    "read_image",
    "to_float_image",
]
