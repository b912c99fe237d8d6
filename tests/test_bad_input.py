"""Bad input, one case per row: the kind of error, and a message that names the problem and the fix.

Each case is a function that performs one wrong thing; the table gives the
exception type expected and words the message must contain: some naming what
was wrong, some saying what to do. ``docs/reliability.md`` lists the same
table.
"""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import universal_models as um
from universal_models.data.folder import SegmentationFolder
from universal_models.data.pipeline import ArraySource, PatchDataset
from universal_models.data.reading import read_image, to_float_image
from universal_models.inference.stateful import predict_stream
from universal_models.losses import DiceLoss

from .data.folders import write_folder
from .helpers import assert_clear_error


# -- the cases -------------------------------------------------------------------------------------
def unknown_model_name(tmp_path):
    um.get_model("unett", 64, 64, 1, 2)


def zero_classes(tmp_path):
    um.get_model("unet_shallow", 64, 64, 1, 0)


def negative_classes(tmp_path):
    um.get_model("unet_shallow", 64, 64, 1, -2)


def non_positive_size(tmp_path):
    um.get_model("unet_shallow", 0, 64, 1, 2)


def input_below_minimum(tmp_path):
    um.get_model("unet", 8, 8, 1, 2)


def unknown_option(tmp_path):
    um.get_model("unet_shallow", 64, 64, 1, 2, base_filter=8)


def wrong_channels_at_call(tmp_path):
    model, _, _ = um.get_model("testnet", 32, 32, 1, 2, base_filters=4)
    model(np.zeros((1, 32, 32, 3), "float32"))


def nan_in_image_arrays(tmp_path):
    images = np.zeros((4, 16, 16, 1), "float32")
    images[2, 3, 3, 0] = np.nan
    ArraySource(images, np.zeros((4, 16, 16), "int32"))


def inf_in_image_file(tmp_path):
    import tifffile

    image = np.zeros((16, 16), "float32")
    image[0, 0] = np.inf
    tifffile.imwrite(tmp_path / "broken.tif", image)
    to_float_image(read_image(tmp_path / "broken.tif"), tmp_path / "broken.tif")


def mask_label_too_large_in_folder(tmp_path):
    write_folder(tmp_path, n=3)
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(tmp_path / "masks" / "1.png")
    folder = SegmentationFolder(tmp_path, n_classes=4)
    folder.scan()
    folder.load(1)


def mask_label_too_large_in_arrays(tmp_path):
    masks = np.zeros((4, 16, 16), "int32")
    masks[1, 0, 0] = 5
    dataset = PatchDataset(ArraySource(np.zeros((4, 16, 16, 1), "float32"), masks), batch_size=4, patch_size=16,
                           n_output_channels=3)
    dataset[0]


def negative_mask_label(tmp_path):
    masks = np.zeros((4, 16, 16), "int32")
    masks[3, 5, 5] = -1
    dataset = PatchDataset(ArraySource(np.zeros((4, 16, 16, 1), "float32"), masks), batch_size=4, patch_size=16,
                           n_output_channels=3)
    dataset[0]


def negative_label_in_mask_file(tmp_path):
    import tifffile

    write_folder(tmp_path, n=3)
    (tmp_path / "masks" / "2.png").unlink()
    tifffile.imwrite(tmp_path / "masks" / "2.tif", np.full((32, 32), -1, np.int16))
    folder = SegmentationFolder(tmp_path)
    folder.scan()
    folder.load(2)


def one_hot_class_axis_mismatch(tmp_path):
    truth = keras.ops.one_hot(np.zeros((2, 8, 8), "int32"), 3)
    prediction = np.full((2, 8, 8, 4), 0.25, "float32")
    DiceLoss()(truth, prediction)


def image_mask_size_mismatch(tmp_path):
    write_folder(tmp_path, n=3)
    Image.fromarray(np.zeros((20, 32), np.uint8)).save(tmp_path / "masks" / "0.png")
    SegmentationFolder(tmp_path).scan()


def empty_data_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    SegmentationFolder(tmp_path).scan()


def unmatched_file_names(tmp_path):
    write_folder(tmp_path, n=3)
    (tmp_path / "masks" / "2.png").rename(tmp_path / "masks" / "two.png")
    SegmentationFolder(tmp_path).scan()


def truncated_image_file(tmp_path):
    write_folder(tmp_path, n=3)
    path = tmp_path / "images" / "1.png"
    path.write_bytes(path.read_bytes()[:60])
    folder = SegmentationFolder(tmp_path)
    folder.scan()
    folder.load(1)


def fewer_frames_than_timesteps(tmp_path):
    model, _, _ = um.get_model("lstm_shallow", 16, 16, 1, 1, filters=2, lstm_filters=2, stateful=True, batchsize=1,
                               timesteps=4)
    predict_stream(model, np.zeros((1, 2, 16, 16, 1), "float32"))


