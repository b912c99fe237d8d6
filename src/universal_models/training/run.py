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

import collections
import csv
import dataclasses
import functools
import json
import math
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np

from ..data.augmentation import PairedAugmentation
from ..data.folder import SegmentationFolder
from ..data.generated import GENERATED_DATASETS, SHAPE_CLASSES
from ..data.pipeline import ArraySource, PatchDataset, TileDataset
from ..inference.evaluation import confusion_matrix, scores_from_confusion
from ..inference.tiled import fixed_input_size, keras_predictor, labels_from_probabilities, predict_images
from ..registry import get_model, list_models
from .preparation import prepare_training
from ..inference.loading import load_model
from .folder import (
    RUN_FILES,
    RunLock,
    atomic_write,
    atomic_write_text,
    check_writable_folder,
    fsync_directory,
    remove_run_files,
    run_files,
    stale_temporary_files,
)

STATE_MEMBER = "universal_models_state.json"
CONFIG_FILE = "config.json"
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "cosine")
#: ``--precision`` -> Keras dtype policy (weights stay float32 under the mixed ones; float16 adds loss scaling)
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
#: the settings a resumed run may change (train longer, a new time budget or data loading, the data's
#: new place); any other setting given for a resume must equal the saved one
RESUME_CHANGES = ("epochs", "time_limit", "workers", "use_multiprocessing", "data", "val_data")


