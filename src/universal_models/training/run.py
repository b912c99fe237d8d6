"""Train a segmentation model with checkpoints, exact resume, logs, plots and scores.

:func:`train` is what ``umodels train`` runs. A run lives in one folder::

    run/
      config.json        every setting of the run (what --resume reads back)
      last.keras         model + optimizer state + training state, after every epoch
      best.keras         the model of the best epoch so far (by ``monitor``)
      log.csv            one row per epoch
      curves.png         training curves                      (at the end)
      predictions.png    image | truth | prediction overlays  (at the end)
      metrics.json       Dice, IoU per class, mean IoU, pixel accuracy of the
                         best model on the full-size validation images (at the end)

Checkpoints are written atomically (temporary file in the same folder, fsync,
``os.replace``), so a run killed at any moment leaves the previous complete
checkpoint. ``last.keras`` also carries the training state (next epoch, best
score, history, the random-number states of the model's layers and of the
backend) as an extra
``universal_models_state.json`` member of its zip archive, which Keras ignores
when it loads the model. Data order, patch positions and augmentation are a
pure function of ``(seed, epoch, batch)``, so ``resume=True`` continues exactly
where the last checkpoint stopped: on the same backend, an interrupted and
resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from ..data.generated import GENERATED_DATASETS
from ..data.pipeline import PatchDataset, TileDataset
from ..inference.loading import load_model
from ..registry import get_model, list_models
from .checkpoint import (
    _global_rng_state,
    _restore_global_rng_state,
    _restore_seed_states,
    _seed_states,
    read_checkpoint_state,
    save_checkpoint,
    seed_everything,
)
from .config import (
    CONFIG_FILE,
    PRECISIONS,
    TrainConfig,
    _metrics,
    option_name,
    resolve_loss,
    resume_config,
)
from .data import DataSplit, _augmentation, load_data
from .folder import (
    RunLock,
    atomic_write_text,
    check_writable_folder,
    remove_run_files,
    run_files,
    stale_temporary_files,
)
from .preparation import prepare_training
from .report import _json_default, finish_run, write_log


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    output: Path
    model: keras.Model
    history: list[dict]
    metrics: dict | None
    stopped_by_time_limit: bool = False
    #: a resumed run that had trained all its epochs (and been evaluated): nothing was done
    already_complete: bool = False


# -- model --------------------------------------------------------------------------------
def _optimizer(config: TrainConfig, total_steps: int) -> keras.optimizers.Optimizer:
    learning_rate: Any = config.learning_rate
    if config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=max(total_steps, 1),
                                                               alpha=0.01)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=config.weight_decay or None)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(learning_rate, weight_decay=config.weight_decay or 0.004)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, weight_decay=config.weight_decay or None)
    return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True, weight_decay=config.weight_decay or None)


def build_model(config: TrainConfig, data: DataSplit) -> keras.Model:
    """The run's model, compiled (any input size where the model allows it)."""
    options = dict(config.model_options)
    kinds = {info.name: info.kind for info in list_models()}
    if kinds.get(config.model.strip().lower()) not in ("segmentation", "recurrent"):
        raise ValueError(
            f"model {config.model!r} is a {kinds.get(config.model.strip().lower())} model; `umodels train` trains "
            "segmentation and recurrent models (see `umodels list`). Train the Ladder network with its own "
            "fit() as described in its docstring."
        )
    try:
        model, _, _ = get_model(config.model, None, None, data.channels, data.n_classes, **options)
    except (ValueError, TypeError) as error:
        if "Unknown option" in str(error) or "Unknown model" in str(error):
            raise
        # Models that need a fixed input size get the patch size.
        height, width = config.patch
        model, _, _ = get_model(config.model, height, width, data.channels, data.n_classes, **options)
    input_rank = len(model.input_shape)
    if data.sequence != (input_rank == 5):
        kind = "sequences (batch, time, height, width, channels)" if input_rank == 5 else "single images"
        given = "sequences" if data.sequence else "single images"
        raise ValueError(
            f"model {config.model!r} takes {kind} but the data {config.data!r} holds {given}; use a recurrent model "
            "(e.g. lstm_unet) with moving_shapes and a segmentation model with images."
        )
    return model


