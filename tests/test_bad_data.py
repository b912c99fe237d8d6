"""Data that is not what it seems, one case per row: refused with a message that names the problem and the fix.

Masks whose values are not class labels, image files no reading rule accepts,
folders that mix channel counts, labels outside the classes of a loss or a
metric. ``docs/reliability.md`` ("Reading data") lists the same table; the
data that is read by a documented rule instead is in ``tests/data/test_reading.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from universal_models.data import SegmentationFolder, read_image
from universal_models.losses import CrossEntropyLoss, DiceLoss
from universal_models.metrics import IoU

from .data.folders import anti_aliased_square, blurred_disks, mask_folder, write_folder
from .helpers import assert_clear_error


# -- the cases -------------------------------------------------------------------------------------
def anti_aliased_masks(tmp_path):
    SegmentationFolder(mask_folder(tmp_path, blurred_disks(3))).scan()


def jpeg_masks(tmp_path):
    square = np.where(anti_aliased_square() == 255, 255, 0).astype(np.uint8)
    SegmentationFolder(mask_folder(tmp_path, [square] * 2, ext=".jpg")).scan()


def sixteen_bit_anti_aliased_masks(tmp_path):
    SegmentationFolder(mask_folder(tmp_path, [anti_aliased_square(scale=65535, dtype=np.uint16)] * 2)).scan()


def masks_spread_for_viewing(tmp_path):
    spread = (np.arange(32 * 32).reshape(32, 32) % 4 * 10).astype(np.uint8)  # classes 0-3 stored as 0, 10, 20, 30
    SegmentationFolder(mask_folder(tmp_path, [spread] * 2)).scan()


def anti_aliased_class_mask(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks" / "cell").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "images" / "0.png")
    Image.fromarray(anti_aliased_square()).save(tmp_path / "masks" / "cell" / "0.png")
    SegmentationFolder(tmp_path).scan()


def grey_and_colour_images(tmp_path):
    write_folder(tmp_path, n=3)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "images" / "2.png")
    SegmentationFolder(tmp_path)


def unconvertible_channels(tmp_path):
    write_folder(tmp_path, n=2)
    (tmp_path / "images" / "1.png").unlink()
    tifffile.imwrite(tmp_path / "images" / "1.tif", np.zeros((32, 32, 2), np.uint8))
    SegmentationFolder(tmp_path, channels=3)


def validation_images_with_other_channels(tmp_path):
    from universal_models.training import TrainConfig, load_data

    write_folder(tmp_path / "train", n=3)
    write_folder(tmp_path / "validation", n=2, channels=3)
    load_data(TrainConfig(data=str(tmp_path / "train"), val_data=str(tmp_path / "validation")))


def channels_with_generated_data(tmp_path):
    from universal_models.training import TrainConfig, load_data

    load_data(TrainConfig(data="shapes", n_samples=4, image_size=16, val_split=1, channels=3))


def tiff_z_stack(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((5, 16, 16), np.uint8), imagej=True, metadata={"axes": "ZYX"})
    read_image(tmp_path / "stack.tif")


def tiff_without_a_channel_axis(tmp_path):
    tifffile.imwrite(tmp_path / "cube.tif", np.zeros((16, 16, 16), np.uint8), photometric="minisblack")
    read_image(tmp_path / "cube.tif")


def sixteen_bit_colour_png(tmp_path):
    import struct
    import zlib

    rows = b"".join(b"\x00" + np.full((4, 3), 4000, ">u2").tobytes() for _ in range(4))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 16, 2, 0, 0, 0))
    (tmp_path / "rgb16.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", zlib.compress(rows))
                                         + chunk(b"IEND", b""))
    read_image(tmp_path / "rgb16.png")


def _labels_with(value):
    labels = np.zeros((2, 8, 8), "int32")
    labels[1, 3, 4] = value
    return labels


def cross_entropy_label_outside_the_classes(tmp_path):
    CrossEntropyLoss()(_labels_with(5), np.full((2, 8, 8, 2), 0.5, "float32"))


def dice_negative_label(tmp_path):
    DiceLoss()(_labels_with(-1), np.full((2, 8, 8, 2), 0.5, "float32"))


def binary_loss_with_a_0_255_target(tmp_path):
    DiceLoss()(_labels_with(255), np.full((2, 8, 8, 1), 0.5, "float32"))


def metric_label_outside_the_classes(tmp_path):
    IoU().update_state(_labels_with(255), np.full((2, 8, 8, 2), 0.5, "float32"))


# (case, expected exception, words naming the problem, words naming the fix)
CASES = [
    (anti_aliased_masks, ValueError, ["do not look like class labels", "256 classes", "60 other values"],
     ["--mask-mode threshold"]),
    (jpeg_masks, ValueError, ["0.jpg", "JPEG compression changes pixel values"], ["PNG", "--mask-mode threshold"]),
    (sixteen_bit_anti_aliased_masks, ValueError, ["65536 classes", "65535"], ["32768 of 65535", "--n-classes"]),
    (masks_spread_for_viewing, ValueError, ["31 classes", "27 of the labels", "absent"], ["0 ... 3", "--n-classes"]),
    (anti_aliased_class_mask, ValueError, ["cell/0.png", "not a binary mask"], ["--mask-mode threshold"]),
    (grey_and_colour_images, ValueError, ["different channel counts", "2 with 1", "2.png"],
     ["--channels 1", "--channels 3"]),
    (unconvertible_channels, ValueError, ["1.tif", "--channels 3", "1 with 2"], ["only greyscale and RGB"]),
    (validation_images_with_other_channels, ValueError, ["validation images", "3 channel(s)", "have 1"],
     ["--channels"]),
    (channels_with_generated_data, ValueError, ["--channels 3", "shapes", "1 channel(s)"], ["leave --channels out"]),
    (tiff_z_stack, ValueError, ["stack.tif", "5 z-slices"], ["one 2-D image per file"]),
    (tiff_without_a_channel_axis, ValueError, ["cube.tif", "cannot be told apart"], ["planarconfig='contig'"]),
    (sixteen_bit_colour_png, ValueError, ["rgb16.png", "16-bit colour PNG", "8 of its 16 bits"], ["16-bit TIFF"]),
    (cross_entropy_label_outside_the_classes, ValueError, ["value 5", "classes 0 ... 1"], ["ignore_index"]),
    (dice_negative_label, ValueError, ["value -1", "classes 0 ... 1"], ["ignore_index", "more classes"]),
    (binary_loss_with_a_0_255_target, ValueError, ["value 255", "[0, 1]", "one-channel"], ["divide by 255"]),
    (metric_label_outside_the_classes, ValueError, ["value 255", "classes 0 ... 1"], ["ignore_index"]),
]
#: the cases that read files only (the losses and metrics run on every backend)
FILE_CASES = {case for case, *_ in CASES[:12]}


@pytest.mark.parametrize("case, error, problem, fix", [
    pytest.param(*row, marks=[pytest.mark.backend_independent] if row[0] in FILE_CASES else [], id=row[0].__name__)
    for row in CASES])
def test_bad_data_gives_a_clear_error(case, error, problem, fix, tmp_path):
    assert_clear_error(case, error, problem, fix, tmp_path)
