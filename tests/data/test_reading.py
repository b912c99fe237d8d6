"""The reading rules of universal_models.data.reading: each image mode, mask kind, threshold, stray file.

One test per rule of the table in docs/cli.md; the rules that changed what is
read are rows of docs/reliability.md ("Read by a documented rule").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.data.folders import anti_aliased_square, mask_folder, write_folder
from universal_models.data import SegmentationFolder, inspect_image, mask_to_labels, read_image, to_float_image
from universal_models.data.reading import describe_values, infer_class_count

pytestmark = pytest.mark.backend_independent

RNG = np.random.default_rng(0)
PICTURE = RNG.integers(0, 256, (12, 10, 3), dtype=np.uint8)


def _palette_png(path: Path, palette: list[int], indices: np.ndarray) -> None:
    image = Image.fromarray(indices.astype(np.uint8), mode="P")
    image.putpalette(palette)
    image.save(path)


# -- images: one rule per way of storing pixels -----------------------------------------------------------
def _write_image(path: Path, kind: str) -> Path:
    """Write an image of ``kind`` under ``path`` (the suffix is chosen here); returns the file."""
    grey = PICTURE[..., 0]
    if kind == "L":
        Image.fromarray(grey).save(path := path.with_suffix(".png"))
    elif kind == "LA":
        Image.fromarray(np.stack([grey, np.full_like(grey, 7)], -1), mode="LA").save(path := path.with_suffix(".png"))
    elif kind == "RGB":
        Image.fromarray(PICTURE).save(path := path.with_suffix(".png"))
    elif kind == "RGBA":
        Image.fromarray(np.concatenate([PICTURE, grey[..., None]], -1)).save(path := path.with_suffix(".png"))
    elif kind == "P colour":
        _palette_png(path := path.with_suffix(".png"), [0, 0, 0, 255, 0, 0, 0, 200, 40], grey % 3)
    elif kind == "P grey":  # a grey palette that is not the identity: indices and grey values differ
        _palette_png(path := path.with_suffix(".png"), [255, 255, 255, 100, 100, 100, 0, 0, 0], grey % 3)
    elif kind == "1-bit":
        Image.fromarray(grey > 127).save(path := path.with_suffix(".png"))
    elif kind == "16-bit":
        Image.fromarray(grey.astype(np.uint16) * 257).save(path := path.with_suffix(".png"))
    elif kind == "float in [0, 1]":
        tifffile.imwrite(path := path.with_suffix(".tif"), grey.astype(np.float32) / 255)
    elif kind == "float 0-916":
        tifffile.imwrite(path := path.with_suffix(".tif"), grey.astype(np.float32) / 255 * 916)
    elif kind == "int16":
        tifffile.imwrite(path := path.with_suffix(".tif"), grey.astype(np.int16) * 128)
    elif kind == "2-channel TIFF":  # tifffile.imwrite(path, (height, width, 2) array): stored as pages
        tifffile.imwrite(path := path.with_suffix(".tif"), PICTURE[..., :2])
    elif kind == "2-channel contiguous TIFF":
        tifffile.imwrite(path := path.with_suffix(".tif"), PICTURE[..., :2], photometric="minisblack",
                         planarconfig="contig")
    elif kind == "(3, h, w) TIFF":
        tifffile.imwrite(path := path.with_suffix(".tif"), np.moveaxis(PICTURE, -1, 0), photometric="rgb",
                         planarconfig="separate")
    elif kind == "(3, h, w) pages TIFF":
        tifffile.imwrite(path := path.with_suffix(".tif"), np.moveaxis(PICTURE, -1, 0), photometric="minisblack")
    elif kind == "ImageJ channels TIFF":
        tifffile.imwrite(path := path.with_suffix(".tif"), np.moveaxis(PICTURE, -1, 0), imagej=True,
                         metadata={"axes": "CYX"})
    elif kind == "RGBA TIFF":
        tifffile.imwrite(path := path.with_suffix(".tif"), np.concatenate([PICTURE, grey[..., None]], -1))
    else:
        raise AssertionError(kind)
    return path


GREY = PICTURE[..., 0].astype(np.float32)
# kind -> (channels as read, expected float image)
IMAGE_RULES = {
    "L": (1, GREY[..., None] / 255),
    "LA": (1, GREY[..., None] / 255),  # the alpha is dropped
    "RGB": (3, PICTURE / 255),
    "RGBA": (3, PICTURE / 255),
    "P colour": (3, np.array([[0, 0, 0], [255, 0, 0], [0, 200, 40]])[PICTURE[..., 0] % 3] / 255),
    "P grey": (1, np.array([255, 100, 0])[PICTURE[..., 0] % 3][..., None] / 255),
    "1-bit": (1, (GREY > 127)[..., None].astype(np.float32)),
    "16-bit": (1, GREY[..., None] / 255),
    "float in [0, 1]": (1, GREY[..., None] / 255),
    "float 0-916": (1, (GREY[..., None] - GREY.min()) / (GREY.max() - GREY.min())),  # scaled per image
    "int16": (1, GREY[..., None] * 128 / 32767),
    "2-channel TIFF": (2, PICTURE[..., :2] / 255),
    "2-channel contiguous TIFF": (2, PICTURE[..., :2] / 255),
    "(3, h, w) TIFF": (3, PICTURE / 255),
    "(3, h, w) pages TIFF": (3, PICTURE / 255),
    "ImageJ channels TIFF": (3, PICTURE / 255),
    "RGBA TIFF": (3, PICTURE / 255),
}


@pytest.mark.parametrize("kind", list(IMAGE_RULES))
def test_each_image_mode_is_read_by_its_rule(tmp_path, kind):
    channels, expected = IMAGE_RULES[kind]
    path = _write_image(tmp_path / "image", kind)
    info = inspect_image(path)  # the header alone tells the size and channels
    assert (info.height, info.width, info.channels) == (12, 10, channels), info
    image = to_float_image(read_image(path), path)
    assert image.dtype == np.float32 and image.shape == (12, 10, channels)
    np.testing.assert_allclose(image, expected, atol=1e-5)


@pytest.mark.parametrize("write, words", [
    (lambda path: tifffile.imwrite(path, np.zeros((5, 12, 10), np.uint8), imagej=True, metadata={"axes": "ZYX"}),
     ["stack of 5 z-slices", "one 2-D image per file"]),
    (lambda path: tifffile.imwrite(path, np.zeros((12, 12, 12), np.uint8), photometric="minisblack"),
     ["cannot be told apart", "planarconfig='contig'"]),
    (lambda path: tifffile.imwrite(path, np.zeros((2, 3, 12, 10), np.uint8), photometric="minisblack"),
     ["expected one 2-D image"]),
], ids=["z-stack", "cube", "4-D"])
def test_tiff_stacks_and_ambiguous_shapes_are_refused(tmp_path, write, words):
    path = tmp_path / "stack.tif"
    write(path)
    for function in (inspect_image, read_image):
        with pytest.raises(ValueError) as raised:
            function(path)
        assert all(word in str(raised.value) for word in words) and "stack.tif" in str(raised.value)


def test_float_images_are_scaled_per_image_only_outside_zero_to_one():
    dark = np.array([[0.1, 0.4]], np.float32)
    np.testing.assert_allclose(to_float_image(dark)[..., 0], dark)  # already in [0, 1]: as stored
    np.testing.assert_allclose(to_float_image(dark * 1000)[..., 0], [[0.0, 1.0]])  # min-max
    assert np.all(to_float_image(np.full((2, 2), 7.5, np.float32)) == 0)  # a constant image
    np.testing.assert_allclose(to_float_image(np.array([[-100, 100]], np.int32))[..., 0], [[0.0, 1.0]])


# -- masks ------------------------------------------------------------------------------------------------
def test_palette_masks_give_their_indices_and_alpha_is_dropped(tmp_path):
    indices = np.array([[0, 1], [2, 1]])
    _palette_png(tmp_path / "p.png", [0, 0, 0, 255, 0, 0, 0, 255, 0], indices)
    assert mask_to_labels(read_image(tmp_path / "p.png", role="mask")).tolist() == indices.tolist()
    Image.fromarray(np.stack([indices, np.full_like(indices, 255)], -1).astype(np.uint8), mode="LA").save(
        tmp_path / "la.png")
    assert mask_to_labels(read_image(tmp_path / "la.png", role="mask")).tolist() == indices.tolist()
    rgba = np.concatenate([np.repeat(indices[..., None], 3, -1), np.full((2, 2, 1), 9)], -1).astype(np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    assert mask_to_labels(read_image(tmp_path / "rgba.png", role="mask")).tolist() == indices.tolist()


def test_sixteen_bit_binary_masks_are_binary(tmp_path):
    masks = [np.where(anti_aliased_square() == 255, 65535, 0).astype(np.uint16) for _ in range(2)]
    data = SegmentationFolder(mask_folder(tmp_path, masks))
    counts = data.scan()
    assert data.n_classes == 2 and counts.tolist() == [2 * (32 * 32 - 64), 2 * 64]


def test_threshold_mode_reads_anti_aliased_masks_at_half_intensity(tmp_path):
    data = SegmentationFolder(mask_folder(tmp_path, [anti_aliased_square()] * 2), mask_mode="threshold")
    counts = data.scan()
    assert data.n_classes == 2 and counts[1] == 2 * 64  # the 8 x 8 object, not 12 x 12 ("> 0")
    assert SegmentationFolder(tmp_path, mask_mode="binary").load_mask(0).sum() == 144
    wide = anti_aliased_square(scale=65535, dtype=np.uint16)
    assert mask_to_labels(wide, mode="threshold").sum() == 64  # 16-bit: >= 32768
    assert mask_to_labels(np.array([[0.0, 0.49, 0.5, 1.0]]), mode="threshold").tolist() == [[0, 0, 1, 1]]
    assert mask_to_labels(np.array([[0, 1, 1]], np.uint8), mode="threshold").tolist() == [[0, 1, 1]]  # 0/1 as is


def test_jpeg_binary_masks_are_read_with_the_threshold(tmp_path):
    square = np.where(anti_aliased_square() == 255, 255, 0).astype(np.uint8)
    data = SegmentationFolder(mask_folder(tmp_path, [square] * 3, ext=".jpg"), mask_mode="threshold")
    data.scan()
    assert data.n_classes == 2
    foreground = data.load_mask(0) == 1
    truth = square == 255
    assert (foreground & truth).sum() / (foreground | truth).sum() > 0.9


def test_per_class_masks_with_anti_aliased_edges(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks" / "cell").mkdir(parents=True)
    for index in range(2):
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "images" / f"{index}.png")
        Image.fromarray(anti_aliased_square()).save(tmp_path / "masks" / "cell" / f"{index}.png")
    data = SegmentationFolder(tmp_path, mask_mode="threshold")
    data.scan()
    assert data.load_mask(0).sum() == 64  # >= 128 of 255; "> 0" gave 144
    with pytest.raises(ValueError, match=r"cell/0\.png is not a binary mask.*--mask-mode threshold"):
        SegmentationFolder(tmp_path).scan()
    with pytest.raises(ValueError, match="does not apply to the per-class mask folders"):
        SegmentationFolder(tmp_path, mask_mode="index")


def test_class_counts_are_inferred_only_from_labels_that_look_like_classes():
    assert infer_class_count(np.array([900, 50, 50]), where="m") == 3
    many = np.full(200, 10)
    with pytest.raises(ValueError, match="would make 200 classes; more than 128"):
        infer_class_count(many, where="m")
    spread = np.zeros(31, int)
    spread[[0, 10, 20, 30]] = 100
    with pytest.raises(ValueError, match="27 of the labels 0 ... 30 are absent"):
        infer_class_count(spread, where="m")
    assert infer_class_count(spread, where="m", mode="index") == 31  # index mode: the values are classes
    assert describe_values(np.array([0, 255, 1, 2, 3]), np.array([90, 5, 2, 2, 1])) == (
        "0 (90 % of the pixels), 255 (5 %) and 3 other values from 1 to 3 (5 %)")


def test_an_explicit_class_count_accepts_many_classes(tmp_path):
    masks = [np.arange(32 * 32).reshape(32, 32) % 200 for _ in range(2)]
    root = mask_folder(tmp_path, [mask.astype(np.uint8) for mask in masks])
    data = SegmentationFolder(root, n_classes=200, mask_mode="index")
    assert data.scan().size == 200


# -- what a folder holds besides the data -------------------------------------------------------------------
def _clutter(folder: Path) -> None:
    """What systems and tools leave in folders (each would change what is read if it were taken for data)."""
    for name in (".ipynb_checkpoints", "__MACOSX", "@eaDir", ".Trash-1000"):
        (folder / name).mkdir()
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / name / "0.png")
    for name in (".DS_Store", "Thumbs.db", "desktop.ini", "README.txt"):
        (folder / name).write_bytes(b"\x00\x01 not an image")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "._0.png")  # macOS resource fork
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(folder / "~$0.png")  # an editor's lock file


def test_system_and_tool_files_do_not_change_what_is_read(tmp_path):
    clean, cluttered = tmp_path / "clean", tmp_path / "cluttered"
    for root in (clean, cluttered):
        (root / "images").mkdir(parents=True)
        for name in ("cell", "nucleus"):
            (root / "masks" / name).mkdir(parents=True)
        for index in range(3):
            Image.fromarray(PICTURE[:, :, index].repeat(3, 0).repeat(3, 1)[:32, :30]).save(
                root / "images" / f"{index}.png")
            for label, name in enumerate(("cell", "nucleus"), start=1):
                mask = np.zeros((32, 30), np.uint8)
                mask[4 * label:10 * label, 5:20] = 255
                Image.fromarray(mask).save(root / "masks" / name / f"{index}.png")
    for folder in (cluttered, cluttered / "images", cluttered / "masks", cluttered / "masks" / "cell"):
        _clutter(folder)
    expected, found = SegmentationFolder(clean), SegmentationFolder(cluttered)
    assert found.class_names == expected.class_names == ("background", "cell", "nucleus")
    assert [sample.name for sample in found.samples] == [sample.name for sample in expected.samples]
    np.testing.assert_array_equal(found.scan(), expected.scan())
    for index in range(3):
        for got, want in zip(found.load(index), expected.load(index)):
            np.testing.assert_array_equal(got, want)
    write_folder(tmp_path / "files", n=2)  # single-file masks: the same
    _clutter(tmp_path / "files" / "masks")
    _clutter(tmp_path / "files" / "images")
    assert len(SegmentationFolder(tmp_path / "files")) == 2


# -- the channel count of a folder --------------------------------------------------------------------------
def test_channels_choose_grey_or_colour_for_a_mixed_folder(tmp_path):
    write_folder(tmp_path, n=3)
    Image.fromarray(PICTURE.repeat(3, 0).repeat(4, 1)[:32, :32]).save(tmp_path / "images" / "1.png")
    _palette_png(tmp_path / "images" / "2.png", [0, 0, 0, 255, 0, 0], np.arange(32 * 32).reshape(32, 32) % 2)
    with pytest.raises(ValueError, match=r"2 with 3 \(1\.png, 2\.png\).*--channels 1.*--channels 3"):
        SegmentationFolder(tmp_path, n_classes=4)
    colour = SegmentationFolder(tmp_path, n_classes=4, channels=3)
    assert all(colour.load(index)[0].shape == (32, 32, 3) for index in range(3))
    grey = SegmentationFolder(tmp_path, n_classes=4, channels=1)
    assert all(grey.load(index)[0].shape == (32, 32, 1) for index in range(3))
    train, validation = colour.split(1)
    assert train.channels == validation.channels == 3 and validation.load(0)[0].shape[-1] == 3