def non_finite_weights(model: keras.Model) -> str | None:
    """``None`` if every weight of ``model`` (trainable or not: batch-norm statistics too) is finite, else
    what is not (how many values, the first variable)."""
    count, first = 0, None
    for variable in model.weights:
        values = np.asarray(keras.ops.convert_to_numpy(variable))
        if not np.issubdtype(values.dtype, np.floating):
            continue
        bad = int(values.size - np.count_nonzero(np.isfinite(values)))
        if bad:
            count += bad
            first = first or variable.path
    if not count:
        return None
    total = sum(int(np.prod(variable.shape)) for variable in model.weights)
    return f"{count:,} of {total:,} weight values became NaN or infinite (the first in {first})"


class _RunCallback(keras.callbacks.Callback):
    """Per epoch: keep the data epoch in step, checkpoint atomically, write the log, watch the time."""

    def __init__(self, folder: Path, train_data: PatchDataset, state: dict, monitor: str,
                 time_limit: float | None):
        super().__init__()
        self.folder = folder
        self.train_data = train_data
        self.state = state
        self.monitor = monitor
        self.time_limit = time_limit
        self.mode = "max" if any(key in monitor for key in ("iou", "dice", "accuracy")) else "min"
        self.started = time.monotonic()
        self.epoch_started = self.started
        self.epoch_times: list[float] = []
        self.stopped_by_time_limit = False
        self.pending_rng = state.get("global_rng") if state.get("history") else None
        self.diverged: str | None = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = (f"the training loss became {float(loss)} in epoch {self.state['epoch'] + 1}, "
                             f"batch {batch + 1}")
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self.train_data.epoch = epoch  # batches are a function of (seed, epoch, index)
        if self.pending_rng is not None:
            # Restored here, not before fit(): fit's first steps (building the
            # train function) draw from the global generators.
            _restore_global_rng_state(self.pending_rng)
            self.pending_rng = None
        self.epoch_started = time.monotonic()

    def _improved(self, value: float | None) -> bool:
        if value is None or not math.isfinite(value):
            return False
        best = self.state.get("best")
        return best is None or (value < best if self.mode == "min" else value > best)

    def on_epoch_end(self, epoch, logs=None):
        if self.diverged:  # never overwrite the last good checkpoint with NaN weights
            return
        logs = {key: float(value) for key, value in (logs or {}).items()}
        # Before any checkpoint: a loss can stay finite while the weights are not (Dice of an all-NaN
        # prediction is 0), so the weights and every logged value are checked too.
        problem = non_finite_weights(self.model)
        bad_logs = sorted(key for key, value in logs.items() if not math.isfinite(value))
        if problem or bad_logs:
            what = problem or f"the logged {', '.join(bad_logs)} became non-finite"
            self.diverged = f"{what} in epoch {epoch + 1}"
            self.model.stop_training = True
            return
        if self.monitor not in logs:
            raise ValueError(f"monitor {self.monitor!r} is not logged; logged quantities: {sorted(logs)}.")
        learning_rate = self.model.optimizer.learning_rate
        row = {"epoch": epoch, **logs, "learning_rate": float(keras.ops.convert_to_numpy(learning_rate)),
               "time": round(time.monotonic() - self.epoch_started, 3)}
        self.state["history"].append(row)
        self.state["epoch"] = epoch + 1
        if self._improved(logs[self.monitor]):
            self.state["best"] = logs[self.monitor]
            self.state["best_epoch"] = epoch
            save_checkpoint(self.model, self.folder / "best.keras", {"epoch": epoch + 1, "monitor": self.monitor,
                                                                     "value": logs[self.monitor]})
        self.state["seed_states"] = _seed_states(self.model)
        self.state["global_rng"] = _global_rng_state()
        save_checkpoint(self.model, self.folder / "last.keras", self.state)
        write_log(self.folder / "log.csv", self.state["history"])
        self.epoch_times.append(time.monotonic() - self.epoch_started)
        if self.time_limit is not None:
            elapsed = time.monotonic() - self.started
            if elapsed + float(np.mean(self.epoch_times)) > self.time_limit * 60:
                self.stopped_by_time_limit = True
                self.model.stop_training = True


