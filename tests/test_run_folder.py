"""Run folders of `umodels train`: every setting checked before any work, nothing of a user's or an
earlier run's lost, one process per folder, resume with the run's own settings, non-finite weights
never checkpointed, file-system problems as one-line errors, predict past unreadable images,
recurrent models in export and predict (docs/reliability.md, rows 58 on)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import universal_models as um
from tests.data.folders import write_folder
from universal_models.cli import main
from universal_models.training import read_checkpoint_state
from universal_models.training import run as training
from universal_models.training.folder import LOCK_FILE, RunLock, atomic_write_text

TINY = [
    "train",
    "--model",
    "testnet",
    "--option",
    "base_filters=2",
    "--data",
    "shapes",
    "--n-samples",
    "8",
    "--image-size",
    "32",
    "--patch-size",
    "32",
    "--batch-size",
    "4",
    "--val-split",
    "2",
    "--steps-per-epoch",
    "1",
    "--verbose",
    "0",
    "--loss",
    "sparse_categorical_crossentropy",
    "--seed",
    "3",
]
OLD_RUN = {
    "last.keras": b"old last",
    "best.keras": b"old best",
    "log.csv": b"epoch\n0\n",
    "metrics.json": b"{}",
    "curves.png": b"png",
    "config.json": b"{}",
}
as_root = hasattr(os, "geteuid") and os.geteuid() == 0
needs_permissions = pytest.mark.skipif(as_root, reason="root ignores file permissions")


def _old_run(folder: Path, files=OLD_RUN) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (folder / "my notes.txt").write_text("the user's own file")
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def _contents(folder: Path) -> dict:
    return {path.name: path.read_bytes() for path in folder.iterdir()}


def _error(capsys) -> str:
    error = capsys.readouterr().err
    assert "Traceback" not in error
    return error


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "done"
    assert main(TINY + ["--epochs", "2", "--output", str(run)]) == 0
    return run


# -- checks before any work --------------------------------------------------------------------------
@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "mistake,message",
    [
        (["--model", "unett"], "Did you mean 'unet'"),
        (["--data", "/no/such/folder"], "neither a folder nor a generated dataset"),
        (["--option", "base_filters=a"], "option 'base_filters' of model 'testnet' must be an integer"),
        (["--loss", "dice_los"], "unknown loss"),
        (["--monitor", "val_iou"], "not a logged quantity; choose one of loss, accuracy, mean_iou, val_loss"),
        (["--n-classes", "1"], "at least 2"),
        (["--overlap", "64"], "overlap 64 must be smaller than the evaluation tile size 64"),
        (["--class-names", "a,b"], "2 class names (a, b) for --n-classes 5"),
    ],
)
def test_a_mistake_with_overwrite_deletes_nothing(tmp_path, capsys, mistake, message):
    """Each mistake is an error before any work; with --overwrite the old run and the user's file are kept."""
    run = tmp_path / "run"
    before = _old_run(run)
    extra = ["--n-classes", "5"] if "--class-names" in mistake else []
    assert main(TINY + ["--epochs", "1", "--output", str(run), "--overwrite"] + extra + mistake) == 2
    error = _error(capsys)
    assert message in error and error.count("\n") == 1, error
    assert _contents(run) == before


@pytest.mark.backend_independent
def test_a_bad_mask_with_overwrite_deletes_nothing(tmp_path, capsys):
    write_folder(tmp_path / "data", n=4, size=32)
    bad = np.zeros((32, 32), np.uint8)
    bad[2, 2] = 9
    Image.fromarray(bad).save(tmp_path / "data" / "masks" / "1.png")
    run = tmp_path / "run"
    before = _old_run(run)
    assert (
        main(
            TINY + ["--data", str(tmp_path / "data"), "--n-classes", "4", "--output", str(run), "--overwrite"]
        )
        == 2
    )
    assert "label 9" in _error(capsys)
    assert _contents(run) == before


