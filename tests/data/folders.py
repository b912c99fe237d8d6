"""Write small image/mask folders for the data and CLI tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
            import tifffile

            tifffile.imwrite(root / images_dir / f"{index}{image_ext}", picture)
        else:
            Image.fromarray(picture).save(root / images_dir / f"{index}{image_ext}")
        stored = (masks[index] * 255 if binary else masks[index]).astype(np.uint8)
        Image.fromarray(stored).save(root / masks_dir / f"{index}.png")
    return images8, masks