def _check_resume_data(folder: Path, config: TrainConfig) -> None:
    for name in ("data", "val_data"):
        value = getattr(config, name)
        if value is not None and value not in GENERATED_DATASETS and not Path(value).exists():
            raise FileNotFoundError(
                f"the data folder of the run in {folder} is gone: {option_name(name)} {value} does not "
                "exist. If it "
                f"moved, resume with its new place: umodels train --resume --output {folder} "
                f"{option_name(name)} NEW_FOLDER (a resume may change {option_name(name)})."
            )


def _check_fresh_folder(folder: Path, overwrite: bool) -> None:
    present = run_files(folder) if folder.is_dir() else []
    if present and not overwrite:
        resumable = (folder / "last.keras").exists()
        hint = "Continue it with --resume, choose" if resumable else "Choose"
        raise FileExistsError(
            f"{folder} already holds a training run ({', '.join(present)}). {hint} another --output, or pass "
            "--overwrite to replace those files (other files in the folder are kept)."
        )


def _restores_dtype_policy(function):
    """Run ``function`` and set Keras' global dtype policy back to what it was, whatever happens."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        previous = keras.config.dtype_policy()
        try:
            return function(*args, **kwargs)
        finally:
            keras.config.set_dtype_policy(previous)

    return wrapper


def _check_resumed_model(folder: Path, model: keras.Model, data: DataSplit) -> None:
    channels, outputs = model.input_shape[-1], max(model.output_shape[-1], 2)
    if data.channels != channels or data.n_classes > outputs:
        raise ValueError(
            f"the data of the resumed run has {data.channels} channel(s) and {data.n_classes} classes, "
            "but the model "
            f"in {folder / 'last.keras'} takes {channels} channel(s) and predicts {outputs} classes; give "
            "the run's "
            "own data (--data) to resume it."
        )


@_restores_dtype_policy
def train(config: TrainConfig, *, resume: bool = False, overwrite: bool = False, verbose: int | str = "auto",
          evaluate: bool = True) -> TrainResult:
    """Train a model as configured; write checkpoints, log, plots and scores.

    Every setting is checked first (model, options, loss, monitor, tiles, the data and every
    mask, the output folder); only then is the run folder made, locked (:class:`RunLock`: one
    process per folder) and, with ``overwrite``, cleared of umodels' own files (:data:`RUN_FILES`;
    no other file is touched).

    Args:
        config: the settings (see :class:`TrainConfig`). With ``resume``, the run's own settings:
            they must equal the saved ``config.json`` except for :data:`RESUME_CHANGES`;
            :func:`resume_config` gives them (``resume_config(folder, {"epochs": 20})``).
        resume: continue the run in ``config.output`` from its ``last.keras``. A run that has
            trained all its epochs is not trained again (``TrainResult.already_complete``); its
            final evaluation is made if it is missing.
        overwrite: start over in a folder that already holds a run.
        verbose: Keras' ``fit`` verbosity (``"auto"``: a progress bar).
        evaluate: at the end, score the best model on the full-size
            validation images and draw the plots.

    Returns:
        A :class:`TrainResult` (run folder, trained model, history, metrics).

    Raises:
        ValueError / FileNotFoundError / FileExistsError: bad settings or
            data (with what to change), a run folder in use by another process.
        OSError: an output folder that cannot be written (``PermissionError``, ``NotADirectoryError``).

    Example:
        >>> config = TrainConfig(model="unet_shallow", data="shapes", epochs=3, output="runs/shapes")
        >>> result = train(config)  # doctest: +SKIP
        >>> result.metrics["mean_iou"]  # doctest: +SKIP
    """
    folder = Path(config.output)
    # -- check phase: nothing is written, deleted or trained until every check has passed
    if resume and overwrite:
        raise ValueError("--resume continues the run in --output and --overwrite replaces it; choose one.")
    check_writable_folder(folder)
    if resume:
        given = {item.name: getattr(config, item.name) for item in dataclasses.fields(TrainConfig)}
        config = resume_config(folder, given)
        _check_resume_data(folder, config)
    else:
        _check_fresh_folder(folder, overwrite)
    config.validate()
    seed_everything(config.seed, config.deterministic)
    keras.config.set_dtype_policy(PRECISIONS[config.precision])  # models are built and loaded under it
    if config.distributed:
        from .distributed import data_parallel

        data_parallel(batch_size=config.batch_size)  # before the model is built or loaded
    data = load_data(config)  # reads every mask: bad data fails here
    if resume:
        state = read_checkpoint_state(folder / "last.keras") or {}
        if "epoch" not in state:
            raise ValueError(f"{folder / 'last.keras'} has no training state; it was not written by `umodels train`.")
        initial_epoch = int(state["epoch"])
        if config.epochs < initial_epoch:
            raise ValueError(f"--epochs {config.epochs} is fewer than the {initial_epoch} epochs the run "
                             f"in {folder} "
                             "has trained; give more epochs, or leave --epochs out to resume to the run's "
                             "own.")
        model = load_model(folder / "last.keras")
        _check_resumed_model(folder, model, data)
        _restore_seed_states(model, state.get("seed_states", []))
    else:
        model = build_model(config, data)  # checks the options
        state = {"epoch": 0, "best": None, "best_epoch": None, "history": []}
        initial_epoch = 0
    # -- every check passed: the folder is made, locked, and (with --overwrite) cleared of umodels' files
    folder.mkdir(parents=True, exist_ok=True)
    with RunLock(folder):
        for stale in stale_temporary_files(folder):  # half-written files of a killed run (never renamed)
            stale.unlink()
        if resume:
            if initial_epoch >= config.epochs and (folder / "metrics.json").exists():
                return TrainResult(folder, model, state["history"], None, already_complete=True)
        else:
            if overwrite:
                remove_run_files(folder)
        atomic_write_text(folder / CONFIG_FILE, json.dumps(config.to_json(), indent=2, default=_json_default))
        return _fit(folder, config, data, model, state, initial_epoch, resume, verbose, evaluate)


def _fit(folder, config, data, model, state, initial_epoch, resume, verbose, evaluate) -> TrainResult:
    complete = initial_epoch >= config.epochs
    n_outputs = model.output_shape[-1]
    train_data = PatchDataset(
        data.train, batch_size=config.batch_size, patch_size=config.patch, steps_per_epoch=config.steps_per_epoch,
        augmentation=_augmentation(config), seed=config.seed, epoch=initial_epoch, n_output_channels=n_outputs,
        workers=config.workers, use_multiprocessing=config.use_multiprocessing,
    )
    validation_data = TileDataset(data.validation, batch_size=config.batch_size, patch_size=config.patch,
                                  n_output_channels=n_outputs)
    if not resume:
        model.compile(optimizer=_optimizer(config, config.epochs * len(train_data)), loss=resolve_loss(config.loss),
                      metrics=_metrics(max(n_outputs, 1)))
    if state["history"]:  # the log may lag the checkpoint by one epoch after a kill: rewrite it
        write_log(folder / "log.csv", state["history"])
    callback = _RunCallback(folder, train_data, state, config.monitor, config.time_limit)
    if not complete:
        # Optimizer and metric variables now, not inside the first traced step (TensorFlow traces it twice
        # then).
        prepare_training(model, *train_data[0][:2])
        try:
            model.fit(train_data, validation_data=validation_data, epochs=config.epochs, initial_epoch=initial_epoch,
                      callbacks=[callback], verbose=verbose, shuffle=False)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(
                f"training interrupted; the last complete epoch is in {folder / 'last.keras'}. "
                f"Continue with: umodels train --resume --output {folder}"
            ) from None
    if callback.diverged:
        kept = (f"{folder / 'last.keras'} keeps epoch {state['epoch']}, the last with finite weights"
                if state["history"] else "no checkpoint was written")
        raise ValueError(
            f"training diverged: {callback.diverged}; {kept}. Lower --learning-rate, check the data for extreme "
            "values and the masks for labels outside [0, n_classes) (they make the loss NaN on "
            "accelerators), or "
            "use a loss with from_logits=True; then resume (--resume) or start over (--overwrite)."
        )
    metrics = finish_run(folder, config, data) if evaluate else None
    return TrainResult(folder, model, state["history"], metrics, callback.stopped_by_time_limit)
