"""The model factory: names, argument checks, option checks, list_models."""

from __future__ import annotations

import numpy as np
import pytest

import universal_models as um
from universal_models.registry import KINDS

pytestmark = pytest.mark.backend_independent

SEGMENTATION = {"testnet", "unet", "unet_shallow", "segnet", "segnet_shallow", "fcn8", "fcn16", "fcn32"}


def test_list_models_names_kind_and_description():
    models = um.list_models()
    names = {info.name for info in models}
    assert SEGMENTATION <= names
    for info in models:
        assert info.kind in KINDS
        assert info.description and "\n" not in info.description
    assert {info.name for info in um.list_models("segmentation")} >= SEGMENTATION


def test_list_models_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        um.list_models("classification")


def test_unknown_model_names_closest_matches():
    with pytest.raises(ValueError, match=r"Unknown model 'unett'.*'unet'"):
        um.get_model("unett", 64, 64, 3, 2)
    with pytest.raises(ValueError, match="segnet"):
        um.get_model("segnett", 64, 64, 3, 2)


def test_model_names_are_case_insensitive():
    model, height, width = um.get_model("TestNet", 16, 16, 1, 2)
    assert model.name == "testnet" and (height, width) == (16, 16)


@pytest.mark.parametrize("n_classes", [0, -1, 2.5, True, "3"])
def test_bad_n_classes(n_classes):
    with pytest.raises(ValueError, match="n_classes must be an integer >= 1"):
        um.get_model("testnet", 32, 32, 1, n_classes)


@pytest.mark.parametrize(
    "height,width,channels,argument",
    [(0, 32, 1, "input_height"), (32, -4, 1, "input_width"), (32, 32, 0, "input_channels"),
     (32.0, 32, 1, "input_height"), (32, 32, None, "input_channels")],
)
def test_bad_sizes(height, width, channels, argument):
    with pytest.raises(ValueError, match=f"{argument} must be a positive integer"):
        um.get_model("testnet", height, width, channels, 2)


def test_unknown_option_suggests_the_close_one():
    with pytest.raises(ValueError, match=r"'base_filter' \(did you mean 'base_filters'\?\).*Valid options"):
        um.get_model("unet", 64, 64, 1, 2, base_filter=8)


def test_bad_option_values_are_explained():
    with pytest.raises(ValueError, match="upsampling must be one of"):
        um.get_model("unet", 64, 64, 1, 2, upsampling="nearest")
    with pytest.raises(ValueError, match="output_activation must be one of"):
        um.get_model("unet", 64, 64, 1, 2, output_activation="relu")
    with pytest.raises(ValueError, match="n_blocks must be an integer from 1 to 5"):
        um.get_model("segnet", 64, 64, 1, 2, n_blocks=6)


def test_model_options_lists_defaults():
    options = um.model_options("unet")
    assert options["base_filters"] == 64 and options["depth"] == 4 and options["upsampling"] == "transpose"


def test_numpy_integers_are_accepted_as_sizes_counts_and_options():
    model, height, width = um.get_model("unet", np.int64(32), np.int32(32), np.int64(1), np.int64(2),
                                        base_filters=np.int64(2), depth=np.uint8(2))
    assert (height, width) == (32, 32) and type(height) is int and model.output_shape == (None, 32, 32, 2)
    segnet, _, _ = um.get_model("segnet", 32, 32, 1, 2, base_filters=np.int16(2), n_blocks=np.int64(2))
    assert segnet.output_shape == (None, 32, 32, 2)


def test_one_rule_for_whole_numbers():
    from universal_models._validation import check_integer, is_integer
    from universal_models.data import PatchDataset, SegmentationFolder, make_shapes
    from universal_models.data.pipeline import ArraySource
    from universal_models.metrics import IoU

    assert [is_integer(value) for value in (3, np.int64(3), np.uint8(3), True, np.bool_(True), 3.0, "3")] == [
        True, True, True, False, False, False, False]
    assert check_integer("n", np.int64(7)) == 7 and type(check_integer("n", np.int64(7))) is int
    with pytest.raises(ValueError, match=r"n must be an integer from 1 to 5, got 6\."):
        check_integer("n", 6, maximum=5)
    with pytest.raises(ValueError, match=r"n must be a positive integer or None, got True\."):
        check_integer("n", True, allow_none=True)
    images, masks = make_shapes(np.int64(4), np.int64(16), np.int64(16))
    batch = PatchDataset(ArraySource(images, masks), batch_size=np.int64(2), patch_size=np.int64(16),
                         steps_per_epoch=np.int64(1))[0]
    assert batch[0].shape == (2, 16, 16, 1)
    assert IoU(n_classes=np.int64(3)).n_classes == 3
    with pytest.raises(ValueError, match="n_classes must be a positive integer or None, got 2.5"):
        SegmentationFolder(".", n_classes=2.5)


@pytest.mark.parametrize("model,option,value,expected", [
    ("unet", "dropout", "a", "a number"), ("unet", "base_filters", 4.5, "an integer"),
    ("unet", "batch_norm", "yes", "true or false"), ("lstm_unet", "lstm_filters", "x", "an integer or None"),
    ("unet", "upsampling", 3, "a string"),
])
def test_option_values_of_the_wrong_type_are_refused_naming_the_option(model, option, value, expected):
    """``--option dropout=a`` was a TypeError deep in the builder; now one check, from the builder's "
      "signature."""
    with pytest.raises(ValueError, match=f"option '{option}' of model '{model}' must be {expected}"):
        um.get_model(model, 32, 32, 1, 2, **{option: value})
    um.get_model("unet", 32, 32, 1, 2, base_filters=2, depth=2, dropout=0)  # an int for a float option is fine