@dataclass
class TrainConfig:
    """Every setting of a training run (saved as ``config.json`` in the run folder).

    Attributes:
        model: registered model name (see ``universal_models.list_models()``).
        model_options: keyword options of the model builder.
        data: a data folder, or a generated dataset: ``"shapes"``,
            ``"particles"``, ``"moving_shapes"``.
        images_dir, masks_dir: sub-folder names of a data folder (detected
            when ``None``).
        val_data: a separate validation folder; when ``None`` the last
            ``val_split`` of ``data`` (natural file order) is held out.
        val_split: fraction in (0, 1) or number of samples for validation.
        n_classes: classes including background; ``None`` infers it (from the
            masks of a folder, or the generated dataset).
        class_names: a name per class for the reports (e.g. ``["membrane",
            "interior"]`` for ISBI 2012).
        mask_mode: ``"auto"``, ``"index"``, ``"binary"`` or ``"threshold"``
            (folder masks; see :mod:`universal_models.data.reading`).
        channels: read every image of a data folder with this many channels
            (1 greyscale, 3 colour; the two are converted into each other);
            ``None``: the count the images share.
        n_samples, image_size, timesteps: size of generated data.
        loss: a loss name Keras can resolve after ``import universal_models``
            (``"cross_entropy"``, ``"ce_dice_loss"``, ``"focal_loss"`` ... or
            any Keras loss).
        optimizer, learning_rate, lr_schedule, weight_decay: the optimiser.
        epochs, batch_size, patch_size, steps_per_epoch: the schedule
            (``steps_per_epoch=None`` covers the training images' area once).
        augment, flips, rotation, brightness, contrast: paired augmentation.
        seed: seed of weights, data order, patches and augmentation.
        monitor: the logged quantity that picks ``best.keras``.
        time_limit: stop (after a completed epoch) before this many minutes
            would be exceeded; ``None`` for no limit.
        workers, use_multiprocessing: data loading parallelism.
        tile_size, overlap: full-size validation inference at the end.
        deterministic: ask the backend for deterministic kernels.
        precision: ``"float32"``, or mixed precision with Keras' policies:
            ``"bfloat16"`` (``mixed_bfloat16``) or ``"float16"`` (``mixed_float16``,
            with loss scaling); weights, optimizer state, batch-norm statistics
            and the output softmax stay float32. Saved with the run, so
            ``--resume`` trains on in the same precision.
        distributed: data-parallel training over every visible device with
            ``keras.distribution.DataParallel`` (JAX backend only; the batch is
            split over the devices; see :mod:`universal_models.training.distributed`).
        output: the run folder.
    """

    model: str = "unet"
    model_options: dict = field(default_factory=dict)
    data: str = "shapes"
    images_dir: str | None = None
    masks_dir: str | None = None
    val_data: str | None = None
    val_split: float = 0.2
    n_classes: int | None = None
    class_names: list | None = None
    mask_mode: str = "auto"
    channels: int | None = None
    n_samples: int = 256
    image_size: int = 64
    timesteps: int = 8
    loss: str = "cross_entropy"
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: int = 8
    patch_size: int | list = 64
    steps_per_epoch: int | None = None
    augment: bool = True
    flips: bool = True
    rotation: float = 15.0
    brightness: float = 0.1
    contrast: float = 0.2
    seed: int = 0
    monitor: str = "val_loss"
    time_limit: float | None = None
    workers: int = 1
    use_multiprocessing: bool = False
    tile_size: int | None = None
    overlap: int | None = None
    deterministic: bool = True
    precision: str = "float32"
    distributed: bool = False
    output: str = "runs/latest"

    def to_json(self) -> dict:
        """The settings as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, values: dict) -> "TrainConfig":
        """Settings from :meth:`to_json` output; unknown keys are an error."""
        known = {item.name for item in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}; known settings: {sorted(known)}.")
        return cls(**values)

    def validate(self) -> None:
        """Check the settings that can be checked before any data is read.

        Raises:
            ValueError: naming the setting, the value, and what is expected.
        """
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "n_samples": self.n_samples,
                    "image_size": self.image_size, "timesteps": self.timesteps, "workers": self.workers}
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("steps_per_epoch", "n_classes", "tile_size", "channels"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, got {self.precision!r}.")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}.")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}.")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be a positive number of minutes, got {self.time_limit!r}.")
        if self.overlap is not None and self.overlap < 0:
            raise ValueError(f"overlap must be >= 0 pixels, got {self.overlap!r}.")
        if self.n_classes == 1:
            raise ValueError(
                "n_classes counts the classes including background, so a segmentation run has at least 2 "
                "(binary "
                "masks: --n-classes 2, or leave it out to infer it from the masks); got 1.")
        names, count = self.class_names, self.n_classes
        if names is not None and count is not None and len(names) != count:
            raise ValueError(
                f"{len(self.class_names)} class names ({', '.join(map(str, self.class_names))}) for "
                f"--n-classes {count}; give one name per class, background first.")
        names = [info.name for info in list_models()]
        if self.model.strip().lower() not in names:
            get_model(self.model, None, None, 1, 2)  # raises the registry's error naming close models
        patch = self.patch_size if isinstance(self.patch_size, (list, tuple)) else [self.patch_size]
        if len(patch) not in (1, 2) or any(isinstance(p, bool) or not isinstance(p, int) or p < 1 for p in patch):
            raise ValueError(f"patch_size must be a positive integer or [height, width], got {self.patch_size!r}.")
        if self.data not in GENERATED_DATASETS and not Path(self.data).exists():
            raise FileNotFoundError(
                f"--data {self.data!r} is neither a folder nor a generated dataset "
                f"({', '.join(GENERATED_DATASETS)})."
            )
        resolve_loss(self.loss)  # fails early on an unknown loss name
        logged = logged_quantities()
        if self.monitor not in logged:
            raise ValueError(f"monitor {self.monitor!r} is not a logged quantity; choose one of "
                             f"{', '.join(logged)} "
                             "(--monitor val_loss, the default, or val_mean_iou).")
        tile, overlap = evaluation_tiles(self)
        if not 0 <= overlap < min(tile):
            raise ValueError(f"overlap {overlap} must be smaller than the evaluation tile size {min(tile)} "
                             f"(--tile-size, default twice the patch size); lower --overlap or raise "
                             "--tile-size.")

    @property
    def patch(self) -> tuple[int, int]:
        """``patch_size`` as ``(height, width)``."""
        if isinstance(self.patch_size, (list, tuple)):
            return (self.patch_size[0], self.patch_size[-1])
        return (self.patch_size, self.patch_size)


@dataclass
class DataSplit:
    """The data of a run: training and validation sources and what they hold."""

    train: Any
    validation: Any
    n_classes: int
    channels: int
    class_names: tuple[str, ...]
    sequence: bool


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


# -- reproducibility ----------------------------------------------------------------
def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, numpy and the backend, and ask for deterministic kernels.

    ``keras.utils.set_random_seed`` seeds Python's, numpy's and the backend's
    generators; with ``deterministic`` the backend's deterministic mode is
    switched on where it has one: ``torch.use_deterministic_algorithms(True,
    warn_only=True)`` on PyTorch (and ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, which
    cuBLAS needs for deterministic results on a GPU, unless it is set), ``tf.config.experimental.enable_op_determinism``
    on TensorFlow (JAX on CPU is deterministic already).

    Example:
        >>> seed_everything(0)
    """
    keras.utils.set_random_seed(int(seed))
    if not deterministic:
        return
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        # cuBLAS is deterministic only with a fixed workspace; read when its first handle is made
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif backend == "tensorflow":
        import tensorflow as tf

        os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
        tf.config.experimental.enable_op_determinism()


