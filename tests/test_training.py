"""Training runs: checkpoints, exact resume, logs, plots, scores; tiled inference and evaluation."""

from __future__ import annotations

import csv
import json
import zipfile

import keras
import numpy as np
import pytest

from tests.helpers import to_numpy
from universal_models.inference import (
    blend_window,
    keras_predictor,
    labels_from_probabilities,
    predict_images,
    predict_tiled,
)
from universal_models.inference.evaluation import confusion_matrix, scores_from_confusion
from universal_models.training import (
    STATE_MEMBER,
    TrainConfig,
    read_checkpoint_state,
    resume_config,
    save_checkpoint,
    train,
)

TINY = dict(model="testnet", model_options={"base_filters": 4}, data="shapes", n_samples=20, image_size=32,
            patch_size=32, batch_size=8, val_split=4, steps_per_epoch=2, rotation=10.0, seed=5,
            loss="sparse_categorical_crossentropy")


def _config(tmp_path, name="run", **changes) -> TrainConfig:
    return TrainConfig(**{**TINY, "output": str(tmp_path / name), **changes})


def _weights(model) -> list[np.ndarray]:
    return [to_numpy(weight) for weight in model.weights]


@pytest.mark.pipeline
def test_run_writes_checkpoints_log_plots_and_metrics(tmp_path):
    result = train(_config(tmp_path, epochs=2), verbose=0)
    folder = result.output
    for name in ("config.json", "best.keras", "last.keras", "log.csv", "curves.png", "predictions.png",
                 "metrics.json"):
        assert (folder / name).is_file(), name
    assert not [path for path in folder.iterdir() if "tmp" in path.name]  # no temporary files left
    rows = list(csv.DictReader((folder / "log.csv").open()))
    assert [row["epoch"] for row in rows] == ["0", "1"] and "val_loss" in rows[0]
    metrics = json.loads((folder / "metrics.json").read_text())
    assert len(metrics["per_class"]) == 4 and 0.0 <= metrics["pixel_accuracy"] <= 1.0
    assert metrics["n_images"] == 4 and metrics["per_class"][1]["name"] == "circle"
    state = read_checkpoint_state(folder / "last.keras")
    assert state["epoch"] == 2 and len(state["history"]) == 2
    loaded = keras.saving.load_model(folder / "last.keras", safe_mode=True)  # the extra member is ignored
    assert int(keras.ops.convert_to_numpy(loaded.optimizer.iterations)) == 4  # optimizer state kept


def test_resumed_run_ends_with_the_same_weights(tmp_path):
    # The reliability suite kills runs with SIGKILL; here: stop after epoch 1,
    # resume to 3 epochs, compare with 3 uninterrupted epochs (dropout on, so
    # the random-generator states must be restored too). Equal histories also
    # show that the same seed repeats the same losses.
    options = {"model": "unet", "model_options": {"base_filters": 4, "depth": 2, "dropout": 0.3}}
    straight = train(_config(tmp_path, "straight", epochs=3, **options), verbose=0, evaluate=False)
    train(_config(tmp_path, "resumed", epochs=1, **options), verbose=0, evaluate=False)
    resumed = train(_config(tmp_path, "resumed", epochs=3, **options), resume=True, verbose=0, evaluate=False)
    for expected, found in zip(_weights(straight.model), _weights(resumed.model)):
        np.testing.assert_array_equal(found, expected)
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in straight.history]
    rows = list(csv.DictReader((tmp_path / "resumed" / "log.csv").open()))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]  # appended, no duplicate rows


