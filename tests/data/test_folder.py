"""Folder datasets: layouts, lazy reading and every error that names a file."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.data.folders import write_folder
from universal_models.data import SegmentationFolder, mask_to_labels, read_image, to_float_image
from universal_models.data.folder import natural_key, validation_count

pytestmark = pytest.mark.backend_independent


def test_index_masks_round_trip(tmp_path):
    images, masks = write_folder(tmp_path, n=4)
    data = SegmentationFolder(tmp_path, n_classes=4)
    assert len(data) == 4 and data.channels == 1
    image, mask = data.load(2)
    assert image.dtype == np.float32 and image.shape == (32, 32, 1)
    np.testing.assert_allclose(image[..., 0], images[2, ..., 0] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(mask, masks[2])
    assert mask.dtype == np.int32


def test_binary_255_masks_and_custom_folder_names(tmp_path):
    _, masks = write_folder(tmp_path, n=3, binary=True, images_dir="image", masks_dir="label")
    data = SegmentationFolder(tmp_path)  # "image"/"label" are detected
    counts = data.scan()
    assert data.n_classes == 2 and counts.sum() == 3 * 32 * 32
    np.testing.assert_array_equal(data.load(1)[1], masks[1])
    explicit = SegmentationFolder(tmp_path, images_dir="image", masks_dir="label", n_classes=2)
    np.testing.assert_array_equal(explicit.load(0)[1], masks[0])


def test_rgb_tiff_and_jpeg_images(tmp_path):
    write_folder(tmp_path / "tif", n=2, channels=3, image_ext=".tif")
    write_folder(tmp_path / "jpg", n=2, channels=3, image_ext=".jpg")
    for root in (tmp_path / "tif", tmp_path / "jpg"):
        data = SegmentationFolder(root, n_classes=4)
        image, mask = data.load(0)
        assert data.channels == 3 and image.shape == (32, 32, 3) and mask.shape == (32, 32)
        assert 0.0 <= image.min() and image.max() <= 1.0


def test_sixteen_bit_images_are_scaled(tmp_path):
    write_folder(tmp_path, n=1)
    array = np.full((32, 32), 65535 // 2, dtype=np.uint16)
    import tifffile

    (tmp_path / "images" / "0.png").unlink()
    tifffile.imwrite(tmp_path / "images" / "0.tif", array)
    image, _ = SegmentationFolder(tmp_path, n_classes=4).load(0)
    np.testing.assert_allclose(image, 0.5, atol=1e-4)


def test_one_subfolder_per_class(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ("cell", "nucleus"):
        (tmp_path / "masks" / name).mkdir(parents=True)
    for index in range(2):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "images" / f"{index}.png")
        cell = np.zeros((8, 8), np.uint8)
        cell[2:6, 2:6] = 255
        nucleus = np.zeros((8, 8), np.uint8)
        nucleus[3:5, 3:5] = 255
        Image.fromarray(cell).save(tmp_path / "masks" / "cell" / f"{index}.png")
        Image.fromarray(nucleus).save(tmp_path / "masks" / "nucleus" / f"{index}.png")
    data = SegmentationFolder(tmp_path)
    data.scan()
    assert data.n_classes == 3 and data.class_names == ("background", "cell", "nucleus")
    mask = data.load(0)[1]
    assert mask[0, 0] == 0 and mask[2, 2] == 1 and mask[3, 3] == 2  # the later class wins


def test_natural_order_split_matches_isbi_convention(tmp_path):
    write_folder(tmp_path, n=12, size=16)
    train, validation = SegmentationFolder(tmp_path, n_classes=4).split(3)
    assert [validation.name(i) for i in range(len(validation))] == ["9", "10", "11"]
    assert [train.name(i) for i in range(3)] == ["0", "1", "2"]
    assert validation_count(30, 5) == 5 and validation_count(30, 0.2) == 6
    assert sorted(["10.png", "2.png", "1.png"], key=natural_key) == ["1.png", "2.png", "10.png"]


def test_reads_lazily_within_the_cache_limit(tmp_path, monkeypatch):
    write_folder(tmp_path, n=3)
    reads = []
    import universal_models.data.folder as folder

    original = folder.read_file
    monkeypatch.setattr(folder, "read_file", lambda path, role: reads.append(path) or original(path, role))
    data = SegmentationFolder(tmp_path, n_classes=4, cache_megabytes=0)
    start = len(reads)
    assert start == 0  # construction reads headers only
    data.load(0)
    data.load(0)
    assert len(reads) - start == 4  # no cache: image + mask, twice
    cached = SegmentationFolder(tmp_path, n_classes=4)
    start = len(reads)
    cached.load(1)
    cached.load(1)
    assert len(reads) - start == 2


# -- errors ------------------------------------------------------------------------------
def test_unmatched_names_are_listed(tmp_path):
    write_folder(tmp_path, n=3)
    (tmp_path / "masks" / "1.png").rename(tmp_path / "masks" / "one.png")
    with pytest.raises(ValueError, match=r"1\.png.*one\.png|without a mask.*1\.png"):
        SegmentationFolder(tmp_path)


def test_size_mismatch_names_both_files(tmp_path):
    write_folder(tmp_path, n=2)
    Image.fromarray(np.zeros((16, 32), np.uint8)).save(tmp_path / "masks" / "1.png")
    with pytest.raises(ValueError, match=r"images/1\.png is 32 x 32.*masks/1\.png is 16 x 32"):
        SegmentationFolder(tmp_path)


def test_labels_outside_the_classes_name_the_mask(tmp_path):
    write_folder(tmp_path, n=2)
    bad = np.zeros((32, 32), np.uint8)
    bad[0, 0] = 7
    Image.fromarray(bad).save(tmp_path / "masks" / "1.png")
    data = SegmentationFolder(tmp_path, n_classes=4)
    with pytest.raises(ValueError, match=r"masks/1\.png has label 7, outside \[0, 4\)"):
        data.scan()


def test_truncated_and_unreadable_files_are_named(tmp_path):
    write_folder(tmp_path, n=2)
    path = tmp_path / "images" / "1.png"
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"cannot read image file .*images/1\.png"):
        SegmentationFolder(tmp_path, n_classes=4).load(1)
    (tmp_path / "images" / "0.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"images/0\.png"):
        SegmentationFolder(tmp_path, n_classes=4)


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="has no image files"):
        SegmentationFolder(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SegmentationFolder(tmp_path / "nowhere")
    other = tmp_path / "other"
    other.mkdir()
    (other / "pictures").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no image folder.*--images-dir.*pictures"):
        SegmentationFolder(other)
    write_folder(tmp_path / "full", n=1)
    with pytest.raises(FileNotFoundError, match="check masks_dir"):
        SegmentationFolder(tmp_path / "full", masks_dir="missing")


def test_colour_coded_and_fractional_masks_are_refused():
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[0, 0] = (255, 0, 0)
    with pytest.raises(ValueError, match="colour image"):
        mask_to_labels(colour, "m.png")
    with pytest.raises(ValueError, match="non-integer"):
        mask_to_labels(np.array([[0.5, 1.0]]), "m.tif")
    assert mask_to_labels(np.array([[0, 255]], np.uint8), mode="index").tolist() == [[0, 255]]
    assert mask_to_labels(np.array([[0, 3]], np.uint8), mode="binary").tolist() == [[0, 1]]


def test_channel_mismatch_and_nan_images(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        to_float_image(np.array([[np.nan]], np.float32), "x.tif")
    assert to_float_image(np.zeros((2, 2), np.uint8), channels=3).shape == (2, 2, 3)
    assert to_float_image(np.zeros((2, 2, 4), np.uint8)).shape == (2, 2, 4)  # an array's channels are all kept
    with pytest.raises(ValueError, match="has 5 channels but 3"):
        to_float_image(np.zeros((2, 2, 5), np.uint8), "x.tif", channels=3)
    write_folder(tmp_path, n=2)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "images" / "1.png")
    expected = r"different channel counts: 1 with 1 \(0\.png\); 1 with 3 \(1\.png\).*--channels 1"
    with pytest.raises(ValueError, match=expected):
        SegmentationFolder(tmp_path, n_classes=4)  # refused at construction, before any pixel is read
    assert SegmentationFolder(tmp_path, n_classes=4, channels=1).load(1)[0].shape == (32, 32, 1)
    assert SegmentationFolder(tmp_path, n_classes=4, channels=3).load(0)[0].shape == (32, 32, 3)


def test_read_image_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_image(tmp_path / "nope.png")