def resolve_loss(name: str):
    """The loss named ``name``: a library loss (``"ce_dice_loss"``) or a Keras one.

    Raises:
        ValueError: an unknown name (the message lists the library's losses).
    """
    import universal_models  # noqa: F401  (registers the library's loss names)

    try:
        return keras.losses.get(name)
    except (ValueError, TypeError) as error:
        try:
            from ..losses import LOSS_ALIASES

            ours = ", ".join(sorted(LOSS_ALIASES))
        except ImportError:  # pragma: no cover  (losses not installed)
            ours = "none"
        raise ValueError(
            f"unknown loss {name!r}. Library losses: {ours}; or any Keras loss name such as "
            "'sparse_categorical_crossentropy'."
        ) from error


def default_loss() -> str:
    """``"cross_entropy"`` (the library's) if registered, else Keras' sparse cross-entropy."""
    try:
        resolve_loss("cross_entropy")
        return "cross_entropy"
    except ValueError:
        return "sparse_categorical_crossentropy"


# -- data -----------------------------------------------------------------------------
def load_data(config: TrainConfig) -> DataSplit:
    """Build the training and validation sources of ``config``.

    Raises:
        ValueError / FileNotFoundError: bad folders or files (named), a
            split that leaves nothing for training or validation, labels
            outside ``[0, n_classes)``.
    """
    if config.data in GENERATED_DATASETS:
        return _generated_data(config)
    train = SegmentationFolder(config.data, images_dir=config.images_dir, masks_dir=config.masks_dir,
                               n_classes=config.n_classes, mask_mode=config.mask_mode, channels=config.channels)
    if config.val_data is not None:
        validation = SegmentationFolder(config.val_data, images_dir=config.images_dir, masks_dir=config.masks_dir,
                                        n_classes=config.n_classes, mask_mode=config.mask_mode,
                                        channels=config.channels)
        if validation.channels != train.channels:
            raise ValueError(
                f"the validation images in {config.val_data} have {validation.channels} channel(s) but the training "
                f"images in {config.data} have {train.channels}; choose one count for both with --channels 1 or "
                "--channels 3."
            )
    else:
        train, validation = train.split(config.val_split)
    counts = train.scan()  # checks every training mask, infers n_classes when not given
    validation.n_classes = train.n_classes
    validation.scan()
    n_classes = train.n_classes
    names = train.class_names or (("background", "foreground") if n_classes == 2 else
                                  tuple(f"class {i}" for i in range(n_classes)))
    if config.class_names:
        names = _checked_names(config.class_names, n_classes)
    if counts.size and (counts > 0).sum() < 2:
        raise ValueError(
            f"the training masks in {config.data} contain only class {int(np.argmax(counts))}; "
            "a segmentation model needs at least two classes in its training data."
        )
    return DataSplit(train, validation, n_classes, train.channels, tuple(names), sequence=False)


def _generated_data(config: TrainConfig) -> DataSplit:
    dataset = GENERATED_DATASETS[config.data]
    size = config.image_size
    if dataset.sequence:
        images, masks = dataset.make(config.n_samples, config.timesteps, size, size, seed=config.seed)
    else:
        images, masks = dataset.make(config.n_samples, size, size, seed=config.seed)
    n_classes = config.n_classes or dataset.n_classes
    if config.channels is not None and config.channels != images.shape[-1]:
        raise ValueError(f"--channels {config.channels} applies to data folders; the generated {config.data} data "
                         f"has {images.shape[-1]} channel(s), so leave --channels out.")
    if n_classes < dataset.n_classes:
        raise ValueError(f"the {config.data} data has {dataset.n_classes} classes; n_classes={n_classes} is too few.")
    train, validation = ArraySource(images, masks).split(config.val_split)
    if config.data == "particles":
        names = ("background",) + tuple(f"particle class {i}" for i in range(1, n_classes))
    else:
        names = SHAPE_CLASSES + tuple(f"class {i}" for i in range(len(SHAPE_CLASSES), n_classes))
    if config.class_names:
        names = _checked_names(config.class_names, n_classes)
    return DataSplit(train, validation, n_classes, images.shape[-1], names[:n_classes], dataset.sequence)