@pytest.mark.parametrize("precision", [
    "bfloat16",
    # float16 trains on JAX and TensorFlow CPUs too (tried by hand); on torch only here, for the suite's time
    pytest.param("float16", marks=pytest.mark.skipif(keras.config.backend() != "torch", reason="suite time")),
])
def test_mixed_precision_run_is_saved_and_resumes_exactly(tmp_path, precision):
    """``precision`` trains under Keras' mixed policy (float16 with loss scaling), is saved in config.json,
    and a resumed run (given no precision: the saved one applies) ends with the uninterrupted run's weights."""
    straight = train(_config(tmp_path, "straight", epochs=2, precision=precision), verbose=0, evaluate=False)
    assert keras.config.dtype_policy().name == "float32"  # the run's policy does not outlive it
    train(_config(tmp_path, "resumed", epochs=1, precision=precision), verbose=0, evaluate=False)
    config = resume_config(tmp_path / "resumed", {"epochs": 2})
    resumed = train(config, resume=True, verbose=0, evaluate=False)
    assert json.loads((tmp_path / "resumed" / "config.json").read_text())["precision"] == precision
    for result in (straight, resumed):
        assert result.model.get_layer("encoder1_1_conv").dtype_policy.name == f"mixed_{precision}"
        assert (type(result.model.optimizer).__name__ == "LossScaleOptimizer") is (precision == "float16")
    for expected, found in zip(_weights(straight.model), _weights(resumed.model)):
        assert found.dtype == np.float32  # weights stay float32
        np.testing.assert_array_equal(found, expected)
    assert [row["loss"] for row in resumed.history] == [row["loss"] for row in straight.history]


@pytest.mark.backend_independent
def test_checkpoint_is_replaced_atomically(tmp_path, monkeypatch):
    model, _, _ = __import__("universal_models").get_model("testnet", 16, 16, 1, 2, base_filters=2)
    path = save_checkpoint(model, tmp_path / "last.keras", {"epoch": 1})
    before = path.read_bytes()

    def broken_save(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(model, path, {"epoch": 2})
    assert path.read_bytes() == before  # the old checkpoint is intact
    assert sorted(item.name for item in tmp_path.iterdir()) == ["last.keras"]
    with zipfile.ZipFile(path) as archive:
        assert STATE_MEMBER in archive.namelist()


@pytest.mark.backend_independent
def test_run_folder_rules(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.keras").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="--resume"):
        train(_config(tmp_path, epochs=1), verbose=0)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(_config(tmp_path, "empty", epochs=1), resume=True, verbose=0)


@pytest.mark.backend_independent
@pytest.mark.parametrize("changes,message", [
    (dict(model="unett"), "Did you mean 'unet'"),
    (dict(loss="no_such_loss"), "unknown loss"),
    (dict(epochs=0), "epochs must be"),
    (dict(data="/no/such/folder"), "neither a folder nor a generated dataset"),
    (dict(patch_size=[0]), "patch_size"),
    (dict(optimizer="adamax"), "optimizer must be"),
    (dict(precision="mixed_bfloat16"), "precision must be one of"),
])
def test_bad_settings(tmp_path, changes, message):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        _config(tmp_path, **changes).validate()


@pytest.mark.pipeline
def test_time_limit_stops_after_a_complete_epoch(tmp_path):
    result = train(_config(tmp_path, epochs=50, time_limit=0.001), verbose=0, evaluate=False)
    assert result.stopped_by_time_limit and len(result.history) == 1


# -- inference and scores --------------------------------------------------------------------------
def _pointwise_model(channels=2, classes=3):
    inputs = keras.Input((None, None, channels))
    outputs = keras.layers.Conv2D(classes, 1, activation="softmax")(inputs)
    return keras.Model(inputs, outputs)


def test_tiled_prediction_equals_whole_image_for_a_pointwise_model():
    model = _pointwise_model()
    image = np.random.default_rng(0).random((70, 53, 2)).astype("float32")
    whole = keras.ops.convert_to_numpy(model(image[None]))[0]
    for tile, overlap, fit in ((32, 8, False), (16, 0, False), (128, 16, False), (128, 16, True), (64, 8, True)):
        tiled = predict_tiled(keras_predictor(model), image, tile_size=tile, overlap=overlap, batch_size=3,
                              fit_to_image=fit)
        np.testing.assert_allclose(tiled, whole, atol=1e-5)
    calls = []
    predict_tiled(lambda tiles: calls.append(tiles.shape) or model.predict_on_batch(tiles), image, tile_size=128,
                  overlap=16, batch_size=4, fit_to_image=True)
    assert calls == [(1, 70, 53, 2)]  # one tile the image's size, no padded tiles in the batch
    sequence = np.stack([image, image[::-1, ::-1]])
    assert predict_tiled(keras_predictor(_seq_model()), sequence, tile_size=32, overlap=4).shape == (2, 70, 53, 1)


@pytest.mark.backend_independent
def test_many_images_share_model_calls_and_match_one_at_a_time():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(2, 3)).astype("float32")

    def pointwise(tiles):  # a per-pixel "model" in numpy: any batching gives the same numbers
        calls.append(tiles.shape)
        logits = tiles @ weights
        return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)

    same = [rng.random((20, 24, 2)).astype("float32") for _ in range(5)]
    mixed = same[:2] + [rng.random((30, 17, 2)).astype("float32")] + same[2:]
    for images, fit, tile, batch, expected_calls in (
        (same, False, 32, 4, [(4, 32, 32, 2)] * 2),  # 5 one-tile images, 4 per call (the last padded)
        (same, True, 32, 4, [(4, 20, 24, 2), (1, 20, 24, 2)]),  # any-size model: no padded tiles
        (mixed, True, 32, 4, [(2, 20, 24, 2), (1, 30, 17, 2), (3, 20, 24, 2)]),  # a call holds one tile shape
        (same[:2], False, 16, 3, [(3, 16, 16, 2)] * 3),  # 4 tiles per image: calls span images
    ):
        calls = []
        streamed = list(predict_images(pointwise, iter(images), tile_size=tile, overlap=4, batch_size=batch,
                                       fit_to_image=fit))
        assert calls == expected_calls
        assert len(streamed) == len(images)
        for image, probabilities in zip(images, streamed):
            calls = []
            alone = predict_tiled(pointwise, image, tile_size=tile, overlap=4, batch_size=batch, fit_to_image=fit)
            np.testing.assert_allclose(probabilities, alone, rtol=1e-6)


