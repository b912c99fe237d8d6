"""Paired augmentation: masks stay labels, image and mask move together, seeds repeat."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from universal_models.data import PairedAugmentation, SegmentationRandomRotation, make_shapes


def _batch(n=4, size=32, seed=0):
    return make_shapes(n, size, size, seed=seed)


def test_masks_only_hold_input_labels_and_stay_integer():
    images, masks = _batch()
    augmented_images, augmented_masks = PairedAugmentation(rotation=40)(images, masks, seed=3)
    assert augmented_masks.dtype == np.int32 and augmented_masks.shape == masks.shape
    assert set(np.unique(augmented_masks)) <= set(np.unique(masks))
    assert augmented_images.dtype == np.float32 and augmented_images.shape == images.shape
    assert 0.0 <= augmented_images.min() and augmented_images.max() <= 1.0


def test_same_seed_same_result_other_seed_other_result():
    images, masks = _batch()
    augment = PairedAugmentation(rotation=30)
    first, second, other = augment(images, masks, 5), augment(images, masks, 5), augment(images, masks, 6)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    assert not np.array_equal(first[0], other[0])


def test_image_and_mask_get_the_same_geometric_transform():
    # The image *is* the mask (scaled), so after a geometric-only augmentation
    # it must still match the mask: exactly for flips, at almost every pixel
    # for rotations (bilinear image vs nearest mask differ only at edges).
    _, masks = _batch(n=8, size=48)
    images = (masks[..., None] / 3.0).astype(np.float32)
    flipped_images, flipped_masks = PairedAugmentation(rotation=0, brightness=0, contrast=0)(images, masks, 1)
    np.testing.assert_array_equal(np.rint(flipped_images[..., 0] * 3).astype(int), flipped_masks)
    assert not np.array_equal(flipped_masks, masks)  # something was flipped
    rotated_images, rotated_masks = PairedAugmentation(flips=False, rotation=45, brightness=0, contrast=0)(
        images, masks, 2)
    agreement = np.mean(np.rint(rotated_images[..., 0] * 3).astype(int) == rotated_masks)
    assert agreement > 0.97, agreement
    assert not np.array_equal(rotated_masks, masks)


def test_intensity_changes_leave_masks_alone():
    images, masks = _batch()
    changed_images, same_masks = PairedAugmentation(flips=False, rotation=0, brightness=0.3, contrast=0.5)(
        images, masks, 4)
    np.testing.assert_array_equal(same_masks, masks)
    assert not np.allclose(changed_images, images)


def test_keras_dict_call_keeps_mask_labels():
    # Keras' own call path with {"images", "segmentation_masks"}: our rotation
    # resamples masks with nearest neighbours.
    images, masks = _batch()
    layer = SegmentationRandomRotation(0.2, seed=11)
    out = layer({"images": images, "segmentation_masks": masks[..., None].astype("float32")})
    values = np.unique(keras.ops.convert_to_numpy(out["segmentation_masks"]))
    assert set(values.tolist()) <= set(np.unique(masks).tolist())


def test_rotation_layer_serialises():
    layer = SegmentationRandomRotation(0.1, fill_mode="reflect", seed=3)
    clone = SegmentationRandomRotation.from_config(layer.get_config())
    assert isinstance(clone, SegmentationRandomRotation) and clone.factor == layer.factor
    assert keras.saving.get_registered_object("universal_models>SegmentationRandomRotation") is not None


@pytest.mark.parametrize("amounts", [dict(rotation=-1), dict(rotation=200), dict(brightness=2), dict(contrast=1)])
def test_bad_amounts_are_refused(amounts):
    with pytest.raises(ValueError, match="must be"):
        PairedAugmentation(**amounts)


@pytest.mark.skipif(keras.config.backend() != "torch", reason="torch fast path only")
@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
@pytest.mark.parametrize("fill_mode", ["reflect", "nearest"])
def test_torch_grid_sample_path_equals_keras_affine_transform(interpolation, fill_mode):
    from universal_models.data.augmentation import _torch_affine_transform

    images, _ = _batch(n=6, size=40)
    layer = keras.layers.RandomRotation(0.3, seed=1)
    data = keras.ops.convert_to_tensor(images)
    matrix = layer.get_random_transformation(data, training=True)["rotation_matrix"]
    # Keras' torch affine_transform rewrites its matrix in place: give it a copy.
    expected = keras.ops.image.affine_transform(data, keras.ops.copy(matrix), interpolation=interpolation,
                                                fill_mode=fill_mode)
    fast = _torch_affine_transform(data, matrix, interpolation, fill_mode)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fast), keras.ops.convert_to_numpy(expected), atol=1e-4)