def _checked_names(names: Sequence[str], n_classes: int) -> tuple[str, ...]:
    if len(names) != n_classes:
        raise ValueError(f"{len(names)} class names ({', '.join(names)}) for {n_classes} classes; give one name "
                         "per class, background first.")
    return tuple(str(name) for name in names)


def _augmentation(config: TrainConfig) -> PairedAugmentation | None:
    if not config.augment:
        return None
    return PairedAugmentation(flips=config.flips, rotation=config.rotation, brightness=config.brightness,
                              contrast=config.contrast)


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


def logged_quantities() -> list[str]:
    """The quantities ``umodels train`` logs each epoch (what ``monitor`` may name): loss and metrics, on the
    training and the validation data."""
    names = ["loss"] + [metric if isinstance(metric, str) else metric.name for metric in _metrics(2)]
    return names + [f"val_{name}" for name in names]


def _metrics(n_classes: int) -> list:
    try:
        from ..metrics import IoU

        return ["accuracy", IoU(n_classes, name="mean_iou")]
    except ImportError:  # pragma: no cover  (metrics not installed)
        return ["accuracy"]


# -- checkpoints ------------------------------------------------------------------------------
_fsync_directory = fsync_directory


def save_checkpoint(model: keras.Model, path: str | Path, state: dict | None = None) -> Path:
    """Save ``model`` to ``path`` atomically, with an optional training ``state``.

    The model goes to a temporary ``.keras`` file in the same folder; the
    state is added to its zip archive as ``universal_models_state.json``; the
    file is flushed to disk and renamed over ``path``. Whatever happens, the
    file at ``path`` is either the previous complete checkpoint or the new one.

    Example:
        >>> save_checkpoint(model, "run/last.keras", {"epoch": 3})  # doctest: +SKIP
    """
    def write(temporary: Path) -> None:
        model.save(temporary)
        if state is not None:
            with zipfile.ZipFile(temporary, "a") as archive:
                archive.writestr(STATE_MEMBER, json.dumps(state))

    return atomic_write(path, write)


