"""Generated datasets: shapes, moving shapes, particles."""

from __future__ import annotations

import numpy as np
import pytest

from universal_models.data import GENERATED_DATASETS, make_moving_shapes, make_particles, make_shapes

pytestmark = pytest.mark.backend_independent


def test_shapes_types_ranges_and_classes():
    images, masks = make_shapes(64, 48, 40, seed=3)
    assert images.shape == (64, 48, 40, 1) and images.dtype == np.float32
    assert masks.shape == (64, 48, 40) and masks.dtype == np.int32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    assert all((mask > 0).any() for mask in masks)  # every image has a shape


def test_shapes_are_seeded_and_rgb():
    first, second = make_shapes(4, seed=1), make_shapes(4, seed=1)
    np.testing.assert_array_equal(first[0], second[0])
    assert not np.array_equal(first[0], make_shapes(4, seed=2)[0])
    rgb, _ = make_shapes(2, 32, 32, channels=3)
    assert rgb.shape == (2, 32, 32, 3) and not np.allclose(rgb[..., 0], rgb[..., 1])


def test_shapes_need_their_outline_not_just_brightness():
    # Shape pixels are brighter on average, but a threshold cannot separate the classes.
    images, masks = make_shapes(64, 48, 48, seed=0)
    means = [images[..., 0][masks == label].mean() for label in range(4)]
    assert means[0] < min(means[1:])
    assert max(means[1:]) - min(means[1:]) < 0.1


def test_moving_shapes_move_smoothly():
    frames, masks = make_moving_shapes(6, timesteps=10, height=48, width=48, speed=2.0, seed=4)
    assert frames.shape == (6, 10, 48, 48, 1) and masks.shape == (6, 10, 48, 48)
    foreground = (masks > 0).astype(float)
    changed = np.abs(np.diff(foreground, axis=1)).mean(axis=(2, 3))
    assert 0.0 < changed.mean() < 0.1  # something moves, a little per frame
    still, _ = make_moving_shapes(1, timesteps=3, height=32, width=32, speed=0.0, seed=1)
    assert still.shape[1] == 3


def test_particles_positions_and_classes_match_the_masks():
    images, masks, particles = make_particles(8, 48, 48, n_particle_classes=3, return_particles=True, seed=5)
    assert images.shape == (8, 48, 48, 1) and set(np.unique(masks)) <= {0, 1, 2, 3}
    for mask, found in zip(masks, particles):
        assert found.shape[1] == 3 and len(found) >= 1
        last = found[-1]  # the last particle is on top of any other
        assert mask[int(round(last[0])), int(round(last[1]))] == int(last[2])


def test_particle_intensity_encodes_the_class():
    images, masks = make_particles(32, 48, 48, n_particle_classes=3, seed=0)
    peaks = [images[..., 0][masks == label].mean() for label in (1, 2, 3)]
    assert peaks[0] < peaks[1] < peaks[2]
    _, sized = make_particles(32, 48, 48, attribute="size", seed=0)
    areas = [(sized == label).sum() for label in (1, 2, 3)]
    assert areas[0] < areas[2]


@pytest.mark.parametrize("call", [
    lambda: make_shapes(0), lambda: make_shapes(2, 4, 4), lambda: make_shapes(2, channels=2),
    lambda: make_particles(2, attribute="colour"), lambda: make_particles(2, radius=0),
    lambda: make_moving_shapes(2, speed=-1),
])
def test_bad_arguments_are_refused(call):
    with pytest.raises(ValueError):
        call()


def test_registry_of_generated_datasets():
    assert set(GENERATED_DATASETS) == {"shapes", "particles", "moving_shapes"}
    assert GENERATED_DATASETS["moving_shapes"].sequence
