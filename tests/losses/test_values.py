"""Hand-computed tables (input -> expected value) and published values for every loss.

The arithmetic behind each expected value is written out next to it. Cases:

* binary, 2x2, truth ``[[1, 0], [1, 1]]``: perfect prediction, complete miss,
  and probabilities ``[[0.8, 0.4], [0.4, 0.6]]`` (soft counts: TP = 1.8,
  FP = 0.4, FN = 1.2, sum p = 2.2, sum p^2 = 1.32, sum g = sum g^2 = 3);
* three classes, 2x2, labels ``[[0, 1], [1, 2]]`` with probabilities
  ``a = [.6, .2, .2], b = [.1, .8, .1], c = [.55, .45, 0], d = [0, 0, 1]``;
* MONAI's published cases.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from universal_models import losses as L

BINARY_TRUTH = np.array([[[1, 0], [1, 1]]], dtype="float32")  # (1, 2, 2) labels
BINARY_MIXED = np.array([[[0.8, 0.4], [0.4, 0.6]]], dtype="float32")[..., None]
BINARY_PERFECT = BINARY_TRUTH[..., None]
BINARY_MISS = 1.0 - BINARY_PERFECT

MULTI_LABELS = np.array([[[0, 1], [1, 2]]])
MULTI_PROBABILITIES = np.array(
    [[[[0.6, 0.2, 0.2], [0.1, 0.8, 0.1]], [[0.55, 0.45, 0.0], [0.0, 0.0, 1.0]]]], dtype="float32"
)

# -- binary mixed case, by hand -----------------------------------------------------------------------------
# Cross-entropy: p_t = .8, .6 (background pixel, 1 - .4), .4, .6.
BINARY_CE = -(math.log(0.8) + math.log(0.6) + math.log(0.4) + math.log(0.6)) / 4
# Focal, gamma 2: (1 - p_t)^2 = .04, .16, .36, .16.
BINARY_FOCAL = -(0.04 * math.log(0.8) + 0.16 * math.log(0.6) + 0.36 * math.log(0.4) + 0.16 * math.log(0.6)) / 4
# Lovász: errors |g - p| = .2, .4 (g=0), .6, .4 sorted .6(g1) .4(g0) .4(g1) .2(g1); Jaccard along the order
# 1/3, 1/2, 3/4, 1 -> increments 1/3, 1/6, 1/4, 1/4.
BINARY_LOVASZ = 0.6 / 3 + 0.4 / 6 + 0.4 / 4 + 0.2 / 4
# Hinge on logits z = log(p / (1 - p)): margins 1 - z s with s = +1, -1, +1, +1.
_logit = [math.log(p / (1 - p)) for p in (0.8, 0.4, 0.4, 0.6)]
_margins = [max(0.0, 1 - z * s) for z, s in zip(_logit, (1, -1, 1, 1))]
# margins: 1 - 1.386 < 0 -> 0; 1 + (-.405) = .595; 1 + .405 = 1.405; 1 - .405 = .595. Sorted 1.405(g1),
# .595(g0) .595(g1), 0(g1): increments as above (1/3, 1/6, 1/4, 1/4).
BINARY_HINGE = _margins[2] / 3 + _margins[1] / 6 + _margins[3] / 4 + 0.0
# Hausdorff DT: squared distance maps, truth [[1, 1], [2, 1]], thresholded prediction [[1,0],[0,1]] -> all 1;
# (p - g)^2 = .04 .16 .36 .16 times (d_g^2 + d_p^2) = 2 2 3 2.
BINARY_HAUSDORFF = (0.04 * 2 + 0.16 * 2 + 0.36 * 3 + 0.16 * 2) / 4

BINARY_TABLE = [
    # (loss, perfect, complete miss, mixed)
    (L.DiceLoss(smooth=0), 0.0, 1.0, 1 - 3.6 / 4.32),  # 2 TP / (sum p^2 + sum g^2)
    (L.DiceLoss(squared=False, smooth=0), 0.0, 1.0, 1 - 3.6 / 5.2),  # 2 TP / (sum p + sum g)
    (L.DiceLoss(weighting="inverse_square", smooth=0), 0.0, 1.0, 1 - 3.6 / 4.32),  # one class: weight cancels
    (L.GeneralizedDiceLoss(smooth=0), 0.0, 1.0, 1 - 3.6 / 5.2),
    (L.TverskyLoss(alpha=0.3, beta=0.7, smooth=0), 0.0, 1.0, 1 - 1.8 / (1.8 + 0.3 * 0.4 + 0.7 * 1.2)),
    (L.FocalTverskyLoss(smooth=0), 0.0, 1.0, (1 - 1.8 / (1.8 + 0.3 * 0.4 + 0.7 * 1.2)) ** 0.75),
    (L.FBetaLoss(beta=2.0, smooth=0), 0.0, 1.0, 1 - 5 * 1.8 / (5 * 1.8 + 4 * 1.2 + 0.4)),
    (L.LovaszLoss(), 0.0, 1.0, BINARY_LOVASZ),
    (L.CrossEntropyLoss(), 0.0, -math.log(1e-7), BINARY_CE),  # probabilities clipped to [1e-7, 1]
    (L.FocalLoss(gamma=0.0), 0.0, -math.log(1e-7), BINARY_CE),
    (L.FocalLoss(), 0.0, -math.log(1e-7), BINARY_FOCAL),
    (L.BCEDiceLoss(smooth=0), 0.0, 1.0 - math.log(1e-7), BINARY_CE + 1 - 3.6 / 4.32),
    (L.CEDiceLoss(smooth=0, ce_weight=0.5), 0.0, 1.0 - 0.5 * math.log(1e-7), 0.5 * BINARY_CE + 1 - 3.6 / 5.2),
    # miss: prediction [[0, 1], [0, 0]] has the squared map [[1, 1], [2, 1]] too; (1 - 0)^2 * (d_g^2 + d_p^2)
    (L.HausdorffDTLoss(), 0.0, (2 + 2 + 4 + 2) / 4, BINARY_HAUSDORFF),
]


def _describe(loss) -> str:
    return f"{type(loss).__name__}({loss.get_config()})"


def test_binary_table():
    # one test for the whole table (the shared per-test teardown is slow); rows are named on failure
    for loss, perfect, miss, mixed in BINARY_TABLE:
        assert float(loss(BINARY_TRUTH, BINARY_PERFECT)) == pytest.approx(perfect, abs=1e-6), _describe(loss)
        assert float(loss(BINARY_TRUTH, BINARY_MISS)) == pytest.approx(miss, abs=1e-5), _describe(loss)
        assert float(loss(BINARY_TRUTH, BINARY_MIXED)) == pytest.approx(mixed, abs=1e-6), _describe(loss)


def test_lovasz_hinge_table():
    loss = L.LovaszLoss(variant="hinge")
    assert float(loss(BINARY_TRUTH, BINARY_MIXED)) == pytest.approx(BINARY_HINGE, abs=1e-5)
    # a perfect prediction with margins >= 1 costs nothing; a complete miss at logits -+1 costs the mean of
    # margins 2 weighted by Jaccard increments that sum to 1
    logits = np.where(BINARY_PERFECT > 0, 3.0, -3.0).astype("float32")
    assert float(L.LovaszLoss(variant="hinge", from_logits=True)(BINARY_TRUTH, logits)) == 0.0
    assert float(L.LovaszLoss(variant="hinge", from_logits=True)(BINARY_TRUTH, -logits / 3)) == pytest.approx(2.0)


# -- three classes, by hand ---------------------------------------------------------------------------------
# Per class: sum p g = .6, 1.25, 1; sum p = 1.25, 1.45, 1.3; sum g = 1, 2, 1.
_DICE_PER_CLASS = [1 - 1.2 / 2.25, 1 - 2.5 / 3.45, 1 - 2.0 / 2.3]
_CE_PIXELS = [-math.log(0.6), -math.log(0.8), -math.log(0.45), 0.0]

MULTI_TABLE = [
    (L.DiceLoss(squared=False, smooth=0), sum(_DICE_PER_CLASS) / 3),
    (L.DiceLoss(squared=False, smooth=0, class_weights=[0, 1, 1]), (_DICE_PER_CLASS[1] + _DICE_PER_CLASS[2]) / 2),
    (L.DiceLoss(squared=False, smooth=0, class_weights=[0, 5, 5]), (_DICE_PER_CLASS[1] + _DICE_PER_CLASS[2]) / 2),
    # generalised: weights 1/1, 1/4, 1/1; numerator 2 (.6 + 1.25/4 + 1), denominator 2.25 + 3.45/4 + 2.3
    (L.GeneralizedDiceLoss(smooth=0), 1 - 2 * (0.6 + 1.25 / 4 + 1) / (2.25 + 3.45 / 4 + 2.3)),
    # squared, weights 1 / sum g^2 = 1/1, 1/2, 1/1 (hard labels: sum g^2 = sum g); sum p^2 = .6725, .8825, 1.05
    (L.DiceLoss(weighting="inverse_square", smooth=0),
     1 - 2 * (0.6 + 1.25 / 2 + 1) / ((0.6725 + 1) + (0.8825 + 2) / 2 + (1.05 + 1))),
    (L.CrossEntropyLoss(), sum(_CE_PIXELS) / 4),
    # pixel weights 1, 2, 2, 1 (class weights 1, 2, 1: scale does not matter)
    (L.CrossEntropyLoss(class_weights=[1, 2, 1]),
     (_CE_PIXELS[0] + 2 * _CE_PIXELS[1] + 2 * _CE_PIXELS[2] + _CE_PIXELS[3]) / 6),
    # pixel d is ignored: the mean of the other three
    (L.CrossEntropyLoss(ignore_index=2), sum(_CE_PIXELS[:3]) / 3),
    (L.FocalLoss(gamma=1.0), (0.4 * _CE_PIXELS[0] + 0.2 * _CE_PIXELS[1] + 0.55 * _CE_PIXELS[2]) / 4),
    # Tversky alpha = beta = .5 is the non-squared Dice
    (L.TverskyLoss(smooth=0), sum(_DICE_PER_CLASS) / 3),
    (L.FBetaLoss(smooth=0), sum(_DICE_PER_CLASS) / 3),
]


def test_multiclass_table():
    for loss, expected in MULTI_TABLE:
        assert float(loss(MULTI_LABELS, MULTI_PROBABILITIES)) == pytest.approx(expected, abs=1e-6), _describe(loss)


def test_multiclass_lovasz_by_hand():
    # class 0: errors .4 (g1) .1 .55 0 -> sorted .55(g0) .4(g1) .1(g0) 0(g0): Jaccard 1/2? gts = 1:
    #   pos0 g0: 1 - 1/2 = .5; pos1 g1: 1 - 0/2 = 1; pos2, pos3: 1 -> increments .5 .5 0 0
    class_0 = 0.55 * 0.5 + 0.4 * 0.5
    # class 1: errors .2 (g0) .2 (g1) .55 (g1) 0 (g0) -> sorted .55(g1) .2 .2 0; gts = 2: pos0 g1: 1 - 1/2 = .5,
    #   then the two .2 (one g0, one g1; ties do not change the sum): .2 * (J(pos2) - J(pos0)) = .2 * (1 - .5)
    class_1 = 0.55 * 0.5 + 0.2 * 0.5
    # class 2: errors .2 .1 0 0(g1) -> sorted .2(g0) .1(g0) 0 0: gts = 1: J = 1 - 1/2, 1 - 1/3 -> .5, 1/6
    class_2 = 0.2 * 0.5 + 0.1 * (1 / 6)
    expected = (class_0 + class_1 + class_2) / 3
    assert float(L.LovaszLoss()(MULTI_LABELS, MULTI_PROBABILITIES)) == pytest.approx(expected, abs=1e-6)


def test_multiclass_perfect_and_miss():
    perfect = np.eye(3, dtype="float32")[MULTI_LABELS]
    miss = np.eye(3, dtype="float32")[(MULTI_LABELS + 1) % 3]
    for loss in (L.DiceLoss(), L.GeneralizedDiceLoss(), L.TverskyLoss(), L.FocalTverskyLoss(), L.FBetaLoss(),
                 L.LovaszLoss(), L.DiceLoss(weighting="inverse_square")):
        assert float(loss(MULTI_LABELS, perfect)) == pytest.approx(0.0, abs=1e-6), loss.name
        assert float(loss(MULTI_LABELS, miss)) == pytest.approx(1.0, abs=1e-5), loss.name
    for loss in (L.CrossEntropyLoss(), L.FocalLoss(), L.HausdorffDTLoss()):
        assert float(loss(MULTI_LABELS, perfect)) == pytest.approx(0.0, abs=1e-6), loss.name


# -- published values -----------------------------------------------------------------------------------------
# MONAI tests/losses/test_dice_loss.py and test_tversky_loss.py: one sigmoid channel, logits
# [[1, -1], [-1, 1]], truth [[1, 0], [1, 1]], smooth 1e-5 in numerator and denominator, per-sample reduction.
MONAI_LOGITS = np.array([[[[1.0], [-1.0]], [[-1.0], [1.0]]]], dtype="float32")
MONAI_TRUTH = np.array([[[[1.0], [0.0]], [[1.0], [1.0]]]], dtype="float32")


MONAI_PUBLISHED = [
    # (class, options, published value, digits published)
    (L.DiceLoss, {"squared": False}, 0.307576, 6),
    (L.DiceLoss, {"squared": True}, 0.178337, 6),
    (L.TverskyLoss, {"alpha": 0.3, "beta": 0.7}, 0.3589, 4),
]


def test_monai_published_values():
    for cls, options, published, digits in MONAI_PUBLISHED:
        for per_image in (True, False):  # one image: both reductions agree
            loss = cls(smooth=1e-5, from_logits=True, per_image=per_image, **options)
            value = float(loss(MONAI_TRUTH, MONAI_LOGITS))
            assert round(value, digits) == published, (_describe(loss), value)
        # the same through probabilities and labels without a channel axis
        probabilities = 1 / (1 + np.exp(-MONAI_LOGITS))
        value = float(cls(smooth=1e-5, **options)(MONAI_TRUTH[..., 0], probabilities))
        assert round(value, digits) == published, (cls.__name__, options, value)
