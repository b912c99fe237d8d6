"""The `umodels` command end to end: list, train, resume, evaluate, predict, export, demo, errors."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from tests.data.folders import write_folder
from tests.helpers import onnx_export_available
from universal_models.cli import _train_config, build_parser, main

TRAIN = ["train", "--model", "testnet", "--option", "base_filters=4", "--patch-size", "32", "--batch-size", "4",
         "--steps-per-epoch", "2", "--verbose", "0", "--loss", "sparse_categorical_crossentropy"]


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_folder(root, n=6, size=40, binary=True, images_dir="image", masks_dir="label")
    return root


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_folder) -> Path:
    """One epoch on a folder dataset (0/255 masks), shared by the evaluate/predict/export tests.

    (argparse keeps the last --model/--option given, so the U-Net settings override TRAIN's.)
    """
    run = tmp_path_factory.mktemp("runs") / "run"
    keras.utils.set_random_seed(0)
    # A small U-Net: torch.export (ONNX) handles its layers; testnet's UpSampling2D it does not.
    unet = ["--model", "unet", "--option", "base_filters=4", "--option", "depth=2"]
    code = main(TRAIN + unet + ["--data", str(data_folder), "--images-dir", "image", "--masks-dir", "label",
                         "--val-split", "2", "--epochs", "1", "--output", str(run), "--class-names", "bg,shape"])
    assert code == 0
    return run


@pytest.mark.pipeline
def test_train_writes_the_run_folder(trained_run, capsys):
    for name in ("best.keras", "last.keras", "log.csv", "curves.png", "predictions.png", "metrics.json"):
        assert (trained_run / name).is_file(), name
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert [entry["name"] for entry in metrics["per_class"]] == ["bg", "shape"] and metrics["n_images"] == 2


@pytest.mark.pipeline
def test_resume_continues_the_log(tmp_path, trained_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    assert main(["train", "--resume", "--output", str(run), "--epochs", "2", "--verbose", "0"]) == 0
    rows = list(csv.DictReader((run / "log.csv").open()))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert "Validation (full size" in capsys.readouterr().out


@pytest.mark.pipeline
def test_evaluate_a_run_and_a_model_on_other_data(tmp_path, trained_run, data_folder, capsys):
    assert main(["evaluate", str(trained_run), "--output", str(tmp_path / "scores.json")]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["n_images"] == 2 and len(scores["per_class"]) == 2
    assert main(["evaluate", str(trained_run / "best.keras"), "--data", str(data_folder), "--tile-size", "16",
                 "--overlap", "4"]) == 0
    out = capsys.readouterr().out
    assert "6 images" in out and "mean IoU" in out


@pytest.mark.pipeline
def test_predict_writes_one_mask_per_image_and_probabilities(tmp_path, trained_run, data_folder, capsys):
    output = tmp_path / "predicted"
    assert main(["predict", str(trained_run), str(data_folder / "image"), "--output", str(output),
                 "--probabilities", "--tile-size", "32", "--overlap", "8"]) == 0
    masks = sorted(output.glob("*.png"))
    assert [path.stem for path in masks] == [str(i) for i in range(6)]
    mask = np.asarray(Image.open(masks[0]))
    assert mask.shape == (40, 40) and set(np.unique(mask)) <= {0, 1}
    import tifffile

    probabilities = tifffile.imread(output / "0_probabilities.tif")
    assert probabilities.shape == (40, 40, 2)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(probabilities.argmax(-1), mask)
    spread = tmp_path / "spread"
    assert main(["predict", str(trained_run / "best.keras"), str(data_folder / "image" / "3.png"),
                 "--output", str(spread), "--mask-values", "spread"]) == 0
    assert set(np.unique(np.asarray(Image.open(spread / "3.png")))) <= {0, 255}


@pytest.mark.pipeline
def test_export_keras_drops_the_optimizer(tmp_path, trained_run, capsys):
    path = tmp_path / "model.keras"
    assert main(["export", str(trained_run), "--format", "keras", "--output", str(path)]) == 0
    exported = keras.saving.load_model(path, safe_mode=True)
    original = keras.saving.load_model(trained_run / "best.keras", safe_mode=True)
    assert path.stat().st_size < (trained_run / "best.keras").stat().st_size
    images = np.random.default_rng(0).random((1, 40, 40, 1)).astype("float32")
    np.testing.assert_allclose(exported.predict(images, verbose=0), original.predict(images, verbose=0), atol=1e-6)


@pytest.mark.skipif(not onnx_export_available(),
                    reason="ONNX export runs offline on torch >= 2.6 with onnx, onnxscript and onnxruntime")
def test_export_onnx_and_predict_with_onnxruntime(tmp_path, trained_run, data_folder, capsys):
    path = tmp_path / "model.onnx"
    assert main(["export", str(trained_run), "--format", "onnx", "--output", str(path), "--input-size", "32",
                 "--batch-size", "2"]) == 0
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(1).random((2, 32, 32, 1)).astype("float32")
    model = keras.saving.load_model(trained_run / "best.keras", safe_mode=True)
    expected = np.asarray(model.predict(images, verbose=0))
    found = session.run(None, {session.get_inputs()[0].name: images})[0]
    np.testing.assert_allclose(found, expected, atol=1e-4)
    onnx_masks, keras_masks = tmp_path / "onnx", tmp_path / "keras"
    for model_path, output in ((path, onnx_masks), (trained_run / "best.keras", keras_masks)):
        assert main(["predict", str(model_path), str(data_folder / "image" / "1.png"), "--output", str(output),
                     "--tile-size", "32", "--overlap", "8", "--batch-size", "2"]) == 0
    agreement = np.mean(np.asarray(Image.open(onnx_masks / "1.png")) == np.asarray(Image.open(keras_masks / "1.png")))
    assert agreement > 0.999


def test_train_on_generated_data_and_list(tmp_path, capsys):
    assert main(TRAIN + ["--data", "particles", "--n-samples", "8", "--image-size", "32", "--val-split", "2",
                         "--epochs", "1", "--output", str(tmp_path / "particles")]) == 0
    metrics = json.loads((tmp_path / "particles" / "metrics.json").read_text())
    assert len(metrics["per_class"]) == 4
    assert main(["list", "all"]) == 0
    out = capsys.readouterr().out
    assert "unet" in out and "shapes" in out and "lstm" in out


@pytest.mark.pipeline
def test_train_a_recurrent_model_on_moving_shapes(tmp_path, capsys):
    run = tmp_path / "sequences"
    assert main(["train", "--model", "lstm_unet", "--option", "base_filters=4", "--option", "depth=2",
                 "--data", "moving_shapes", "--n-samples", "6", "--image-size", "32", "--timesteps", "3",
                 "--patch-size", "32", "--batch-size", "2", "--steps-per-epoch", "1", "--epochs", "1",
                 "--val-split", "2", "--verbose", "0", "--output", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_images"] == 2 and metrics["tile_size"] == [32, 32]  # the model's fixed frame size
    assert (run / "predictions.png").is_file()


@pytest.mark.pipeline
def test_demo_quick(tmp_path, capsys):
    assert main(["demo", "--quick", "--output", str(tmp_path / "demo"), "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert "Final mean IoU" in out and str(tmp_path / "demo") in out
    assert (tmp_path / "demo" / "predictions.png").is_file() and (tmp_path / "demo" / "metrics.json").is_file()


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.backend_independent
@pytest.mark.parametrize("arguments", [
    [], ["train", "--epochs", "0"], ["train", "--patch-size", "12x"], ["train", "--option", "nokey"],
    ["predict", "model.keras"], ["export", "m.keras", "--format", "tflite", "--output", "x"], ["frobnicate"],
    ["train", "--val-split", "0"], ["train", "--precision", "mixed_float16"],
])
def test_usage_errors_exit_with_2(arguments, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2
    assert "usage: umodels" in capsys.readouterr().err


@pytest.mark.backend_independent
def test_every_subcommand_has_help(capsys):
    for command in ("list", "train", "evaluate", "predict", "export", "demo"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: umodels {command}" in capsys.readouterr().out


@pytest.mark.backend_independent
@pytest.mark.parametrize("arguments,message", [
    (["train", "--model", "unetz", "--data", "shapes"], "Did you mean 'unet'"),
    (["train", "--data", "/no/such/dir"], "neither a folder nor a generated dataset"),
    (["train", "--loss", "not_a_loss"], "unknown loss"),
    (["evaluate", "/no/model.keras"], "does not exist"),
    (["predict", "/no/model.keras", "x.png", "--output", "out"], "does not exist"),
    (["train", "--resume", "--output", "/no/such/run"], "nothing to resume"),
    (["train", "--model", "ladder"], "trains segmentation and recurrent models"),
])
def test_bad_input_errors_name_the_problem(arguments, message, capsys):
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert message in error and error.startswith(f"umodels {arguments[0]}: error:")


@pytest.mark.pipeline
def test_data_errors_name_the_file(tmp_path, capsys):
    root = tmp_path / "bad"
    write_folder(root, n=4, size=32)
    bad = np.zeros((32, 32), np.uint8)
    bad[3, 3] = 9
    Image.fromarray(bad).save(root / "masks" / "1.png")
    assert main(TRAIN + ["--data", str(root), "--n-classes", "4", "--output", str(tmp_path / "run")]) == 2
    assert "masks/1.png has label 9" in capsys.readouterr().err
    (root / "masks" / "2.png").rename(root / "masks" / "two.png")
    assert main(TRAIN + ["--data", str(root), "--output", str(tmp_path / "run")]) == 2
    assert "two.png" in capsys.readouterr().err
    not_a_model = tmp_path / "model.keras"
    not_a_model.write_text("not a zip")
    assert main(["evaluate", str(not_a_model), "--data", "shapes"]) == 2
    assert "is not a Keras model file" in capsys.readouterr().err


@pytest.mark.backend_independent
def test_existing_run_needs_resume_or_overwrite(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.keras").write_bytes(b"x")
    assert main(TRAIN + ["--data", "shapes", "--output", str(run)]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.backend_independent
def test_installed_entry_point_runs():
    executable = Path(sys.executable).with_name("umodels")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "universal_models.cli"]
    completed = subprocess.run(command + ["list", "datasets"], capture_output=True, text=True, timeout=300,
                               env={**os.environ})
    assert completed.returncode == 0, completed.stderr
    assert "moving_shapes" in completed.stdout
    completed = subprocess.run(command + ["train", "--epochs", "-3"], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2 and "positive integer" in completed.stderr


@pytest.mark.backend_independent
def test_parser_reads_sizes_options_and_splits():
    args = build_parser().parse_args(["train", "--patch-size", "48x64", "--option", "dropout=0.5", "--option",
                                      "upsampling=bilinear", "--option", "batch_norm=false", "--val-split", "5"])
    assert args.patch_size == [48, 64] and args.val_split == 5
    assert dict(args.option) == {"dropout": 0.5, "upsampling": "bilinear", "batch_norm": False}
    assert args.precision == "float32"
    assert _train_config(build_parser().parse_args(["train", "--precision", "bfloat16"])).precision == "bfloat16"


@pytest.mark.backend_independent
def test_parser_reads_channels_and_the_threshold_mask_mode():
    from universal_models.cli import _train_config

    args = build_parser().parse_args(["train", "--channels", "3", "--mask-mode", "threshold"])
    config = _train_config(args)
    assert (config.channels, config.mask_mode) == (3, "threshold")
    assert build_parser().parse_args(["train"]).channels is None


@pytest.mark.pipeline
def test_train_chooses_the_channels_of_a_mixed_folder(tmp_path, capsys):
    write_folder(tmp_path / "data", n=5, size=32, binary=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "data" / "images" / "1.png")
    run = tmp_path / "run"
    common = TRAIN + ["--data", str(tmp_path / "data"), "--val-split", "1", "--epochs", "1", "--output", str(run)]
    assert main(common) == 2
    assert "--channels 1" in capsys.readouterr().err
    assert main(common + ["--channels", "3"]) == 0
    assert json.loads((run / "config.json").read_text())["channels"] == 3
    from universal_models import load_model

    assert load_model(run / "best.keras").input_shape[-1] == 3
    assert main(["evaluate", str(run / "best.keras"), "--data", str(tmp_path / "data"), "--tile-size", "32"]) == 0


@pytest.mark.backend_independent
def test_demo_recipe_is_the_umodels_train_command_it_prints():
    """The demo's settings are reachable through `umodels train` (the command docs/demo.md gives)."""
    from universal_models.cli import DEMO_SETTINGS, _train_config, build_parser, demo_train_arguments
    from universal_models.training import TrainConfig, default_loss

    demo = TrainConfig(**DEMO_SETTINGS, loss=default_loss(), output="umodels-demo")
    demo.validate()
    assert demo.model_options["bn_momentum"] == 0.9
    parsed = _train_config(build_parser().parse_args(demo_train_arguments(demo)))
    assert parsed.patch == demo.patch  # [64, 64] from the command line, 64 in the settings
    parsed.patch_size = demo.patch_size
    assert parsed.to_json() == demo.to_json()


def test_demo_recipe_trains_a_few_steps_with_its_batch_norm_momentum(tmp_path):
    from universal_models.cli import DEMO_SETTINGS
    from universal_models.training import TrainConfig, train

    settings = {**DEMO_SETTINGS, "n_samples": 12, "val_split": 2, "epochs": 1, "steps_per_epoch": 2}
    result = train(TrainConfig(**settings, output=str(tmp_path / "run")), verbose=0, evaluate=False)
    momenta = {layer.momentum for layer in result.model.layers
               if "BatchNormalization" in type(layer).__name__}
    assert momenta == {DEMO_SETTINGS["model_options"]["bn_momentum"]}
    assert len(result.history) == 1 and result.history[0]["loss"] > 0
