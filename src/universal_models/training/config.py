"""A training run's settings: :class:`TrainConfig` (saved as ``config.json``) and the resume rules.

:func:`resume_config` reads a run folder's settings back and applies the few changes a resumed run
may make (:data:`RESUME_CHANGES`); any other setting given for a resume must equal the saved one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import keras

from ..data.generated import GENERATED_DATASETS
from ..registry import get_model, list_models

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
    def from_json(cls, values: dict) -> TrainConfig:
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


# -- resume --------------------------------------------------------------------------------------
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


# -- what the settings mean ---------------------------------------------------------------
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


def evaluation_tiles(config: TrainConfig) -> tuple[tuple[int, int], int]:
    """Tile size and overlap for full-size inference: 4x the patch area by default, 1/8 overlap."""
    height, width = config.patch
    tile = (config.tile_size, config.tile_size) if config.tile_size else (2 * height, 2 * width)
    overlap = config.overlap if config.overlap is not None else min(tile) // 8
    return tile, overlap