def read_checkpoint_state(path: str | Path) -> dict | None:
    """The training state stored in a checkpoint by :func:`save_checkpoint` (``None`` if absent)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if STATE_MEMBER not in archive.namelist():
                return None
            return json.loads(archive.read(STATE_MEMBER))
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path} is not a readable .keras checkpoint ({error}).") from error


def _seed_generator_variables(model: keras.Model) -> list:
    return [variable for variable in model.variables if "seed_generator_state" in variable.path]


def _seed_states(model: keras.Model) -> list[list]:
    """The states of the model's random generators (dropout ...), which ``model.save`` leaves out.

    In model order: their names get counters (``seed_generator_9``) that differ
    between a built and a loaded model, their order does not.
    """
    return [keras.ops.convert_to_numpy(variable).tolist() for variable in _seed_generator_variables(model)]


def _restore_seed_states(model: keras.Model, states: list[list]) -> None:
    variables = _seed_generator_variables(model)
    if len(states) != len(variables):
        raise ValueError(f"the checkpoint has {len(states)} random-generator states but the model has "
                         f"{len(variables)}; it was written by another model.")
    for variable, value in zip(variables, states):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def _encode_generator_state(state) -> str:
    """A torch generator state (a host uint8 tensor) as base64 text."""
    import base64

    return base64.b64encode(bytes(state.tolist())).decode("ascii")


def _decode_generator_state(text: str):
    import base64

    import torch

    # generator states are host tensors whatever device the generator serves
    return torch.tensor(list(base64.b64decode(text)), dtype=torch.uint8, device="cpu")


def _global_rng_state() -> dict:
    """Global random states that layers without their own seed draw from.

    PyTorch's unseeded dropout uses torch's global generator of the tensor's
    device (the CPU's, or each GPU's); Keras ops called with ``seed=None`` use
    Keras' global ``SeedGenerator``.
    """
    from keras.src.backend.common import global_state

    state: dict = {}
    generator = global_state.get_global_attribute("global_seed_generator")
    if generator is not None:
        state["keras"] = keras.ops.convert_to_numpy(generator.state).tolist()
    if keras.config.backend() == "torch":
        import torch

        state["torch"] = _encode_generator_state(torch.get_rng_state())
        if torch.cuda.is_available():
            state["torch_cuda"] = [_encode_generator_state(value) for value in torch.cuda.get_rng_state_all()]
    return state


def _restore_global_rng_state(state: dict) -> None:
    from keras.src.backend.common import global_state

    if "keras" in state:
        generator = keras.random.SeedGenerator(0)
        generator.state.assign(np.asarray(state["keras"], dtype=generator.state.dtype))
        global_state.set_global_attribute("global_seed_generator", generator)
    if "torch" in state and keras.config.backend() == "torch":
        import torch

        torch.set_rng_state(_decode_generator_state(state["torch"]))
        cuda_states = state.get("torch_cuda") or []
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([_decode_generator_state(value) for value in cuda_states])


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
            self.diverged = f"the training loss became {float(loss)} in epoch {self.state['epoch'] + 1}, batch {batch + 1}"
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


def write_log(path: Path, history: Sequence[dict]) -> None:
    """Write the per-epoch history as CSV (rewritten whole, atomically, from the checkpointed history)."""
    keys: list[str] = []
    for row in history:
        keys += [key for key in row if key not in keys]

    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)

    atomic_write(path, write)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    raise TypeError(f"not JSON serialisable: {value!r}")


# -- the run ---------------------------------------------------------------------------------------
def saved_config(folder: str | Path) -> TrainConfig:
    """The settings saved in the run folder ``folder`` (its ``config.json``).

    Raises:
        FileNotFoundError: the folder holds no run to resume (named, with what to do).
    """
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    if not (folder / "last.keras").is_file() or not config_path.is_file():
        raise FileNotFoundError(
            f"nothing to resume in {folder}: it needs {CONFIG_FILE} and last.keras from an earlier "
            "`umodels train --output` run (a run killed before its first epoch ended has no checkpoint; "
            "start it again without --resume)."
        )
    try:
        values = json.loads(config_path.read_text(encoding="utf-8"))
    except ValueError as error:
        raise ValueError(f"{config_path} is not readable JSON ({error}); it was not written by "
                         "umodels.") from None
    config = TrainConfig.from_json(values)
    config.output = str(folder)
    return config


def _same(name: str, saved, given) -> bool:
    if name == "model":
        return str(saved).strip().lower() == str(given).strip().lower()
    if name == "patch_size":
        def as_pair(value):
            return list(value) * (2 // len(value)) if isinstance(value, (list, tuple)) else [value] * 2

        return as_pair(saved) == as_pair(given)
    if isinstance(saved, (list, tuple)) or isinstance(given, (list, tuple)):
        if saved is None or given is None:
            return saved == given
        return list(saved) == list(given)
    return saved == given


def resume_config(folder: str | Path, changes: dict | None = None) -> TrainConfig:
    """The settings to resume the run in ``folder`` with: its saved ones, with ``changes`` applied.

    ``changes`` maps setting names to values. Those of :data:`RESUME_CHANGES` (``epochs`` to train
    longer, ``time_limit``, ``workers``, ``use_multiprocessing``, and ``data`` / ``val_data`` for
    the run's data at a new place) may differ from the saved values; any other setting must equal
    the saved one: a resumed run is the run that was started, not a new one.

    Raises:
        FileNotFoundError: nothing to resume in ``folder``.
        ValueError: a setting that may not change differs from the saved one (named, with both
            values), or an unknown setting.

    Example:
        >>> config = resume_config("runs/x", {"epochs": 20})  # on to 20 epochs  # doctest: +SKIP
        >>> train(config, resume=True)  # doctest: +SKIP
    """
    config = saved_config(folder)
    known = {item.name for item in dataclasses.fields(TrainConfig)}
    conflicts = []
    for name, value in (changes or {}).items():
        if name not in known:
            raise ValueError(f"unknown training setting {name!r}; known settings: {sorted(known)}.")
        if name == "output":
            continue
        saved = getattr(config, name)
        if name in RESUME_CHANGES:
            setattr(config, name, value)
        elif not _same(name, saved, value):
            conflicts.append((name, saved, value))
    if conflicts:
        listed = "; ".join(f"{option_name(name)} was {saved!r} in the run, now {given!r}"
                           for name, saved, given in conflicts)
        raise ValueError(
            f"resuming {folder} with other settings than the run's: {listed}. A resumed run keeps its "
            "settings "
            f"(only {', '.join(option_name(name) for name in RESUME_CHANGES)} and --verbose may change); "
            "leave "
            "the option out to resume, or start a new run with another --output (or --overwrite)."
        )
    return config


def option_name(setting: str) -> str:
    """The ``umodels train`` option of a :class:`TrainConfig` setting (``batch_size`` -> ``--batch-size``)."""
    return {"model_options": "--option"}.get(setting, "--" + setting.replace("_", "-"))


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
        >>> result = train(TrainConfig(model="unet_shallow", data="shapes", epochs=3, output="runs/shapes"))  # doctest: +SKIP
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


def evaluation_tiles(config: TrainConfig) -> tuple[tuple[int, int], int]:
    """Tile size and overlap for full-size inference: 4x the patch area by default, 1/8 overlap."""
    height, width = config.patch
    tile = (config.tile_size, config.tile_size) if config.tile_size else (2 * height, 2 * width)
    overlap = config.overlap if config.overlap is not None else min(tile) // 8
    return tile, overlap


def evaluate_model(model: keras.Model, source, n_classes: int, *, tile_size, overlap: int, batch_size: int = 4,
                   class_names: Sequence[str] | None = None, keep: int = 0):
    """Score ``model`` on every sample of ``source`` at full size (tiled, blended).

    Args:
        model: a segmentation model.
        source: samples with masks (``ArraySource``, ``SegmentationFolder``).
        n_classes: number of classes (2 for a one-channel sigmoid model).
        tile_size, overlap, batch_size: see :func:`~universal_models.inference.tiled.predict_tiled`.
        class_names: names for the report.
        keep: also return the first ``keep`` ``(image, truth, prediction)``
            triples (for plots).

    Returns:
        ``(scores, kept)``: :func:`~universal_models.inference.evaluation.scores_from_confusion`
        of all pixels, plus ``n_images``; and the kept samples.
    """
    predictor = keras_predictor(model)
    any_size = not all(fixed_input_size(model))
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    kept = []
    samples = collections.deque()  # (image, truth) of the images in flight

    def images():
        for index in range(len(source)):
            samples.append(source.load(index))
            yield samples[-1][0]

    predictions = predict_images(predictor, images(), tile_size=tile_size, overlap=overlap, batch_size=batch_size,
                                 fit_to_image=any_size)  # tiles of consecutive images share model calls
    for probabilities in predictions:
        image, truth = samples.popleft()
        prediction = labels_from_probabilities(probabilities)
        matrix += confusion_matrix(truth, prediction, n_classes)
        if len(kept) < keep:
            kept.append((image, truth, prediction))
    scores = scores_from_confusion(matrix, class_names)
    scores["n_images"] = len(source)
    return scores, kept


def finish_run(folder: Path, config: TrainConfig, data: DataSplit | None = None) -> dict:
    """Curves, prediction overlays and ``metrics.json`` of a finished (or stopped) run."""
    from .plotting import plot_history, plot_predictions

    data = data or load_data(config)
    state = read_checkpoint_state(folder / "last.keras") or {"history": []}
    if state["history"]:
        plot_history(state["history"], folder / "curves.png")
    checkpoint = folder / ("best.keras" if (folder / "best.keras").exists() else "last.keras")
    model = load_model(checkpoint)
    tile, overlap = evaluation_tiles(config)
    if all(fixed_input_size(model)):  # models built for one size (recurrent ones) get tiles of that size
        tile = fixed_input_size(model)
        overlap = min(overlap, min(tile) // 2)
    n_classes = max(data.n_classes, 2)
    scores, kept = evaluate_model(model, data.validation, n_classes, tile_size=tile, overlap=overlap,
                                  batch_size=config.batch_size, class_names=data.class_names[:n_classes], keep=4)
    best = read_checkpoint_state(checkpoint) or {}
    metrics = {"model": config.model, "data": config.data, "checkpoint": checkpoint.name,
               "epoch": best.get("epoch"), "monitor": config.monitor, "backend": keras.config.backend(),
               "tile_size": list(tile), "overlap": overlap, **scores}
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2, default=_json_default))
    if kept:
        if data.sequence:  # show the last frame of each sequence
            kept = [(image[-1], truth[-1], prediction[-1]) for image, truth, prediction in kept]
        names = [str(data.validation.name(i)) for i in range(len(kept))]
        plot_predictions(*zip(*kept), folder / "predictions.png", titles=names)
    return metrics
