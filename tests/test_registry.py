"""The model factory: names, argument checks, option checks, list_models."""

from __future__ import annotations

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
