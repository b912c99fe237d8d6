"""Write small image/mask folders for the data and CLI tests (and masks that are not clean labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

from universal_models.data import make_shapes


def write_folder(root: Path, n: int = 6, size: int = 32, *, channels: int = 1, binary: bool = False,
                 images_dir: str = "images", masks_dir: str = "masks", image_ext: str = ".png",
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` shapes images (uint8) and masks under ``root``; returns the arrays written.

    With ``binary`` the masks are 0/255 (foreground = any shape), otherwise class
    indices 0..3.
    """
    images, masks = make_shapes(n, size, size, channels=channels, seed=seed)
    if binary:
        masks = (masks > 0).astype(np.int32)
    (root / images_dir).mkdir(parents=True, exist_ok=True)
    (root / masks_dir).mkdir(parents=True, exist_ok=True)
    images8 = np.round(images * 255).astype(np.uint8)
    for index in range(n):
        picture = images8[index, ..., 0] if channels == 1 else images8[index]
        if image_ext in (".tif", ".tiff"):
            tifffile.imwrite(root / images_dir / f"{index}{image_ext}", picture)
        else:
            Image.fromarray(picture).save(root / images_dir / f"{index}{image_ext}")
        stored = (masks[index] * 255 if binary else masks[index]).astype(np.uint8)
        Image.fromarray(stored).save(root / masks_dir / f"{index}.png")
    return images8, masks


def anti_aliased_square(size: int = 32, inner: int = 8, *, scale: int = 255, dtype=np.uint8) -> np.ndarray:
    """An ``inner`` x ``inner`` object at full scale, ringed by one pixel at 127/255 and one at 50/255.

    Read with a 50 % threshold it is the ``inner`` square (64 pixels for 8); read as
    "non-zero is foreground" it is two pixels wider on every side (144 pixels).
    """
    mask = np.zeros((size, size), dtype)
    start = (size - inner) // 2
    for ring, value in ((2, 50), (1, 127), (0, 255)):
        low, high = start - ring, start + inner + ring
        mask[low:high, low:high] = round(value / 255 * scale)
    return mask


def blurred_disks(n: int, size: int = 48) -> list[np.ndarray]:
    """0/255 disks downsampled by area averaging from 8x: anti-aliased edges with many grey levels."""
    masks = []
    for index in range(n):
        fine = np.zeros((size * 8, size * 8))
        yy, xx = np.mgrid[: size * 8, : size * 8]
        fine[(yy - 200 - 8 * index) ** 2 + (xx - 190) ** 2 < (100 + 5 * index) ** 2] = 255
        masks.append(np.round(fine.reshape(size, 8, size, 8).mean(axis=(1, 3))).astype(np.uint8))
    return masks


def mask_folder(root: Path, masks: list[np.ndarray], ext: str = ".png") -> Path:
    """Greyscale images beside the given masks (``ext`` chooses the mask format)."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for index, mask in enumerate(masks):
        Image.fromarray(np.full(mask.shape, 100, np.uint8)).save(root / "images" / f"{index}.png")
        if ext in (".tif", ".tiff"):
            tifffile.imwrite(root / "masks" / f"{index}{ext}", mask)
        else:
            Image.fromarray(mask).save(root / "masks" / f"{index}{ext}", **({"quality": 75} if ext == ".jpg" else {}))
    return root