@pytest.mark.backend_independent
def test_a_folder_with_best_and_metrics_but_no_last_is_not_emptied(tmp_path, capsys):
    """Before: the check looked for last.keras only, and the files of the old run were deleted anyway."""
    run = tmp_path / "run"
    before = _old_run(run, {"best.keras": b"best", "metrics.json": b"{}"})
    assert main(TINY + ["--epochs", "1", "--output", str(run)]) == 2
    error = _error(capsys)
    assert "already holds a training run (best.keras, metrics.json)" in error and "--overwrite" in error
    assert _contents(run) == before


def test_overwrite_replaces_only_umodels_files(tmp_path, capsys):
    run = tmp_path / "run"
    _old_run(run)
    (run / "data.csv").write_text("mine")
    assert main(TINY + ["--epochs", "1", "--output", str(run), "--overwrite"]) == 0
    assert (run / "my notes.txt").read_text() == "the user's own file" and (
        run / "data.csv"
    ).read_text() == "mine"
    assert read_checkpoint_state(run / "last.keras")["epoch"] == 1 and not (run / LOCK_FILE).exists()


# -- one process per folder --------------------------------------------------------------------------
@pytest.mark.backend_independent
def test_a_live_lock_refuses_the_folder_and_names_the_lock_file(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    lock = run / LOCK_FILE
    lock.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))  # this process: alive
    assert main(TINY + ["--epochs", "1", "--output", str(run)]) == 2
    error = _error(capsys)
    assert f"in use by process {os.getpid()}" in error and str(lock) in error
    assert sorted(path.name for path in run.iterdir()) == [LOCK_FILE]  # nothing written


