"""Training patches and validation tiles: shapes, coverage and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from universal_models.data import (
    ArraySource,
    PairedAugmentation,
    PatchDataset,
    TileDataset,
    make_moving_shapes,
    make_shapes,
    tile_starts,
)


def _source(n=10, size=40):
    return ArraySource(*make_shapes(n, size, size, seed=1))


@pytest.mark.backend_independent
def test_patches_without_augmentation_are_crops_of_the_samples():
    source = _source()
    data = PatchDataset(source, batch_size=4, patch_size=(24, 32), steps_per_epoch=3, seed=2)
    images, masks = data[1]
    assert images.shape == (4, 24, 32, 1) and masks.shape == (4, 24, 32) and masks.dtype == np.int32
    order = data.order(0)[4:8]
    for image, mask, sample in zip(images, masks, order):
        full_image, full_mask = source.load(int(sample))
        found = [(top, left) for top in range(17) for left in range(9)
                 if np.array_equal(full_mask[top:top + 24, left:left + 32], mask)
                 and np.array_equal(full_image[top:top + 24, left:left + 32], image)]
        assert found


@pytest.mark.backend_independent
def test_every_sample_is_seen_equally_often_and_order_changes_per_epoch():
    data = PatchDataset(_source(n=5), batch_size=5, patch_size=16, steps_per_epoch=2, seed=0)
    assert np.bincount(data.order(0), minlength=5).tolist() == [2] * 5
    assert not np.array_equal(data.order(0), data.order(1))
    assert np.array_equal(data.order(3), PatchDataset(_source(n=5), batch_size=5, patch_size=16,
                                                      steps_per_epoch=2, seed=0).order(3))


@pytest.mark.backend_independent
def test_default_steps_cover_the_area_once():
    data = PatchDataset(_source(n=10, size=40), batch_size=4, patch_size=20)
    assert len(data) == 10  # 10 images x 4 patches / 4 per batch


def test_batches_are_a_function_of_seed_epoch_and_index():
    # Whatever was drawn before, and in whatever order, batch (epoch, index) is the same.
    source = _source()
    augment = PairedAugmentation(rotation=20)
    first = PatchDataset(source, batch_size=3, patch_size=24, steps_per_epoch=4, augmentation=augment, seed=7)
    second = PatchDataset(source, batch_size=3, patch_size=24, steps_per_epoch=4, augmentation=augment, seed=7)
    for index in (3, 0, 2):
        second.batch(1, index)
    first.on_epoch_end()  # now in epoch 1, as Keras leaves it after one epoch
    for index in (2, 3):
        np.testing.assert_array_equal(first[index][0], second.batch(1, index)[0])
        np.testing.assert_array_equal(first[index][1], second.batch(1, index)[1])
    other_seed = PatchDataset(source, batch_size=3, patch_size=24, steps_per_epoch=4, augmentation=augment, seed=8)
    assert not np.array_equal(other_seed.batch(1, 2)[0], first[2][0])


@pytest.mark.backend_independent
def test_small_images_are_padded_and_one_channel_targets():
    images, masks = make_shapes(2, 16, 16, seed=1)
    data = PatchDataset(ArraySource(images, (masks > 0).astype("int32")), batch_size=2, patch_size=24,
                        steps_per_epoch=1, n_output_channels=1)
    images, targets = data[0]
    assert images.shape == (2, 24, 24, 1) and targets.shape == (2, 24, 24, 1) and targets.dtype == np.float32
    with pytest.raises(ValueError, match="outside the model's 2 classes"):  # 4-class masks, one sigmoid output
        PatchDataset(_source(n=2, size=16), batch_size=2, patch_size=24, steps_per_epoch=1, n_output_channels=1)[0]


def test_sequences_get_one_transform_for_all_frames():
    frames, masks = make_moving_shapes(3, timesteps=4, height=32, width=32, seed=2)
    # Every frame of a sequence gets the first frame's mask, so the masks of a
    # sequence are identical and must stay so after augmentation.
    masks[:] = masks[:, :1]
    data = PatchDataset(ArraySource(frames, masks), batch_size=3, patch_size=24, steps_per_epoch=1,
                        augmentation=PairedAugmentation(rotation=30), seed=1)
    images, labels = data[0]
    assert images.shape == (3, 4, 24, 24, 1) and labels.shape == (3, 4, 24, 24)
    for sequence in labels:
        for frame in sequence[1:]:
            np.testing.assert_array_equal(frame, sequence[0])


@pytest.mark.backend_independent
def test_tiles_cover_every_pixel_deterministically():
    source = _source(n=2, size=40)
    tiles = TileDataset(source, batch_size=4, patch_size=16)
    assert len(tiles.tiles) == 2 * 9 and len(tiles) == 5
    covered = np.zeros((2, 40, 40), bool)
    for sample, top, left in tiles.tiles:
        covered[sample, top:top + 16, left:left + 16] = True
    assert covered.all()
    np.testing.assert_array_equal(tiles[1][0], TileDataset(source, batch_size=4, patch_size=16)[1][0])
    assert tile_starts(40, 16) == [0, 16, 24] and tile_starts(10, 16) == [0]


@pytest.mark.backend_independent
def test_bad_arguments():
    with pytest.raises(ValueError, match="patch_size"):
        PatchDataset(_source(), batch_size=2, patch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        PatchDataset(_source(), batch_size=0, patch_size=8)
    with pytest.raises(ValueError, match="no masks"):
        PatchDataset(ArraySource(np.zeros((2, 8, 8, 1))), batch_size=1, patch_size=8)
    with pytest.raises(ValueError, match="channel axis"):
        ArraySource(np.zeros((2, 8, 8, 1)), np.zeros((2, 8, 9)))
    with pytest.raises(ValueError, match="at least one sample"):
        _source(n=3).split(3)


def test_worker_threads_give_the_same_batches():
    # Keras' PyDataset workers call __getitem__ from several threads at once;
    # the augmentation layers must be thread-safe and the result unchanged.
    from concurrent.futures import ThreadPoolExecutor

    data = PatchDataset(_source(), batch_size=3, patch_size=24, steps_per_epoch=6,
                        augmentation=PairedAugmentation(rotation=20), seed=4, workers=3)
    sequential = [data[index] for index in range(6)]
    with ThreadPoolExecutor(3) as pool:
        threaded = list(pool.map(data.__getitem__, [5, 4, 3, 2, 1, 0]))[::-1]
    for (images, masks), (threaded_images, threaded_masks) in zip(sequential, threaded):
        np.testing.assert_array_equal(images, threaded_images)
        np.testing.assert_array_equal(masks, threaded_masks)