def stateful_without_batchsize(tmp_path):
    um.get_model("lstm_shallow", 16, 16, 1, 1, stateful=True, timesteps=1)


def loading_a_file_that_is_not_a_model(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not a model")
    um.load_model(path)


def loading_a_truncated_model_file(tmp_path):
    model, _, _ = um.get_model("testnet", 16, 16, 1, 2, base_filters=2)
    path = tmp_path / "model.keras"
    model.save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    um.load_model(path)


def model_with_code_refused_by_safe_mode(tmp_path):
    inputs = keras.Input((4,))
    outputs = keras.layers.Lambda(lambda x: x * 2.0)(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    um.load_model(path)


def training_that_diverges(tmp_path):
    from universal_models.training import TrainConfig, train

    config = TrainConfig(model="testnet", model_options={"base_filters": 2}, data="shapes", n_samples=12,
                         image_size=32, patch_size=32, batch_size=4, val_split=4, steps_per_epoch=2, epochs=2,
                         augment=False, learning_rate=1e30, optimizer="sgd", output=str(tmp_path / "run"))
    train(config, verbose=0, evaluate=False)


# (case, expected exception, words naming the problem, words naming the fix)
CASES = [
    (unknown_model_name, ValueError, ["unett"], ["unet"]),
    (zero_classes, ValueError, ["n_classes", "0"], [">= 1"]),
    (negative_classes, ValueError, ["n_classes", "-2"], [">= 1"]),
    (non_positive_size, ValueError, ["input_height", "0"], ["positive"]),
    (input_below_minimum, ValueError, ["8"], ["16", "larger"]),
    (unknown_option, ValueError, ["base_filter"], ["base_filters"]),
    (wrong_channels_at_call, ValueError, ["1-channel", "3 channels"], ["input_channels=3"]),
    (nan_in_image_arrays, ValueError, ["NaN", "[2]"], ["nan_to_num"]),
    (inf_in_image_file, ValueError, ["broken.tif", "infinite"], ["fix or remove"]),
    (mask_label_too_large_in_folder, ValueError, ["1.png", "label 7"], ["n_classes"]),
    (mask_label_too_large_in_arrays, ValueError, ["sample 1", "0 ... 5", "3 classes"], ["n_classes"]),
    (negative_mask_label, ValueError, ["sample 3", "-1 ... 0"], ["Fix the mask"]),
    (negative_label_in_mask_file, ValueError, ["2.tif", "negative"], ["start at 0"]),
    (one_hot_class_axis_mismatch, ValueError, ["(2, 8, 8, 3)", "(2, 8, 8, 4)"], ["one-hot targets shaped like"]),
    (image_mask_size_mismatch, ValueError, ["0.png", "32 x 32", "20 x 32"], ["must have its image's size"]),
    (empty_data_folder, ValueError, ["no image files"], ["put the images there"]),
    (unmatched_file_names, ValueError, ["do not match", "2.png", "two.png"], ["same file stem"]),
    (truncated_image_file, ValueError, ["1.png", "truncated"], ["replace or remove"]),
    (fewer_frames_than_timesteps, ValueError, ["takes 4 frames", "have 2 frames"], ["multiple of 4", "timesteps=1"]),
    (stateful_without_batchsize, ValueError, ["batchsize"], ["batchsize="]),
    (loading_a_file_that_is_not_a_model, ValueError, ["notes.keras", "not a Keras model file"], ["model.save"]),
    (loading_a_truncated_model_file, ValueError, ["model.keras"], ["save the model again", "model.save"]),
    (model_with_code_refused_by_safe_mode, ValueError, ["lambda.keras", "safe mode"], ["safe_mode=False"]),
    (training_that_diverges, ValueError, ["diverged", "loss became"], ["--learning-rate"]),
]


@pytest.mark.parametrize("case, error, problem, fix", CASES, ids=[case[0].__name__ for case in CASES])
def test_bad_input_gives_a_clear_error(case, error, problem, fix, tmp_path):
    assert_clear_error(case, error, problem, fix, tmp_path)


def test_the_table_has_at_least_fifteen_cases():
    assert len({case[0].__name__ for case in CASES}) >= 15


def test_diverged_training_keeps_no_nan_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="diverged"):
        training_that_diverges(tmp_path)
    last = tmp_path / "run" / "last.keras"
    if last.exists():  # only an epoch that ended with finite weights may be on disk
        model = um.load_model(last)
        assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(weight))) for weight in model.weights)


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    from universal_models.cli import main

    code = main(["train", "--data", str(tmp_path / "missing"), "--output", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 2
    assert "is neither a folder nor a generated dataset" in captured.err and "Traceback" not in captured.err
    assert re.search(r"umodels train: error:", captured.err)


def test_numpy_loads_never_allow_pickle():
    source = Path(um.__file__).parent
    offenders = [str(path) for path in source.rglob("*.py") if "allow_pickle=True" in path.read_text()]
    assert not offenders, f"np.load(..., allow_pickle=True) on user data in {offenders}"
