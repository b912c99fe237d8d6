"""Every segmentation model through the shared tests, plus paper-size checks."""

from __future__ import annotations

import pytest

import universal_models as um

from .base import ModelTest
from .options import SMALL


class TestTestNet(ModelTest):
    name = "testnet"
    min_size = 8


class TestUNet(ModelTest):
    name = "unet"
    min_size = 16


class TestUNetBilinear(ModelTest):
    """U-Net's ``upsampling="bilinear"`` and ``dropout`` options: the shared tests that run
    the layers these options change; the others are TestUNet's (same code)."""

    name = "unet"
    options = {**SMALL["unet"], "upsampling": "bilinear", "dropout": 0.2}
    min_size = 16
    test_logits_output = test_learns_with_one_hot_labels_and_rgb = test_learns_binary = None
    test_too_small_input_names_the_minimum = test_unknown_option_is_refused = None
    test_wrong_channel_count_says_how_to_fix_it = None


class TestUNetShallow(ModelTest):
    name = "unet_shallow"
    min_size = 8


class TestSegNet(ModelTest):
    name = "segnet"
    min_size = 32
    learning_rate = 0.3


class TestSegNetShallow(ModelTest):
    name = "segnet_shallow"
    min_size = 8
    learning_rate = 0.3


class TestFCN32(ModelTest):
    name = "fcn32"
    min_size = 32
    learn_size = 128
    blob_radius = 16


class TestFCN16(ModelTest):
    name = "fcn16"
    min_size = 32
    learn_size = 64
    blob_radius = 10


class TestFCN8(ModelTest):
    name = "fcn8"
    min_size = 32
    learn_size = 64
    blob_radius = 10


# Parameter counts of the paper-size models, with the papers' own figures:
# U-Net about 31 M (Ronneberger et al.), SegNet 29.5 M (Badrinarayanan et al.,
# table 6), FCN-VGG16 134 M (Long et al., table 1). Exact counts depend on
# n_classes and on our batch norm; the paper figures are within 1 %.
@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "name,paper_params",
    [("unet", 31.0e6), ("segnet", 29.5e6), ("fcn8", 134e6)],
)
def test_paper_sized_defaults(name, paper_params):
    model, _, _ = um.get_model(name, 64, 64, 3, 2)
    assert abs(model.count_params() - paper_params) / paper_params < 0.01, model.count_params()


@pytest.mark.parametrize("name", ["unet", "unet_shallow"])
def test_unet_bn_momentum_sets_every_batch_norm_and_their_moving_update(name):
    import numpy as np

    from tests.helpers import to_backend, to_numpy

    assert um.model_options(name)["bn_momentum"] == 0.99  # Keras' default stays the default
    fast, _, _ = um.get_model(name, 16, 16, 1, 2, base_filters=4, depth=2, bn_momentum=0.5)
    slow, _, _ = um.get_model(name, 16, 16, 1, 2, base_filters=4, depth=2)
    slow.set_weights(fast.get_weights())
    norms = {model: [layer for layer in model.layers if "BatchNormalization" in type(layer).__name__]
             for model in (fast, slow)}
    assert norms[fast] and {layer.momentum for layer in norms[fast]} == {0.5}
    assert {layer.momentum for layer in norms[slow]} == {0.99}
    images = to_backend(np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32") + 3.0)
    before = to_numpy(norms[fast][0].moving_mean).copy()
    fast(images, training=True)
    slow(images, training=True)
    # moving = moving * m + batch * (1 - m): the step with m = 0.5 is 50 times the step with 0.99
    step_fast = to_numpy(norms[fast][0].moving_mean) - before
    step_slow = to_numpy(norms[slow][0].moving_mean) - before
    assert np.max(np.abs(step_slow)) > 0
    np.testing.assert_allclose(step_fast, 50 * step_slow, rtol=1e-3, atol=1e-6)


@pytest.mark.backend_independent
@pytest.mark.parametrize("bad", [1.0, -0.1, "0.9", True])
def test_unet_bad_bn_momentum_is_refused_with_the_range(bad):
    # out of range: the builder's message with the range; not a number: get_model's typed-option check
    in_range = r"bn_momentum must be a number in \[0, 1\)"
    expected = in_range if isinstance(bad, float) else r"'bn_momentum'.* must be a number"
    with pytest.raises(ValueError, match=expected):
        um.get_model("unet", 16, 16, 1, 2, base_filters=4, depth=2, bn_momentum=bad)