@pytest.mark.backend_independent
def test_images_read_before_a_bad_one_are_predicted_before_its_error():
    def images():
        yield np.zeros((8, 8, 1), "float32")
        yield np.ones((8, 8, 1), "float32")
        raise ValueError("image 3 is damaged")

    results = []
    with pytest.raises(ValueError, match="image 3 is damaged"):
        for probabilities in predict_images(lambda tiles: tiles, images(), tile_size=8, overlap=0, batch_size=4):
            results.append(probabilities)
    assert [float(result.mean()) for result in results] == [0.0, 1.0]
    with pytest.raises(ValueError, match="must be"):
        list(predict_images(lambda tiles: tiles, [np.zeros((8, 8))], tile_size=8, overlap=0))


def _seq_model():
    inputs = keras.Input((2, None, None, 2))
    return keras.Model(inputs, keras.layers.Conv3D(1, 1, activation="sigmoid")(inputs))


@pytest.mark.backend_independent
def test_blending_window_and_label_rules():
    window = blend_window(16, 16, 4)
    assert window.min() > 0 and window[8, 8] == 1.0 and window[0, 0] < window[2, 2]
    assert labels_from_probabilities(np.array([[[0.2], [0.7]]])).tolist() == [[0, 1]]
    assert labels_from_probabilities(np.array([[[0.2, 0.5, 0.3]]])).tolist() == [[1]]
    with pytest.raises(ValueError, match="overlap"):
        predict_tiled(lambda batch: batch, np.zeros((8, 8, 1)), tile_size=8, overlap=8)


@pytest.mark.backend_independent
def test_scores_from_a_confusion_matrix():
    truth = np.array([[0, 0, 1, 1], [2, 2, 2, 0]])
    prediction = np.array([[0, 1, 1, 1], [2, 2, 0, 0]])
    matrix = confusion_matrix(truth, prediction, 4)
    assert matrix.sum() == 8 and matrix[2, 0] == 1
    scores = scores_from_confusion(matrix, ["bg", "a", "b", "never"])
    iou = [entry["iou"] for entry in scores["per_class"]]
    assert iou[:3] == pytest.approx([2 / 4, 2 / 3, 2 / 3]) and iou[3] is None
    assert scores["mean_iou"] == pytest.approx(np.mean([2 / 4, 2 / 3, 2 / 3]))
    assert scores["per_class"][1]["dice"] == pytest.approx(0.8)
    assert scores["pixel_accuracy"] == pytest.approx(6 / 8)
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(truth, prediction, 2)