def test_a_stale_lock_of_a_dead_process_is_taken_over_and_the_lock_is_released(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    assert main(TINY + ["--epochs", "1", "--output", str(run)]) == 0
    assert not (run / LOCK_FILE).exists()


@pytest.mark.backend_independent
def test_the_lock_is_exclusive_and_released_on_ctrl_c(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(FileExistsError, match="in use by process"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / LOCK_FILE).exists()
    with pytest.raises(KeyboardInterrupt):
        with RunLock(tmp_path):
            raise KeyboardInterrupt
    assert not (tmp_path / LOCK_FILE).exists()


# -- resume means resume -----------------------------------------------------------------------------
def _interrupt_after_epoch(monkeypatch, epoch: int):
    original = training._RunCallback.on_epoch_end

    def on_epoch_end(self, index, logs=None):
        original(self, index, logs)
        if index + 1 == epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(training._RunCallback, "on_epoch_end", on_epoch_end)


def test_the_printed_resume_command_finishes_the_run_as_an_uninterrupted_one(
    tmp_path, capsys, monkeypatch, finished_run
):
    """A 2-epoch run stopped after epoch 1 (Ctrl-C); the printed command resumes it to 2 (before: to the
    parser's default of 10), with the uninterrupted run's weights."""
    run = tmp_path / "run"
    _interrupt_after_epoch(monkeypatch, 1)
    assert main(TINY + ["--epochs", "2", "--output", str(run)]) == 130
    error = capsys.readouterr().err
    assert not (run / LOCK_FILE).exists()
    command = error.split("Continue with: ")[1].strip()
    assert command == f"umodels train --resume --output {run}"
    monkeypatch.undo()
    assert main(shlex.split(command)[1:] + ["--verbose", "0"]) == 0
    assert read_checkpoint_state(run / "last.keras")["epoch"] == 2
    resumed, straight = um.load_model(run / "last.keras"), um.load_model(finished_run / "last.keras")
    for found, expected in zip(resumed.weights, straight.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(found), keras.ops.convert_to_numpy(expected))


def test_resuming_a_finished_run_says_it_is_complete_and_trains_nothing(tmp_path, capsys, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _contents(run)
    assert main(["train", "--resume", "--output", str(run)]) == 0
    assert "already complete: 2 of 2 epochs" in capsys.readouterr().out
    assert _contents(run) == before


def test_resume_may_extend_the_epochs(tmp_path, capsys, finished_run):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    assert main(["train", "--resume", "--output", str(run), "--epochs", "3", "--verbose", "0"]) == 0
    assert read_checkpoint_state(run / "last.keras")["epoch"] == 3
    assert json.loads((run / "config.json").read_text())["epochs"] == 3  # the next resume goes to 3 as well


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "option,value,saved",
    [
        ("--batch-size", "8", "4"),  # 8 is the parser's default: given explicitly, it still counts
        ("--model", "unet", "'testnet'"),
        ("--learning-rate", "0.001", "0.001"),
        ("--loss", "dice_loss", "'sparse"),
        ("--option", "base_filters=4", "{'base_filters': 2}"),
        ("--patch-size", "64", "[32, 32]"),
    ],
)
def test_resume_with_a_conflicting_option_names_it_with_both_values(
    tmp_path, capsys, finished_run, option, value, saved
):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = _contents(run)
    if option == "--learning-rate":  # equal to the saved value: fine (the run is complete: nothing to do)
        assert main(["train", "--resume", "--output", str(run), option, value]) == 0
        return
    assert main(["train", "--resume", "--output", str(run), option, value]) == 2
    error = _error(capsys)
    assert f"{option} was {saved}" in error and "now" in error and "--epochs" in error
    assert _contents(run) == before


def test_a_moved_data_folder_is_named_with_how_to_resume(tmp_path, capsys):
    write_folder(tmp_path / "data", n=5, size=32, binary=True)
    run = tmp_path / "run"
    common = [arg for arg in TINY if arg != "shapes"]
    common[common.index("--data") + 1 : common.index("--data") + 1] = [str(tmp_path / "data")]
    _interrupt_after_epoch(monkeypatch := pytest.MonkeyPatch(), 1)
    try:
        assert main(common + ["--epochs", "2", "--output", str(run)]) == 130
    finally:
        monkeypatch.undo()
    (tmp_path / "data").rename(tmp_path / "moved")
    assert main(["train", "--resume", "--output", str(run)]) == 2
    error = _error(capsys)
    assert "is gone" in error and f"--data {tmp_path / 'data'} does not exist" in error
    assert f"umodels train --resume --output {run} --data NEW_FOLDER" in error
    assert (
        main(["train", "--resume", "--output", str(run), "--data", str(tmp_path / "moved"), "--verbose", "0"])
        == 0
    )
    assert read_checkpoint_state(run / "last.keras")["epoch"] == 2


# -- non-finite training -----------------------------------------------------------------------------
def test_dice_loss_at_a_huge_learning_rate_stops_without_a_checkpoint(tmp_path, capsys):
    """Before: exit 0, a logged loss of 0.0 and NaN weights in best.keras and last.keras (Dice of NaN
    is 0)."""
    # (with one step per epoch, epoch 1 may still be finite: then its checkpoints are kept, finite)
    run = tmp_path / "run"
    assert (
        main(TINY + ["--epochs", "2", "--loss", "dice_loss", "--learning-rate", "1e30", "--output", str(run)])
        == 2
    )
    error = _error(capsys)
    assert "training diverged" in error and "NaN or infinite" in error and "outside [0, n_classes)" in error
    for name in ("last.keras", "best.keras"):  # whatever was written is from an epoch with finite weights
        if (run / name).exists():
            model = um.load_model(run / name)
            assert all(np.isfinite(keras.ops.convert_to_numpy(weight)).all() for weight in model.weights), (
                name
            )
    assert not (run / "metrics.json").exists()


def test_weights_that_go_non_finite_later_keep_the_last_good_checkpoint(tmp_path, monkeypatch):
    original = training._RunCallback.on_epoch_begin

    def on_epoch_begin(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:  # a learning rate that blows the weights up in the second epoch
            self.model.optimizer.learning_rate.assign(1e30)

    monkeypatch.setattr(training._RunCallback, "on_epoch_begin", on_epoch_begin)
    config = training.TrainConfig(
        model="testnet",
        model_options={"base_filters": 2},
        data="shapes",
        n_samples=8,
        image_size=32,
        patch_size=32,
        batch_size=4,
        val_split=2,
        steps_per_epoch=2,
        epochs=3,
        loss="dice_loss",
        output=str(tmp_path / "run"),
    )
    with pytest.raises(
        ValueError, match="in epoch 2; .*last.keras keeps epoch 1, the last with finite weights"
    ):
        training.train(config, verbose=0)
    for name in ("last.keras", "best.keras"):
        model = um.load_model(tmp_path / "run" / name)
        assert all(np.isfinite(keras.ops.convert_to_numpy(weight)).all() for weight in model.weights), name
    assert read_checkpoint_state(tmp_path / "run" / "last.keras")["epoch"] == 1


# -- atomic writes -----------------------------------------------------------------------------------
def test_a_failed_report_write_keeps_the_previous_file(tmp_path, monkeypatch, finished_run):
    """The final report of a run (metrics.json) is written atomically: a write that fails half-way
    (a full disk, a kill) leaves the previous complete file; before, half a file."""
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    previous = (run / "metrics.json").read_text()
    real = Path.write_text

    def half_then_fail(self, text, *args, **kwargs):
        real(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError):
        training.finish_run(
            run, training.TrainConfig.from_json(json.loads((run / "config.json").read_text()))
        )
    monkeypatch.undo()
    assert (run / "metrics.json").read_text() == previous
    assert not [path.name for path in run.iterdir() if ".tmp" in path.name]
    with pytest.raises(OSError):  # the same for any file written with atomic_write_text
        monkeypatch.setattr(Path, "write_text", half_then_fail)
        atomic_write_text(run / "config.json", "{}")
    monkeypatch.undo()
    assert json.loads((run / "config.json").read_text())["epochs"] == 2


# -- file-system problems ----------------------------------------------------------------------------
@pytest.mark.backend_independent
def test_output_under_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(TINY + ["--output", str(tmp_path / "file" / "run")]) == 2
    error = _error(capsys)
    assert f"{tmp_path / 'file'} is a file, not a folder" in error and error.count("\n") == 1


@needs_permissions
@pytest.mark.backend_independent
def test_a_read_only_folder_for_train_resume_and_predict_is_one_line(tmp_path, capsys, finished_run):
    locked = tmp_path / "locked"
    locked.mkdir()
    run = locked / "run"
    shutil.copytree(finished_run, run)
    model = finished_run / "best.keras"
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "image.png")
    os.chmod(run, 0o555)
    os.chmod(locked, 0o555)
    try:
        cases = [
            (TINY + ["--output", str(locked / "new")], locked),
            (["train", "--resume", "--output", str(run), "--epochs", "3"], run),
            (["predict", str(model), str(tmp_path / "image.png"), "--output", str(locked / "masks")], locked),
        ]
        for arguments, where in cases:
            assert main(arguments) == 2, arguments
            error = _error(capsys)
            assert "not writable" in error and f"chmod u+w {where}" in error and error.count("\n") == 1, error
    finally:
        os.chmod(locked, 0o755)
        os.chmod(run, 0o755)


@pytest.mark.backend_independent
def test_an_os_error_anywhere_is_one_line_naming_the_path(tmp_path, capsys, monkeypatch):
    from universal_models import cli

    def denied(args):
        raise PermissionError(13, "Permission denied", str(tmp_path / "x.png"))

    monkeypatch.setitem(cli._COMMANDS, "list", denied)
    assert main(["list"]) == 2
    assert _error(capsys) == (
        f"umodels list: error: Permission denied: {tmp_path / 'x.png'}; make it writable "
        "(or readable) for this user, or choose another path.\n"
    )


@pytest.mark.backend_independent
def test_evaluate_output_naming_a_folder_fails_before_the_evaluation(
    tmp_path, capsys, monkeypatch, finished_run
):
    from universal_models.training import report

    monkeypatch.setattr(report, "evaluate_model", lambda *args, **kwargs: pytest.fail("evaluated first"))
    assert main(["evaluate", str(finished_run), "--output", str(tmp_path)]) == 2
    assert f"--output {tmp_path} is a folder; give a file path" in _error(capsys)


# -- predict past unreadable images ------------------------------------------------------------------
@pytest.mark.backend_independent
def test_predict_writes_the_readable_images_and_reports_the_others(tmp_path, capsys, finished_run):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a", "c"):
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(images / f"{name}.png")
    (images / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["predict", str(finished_run), str(images), "--output", str(tmp_path / "masks")]) == 1
    assert sorted(path.name for path in (tmp_path / "masks").iterdir()) == ["a.png", "c.png"]
    error = capsys.readouterr().err
    assert "wrote 2 of 3 masks" in error and f"{images / 'b.png'}:" in error


# -- recurrent models in export and predict ----------------------------------------------------------
@pytest.fixture(scope="module")
def recurrent_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recurrent") / "lstm.keras"
    model, _, _ = um.get_model("lstm_shallow", 16, 16, 1, 2, filters=2, lstm_filters=2)
    model.save(path)
    return path


@pytest.mark.backend_independent
def test_export_of_a_recurrent_model_asks_for_frames_and_uses_them(
    tmp_path, capsys, monkeypatch, recurrent_model
):
    from universal_models.inference import export

    assert (
        main(["export", str(recurrent_model), "--format", "onnx", "--output", str(tmp_path / "m.onnx")]) == 2
    )
    assert "give it with --frames N" in _error(capsys)
    shapes = []
    monkeypatch.setattr(
        export, "export_onnx", lambda model, path, **kwargs: shapes.append(kwargs["input_shape"])
    )
    assert (
        main(
            [
                "export",
                str(recurrent_model),
                "--format",
                "onnx",
                "--output",
                str(tmp_path / "m.onnx"),
                "--frames",
                "4",
            ]
        )
        == 0
    )
    assert shapes == [(4, 16, 16, 1)]
    assert (
        main(
            [
                "export",
                str(finished_run_model(tmp_path)),
                "--format",
                "onnx",
                "--output",
                str(tmp_path / "n.onnx"),
                "--frames",
                "4",
                "--input-size",
                "32",
            ]
        )
        == 2
    )
    assert "--frames is for recurrent models" in _error(capsys)


def finished_run_model(tmp_path: Path) -> Path:
    model, _, _ = um.get_model("testnet", None, None, 1, 2, base_filters=2)
    model.save(tmp_path / "testnet.keras")
    return tmp_path / "testnet.keras"


@pytest.mark.backend_independent
def test_predicting_an_image_with_a_recurrent_model_says_what_it_takes(tmp_path, capsys, recurrent_model):
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "frame.png")
    assert (
        main(["predict", str(recurrent_model), str(tmp_path / "frame.png"), "--output", str(tmp_path / "o")])
        == 2
    )
    error = _error(capsys)
    assert "recurrent model: it takes sequences of frames" in error and "predict_tiled" in error
    assert "\x1b[" not in error


@pytest.mark.backend_independent
def test_a_folder_without_write_access_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """The same check as the read-only test above, for a runner that is root (which ignores permissions):
    the folder's access is denied through os.access, which the check asks."""
    from universal_models.training import folder as runfolder

    run = tmp_path / "run"
    before = _old_run(run)
    monkeypatch.setattr(runfolder.os, "access", lambda path, mode: Path(path) != run)
    assert main(TINY + ["--output", str(run), "--overwrite"]) == 2
    error = _error(capsys)
    assert f"--output {run} is not writable; make it writable (chmod u+w {run})" in error
    assert _contents(run) == before
