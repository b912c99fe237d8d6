"""hausdorff_distance: hand cases, scipy references, shapes and errors (numpy only)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial.distance import directed_hausdorff

from tests.losses import reference as R
from universal_models.metrics import distance_to, hausdorff_distance, mask_boundary

pytestmark = pytest.mark.backend_independent


def _square(size, top, left, height, width):
    mask = np.zeros((size, size), bool)
    mask[top : top + height, left : left + width] = True
    return mask


def test_hand_cases():
    truth = _square(10, 2, 2, 3, 3)
    assert hausdorff_distance(truth, truth) == 0.0
    assert hausdorff_distance(_square(10, 2, 2, 3, 5), truth) == 2.0  # two columns wider
    assert hausdorff_distance(_square(10, 4, 4, 3, 3), truth) == pytest.approx(math.sqrt(8))  # moved by (2, 2)
    assert hausdorff_distance(np.zeros((5, 5)), np.zeros((5, 5))) == 0.0
    assert hausdorff_distance(truth, np.zeros((10, 10))) == math.inf
    # a far single outlier pixel: HD sees it, HD95 of many boundary pixels does not
    noisy = truth.copy()
    noisy[9, 9] = True
    assert hausdorff_distance(noisy, truth) == pytest.approx(math.hypot(5, 5))
    assert hausdorff_distance(_square(40, 5, 5, 20, 20) | _square(40, 38, 38, 1, 1), _square(40, 5, 5, 20, 20),
                              percentile=95) == 0.0


def test_matches_scipy():
    rng = np.random.default_rng(0)
    for _ in range(5):
        truth = ndimage.binary_opening(rng.random((23, 17)) < 0.5)
        predicted = ndimage.binary_opening(rng.random((23, 17)) < 0.5)
        edges = [np.argwhere(mask_boundary(mask)) for mask in (predicted, truth)]
        expected = max(directed_hausdorff(edges[0], edges[1])[0], directed_hausdorff(edges[1], edges[0])[0])
        assert hausdorff_distance(predicted, truth) == pytest.approx(expected)
        assert hausdorff_distance(predicted, truth, percentile=95) == pytest.approx(
            R.hausdorff(predicted, truth, percentile=95))
        targets = rng.random((9, 13)) < 0.1
        np.testing.assert_allclose(distance_to(targets), ndimage.distance_transform_edt(~targets))


def test_boundary_matches_scipy_erosion():
    mask = ndimage.binary_opening(np.random.default_rng(1).random((12, 15)) < 0.6)
    structure = ndimage.generate_binary_structure(2, 1)
    np.testing.assert_array_equal(mask_boundary(mask), mask & ~ndimage.binary_erosion(mask, structure, border_value=0))


def test_batches_give_one_distance_per_image():
    truth = np.stack([_square(8, 1, 1, 3, 3), _square(8, 1, 1, 3, 3), np.zeros((8, 8), bool)])
    predicted = np.stack([_square(8, 1, 1, 3, 3), _square(8, 1, 1, 3, 5), np.zeros((8, 8), bool)])
    np.testing.assert_array_equal(hausdorff_distance(predicted, truth), [0.0, 2.0, 0.0])
    assert hausdorff_distance(predicted[None], truth[None]).shape == (1, 3)


def test_bad_inputs_are_refused():
    for predicted, truth, percentile, message in [
        (np.zeros((4, 4)), np.zeros((4, 5)), 100, "same shape"),
        (np.zeros(4), np.zeros(4), 100, "height, width"),
        (np.zeros((4, 4)), np.zeros((4, 4)), 0, "percentile must be in"),
        (np.zeros((4, 4)), np.zeros((4, 4)), 101, "percentile must be in"),
    ]:
        with pytest.raises(ValueError, match=message):
            hausdorff_distance(predicted, truth, percentile=percentile)
