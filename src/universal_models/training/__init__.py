"""Training: a run's settings, data, checkpoints, loop and report.

- :mod:`.config`: :class:`TrainConfig` (every setting of a run, saved as ``config.json``), what
  the settings mean (loss names, logged quantities, evaluation tiles) and the resume rules.
- :mod:`.data`: the training and validation data a config names.
- :mod:`.checkpoint`: checkpoints that resume exactly (model, optimizer, training and
  random-number state in one ``.keras`` file), ``seed_everything``.
- :mod:`.run`: :func:`train`, what ``umodels train`` runs: the check phase, the run folder, the
  model, the callback that logs and guards against non-finite training, resume.
- :mod:`.report`: the epoch log, the full-size evaluation, ``metrics.json``.
- :mod:`.folder`: run folders: umodels' own files, atomic writes, the one-process lock.
- :mod:`.preparation`: :func:`prepare_training`, the optimizer and metric variables made before
  the first traced step.
- :mod:`.distributed`: data-parallel training on several devices (JAX).
- :mod:`.plotting`: the curves and prediction pictures of a run folder.

``from universal_models.training import train, TrainConfig`` works as before.
"""

from __future__ import annotations

import importlib

# Where each name lives; loaded on first use (``import universal_models`` needs only .preparation).
_NAMES = {
    "CONFIG_FILE": "config",
    "DataSplit": "data",
    "LR_SCHEDULES": "config",
    "OPTIMIZERS": "config",
    "PRECISIONS": "config",
    "RESUME_CHANGES": "config",
    "STATE_MEMBER": "checkpoint",
    "TrainConfig": "config",
    "TrainResult": "run",
    "build_model": "run",
    "default_loss": "config",
    "evaluate_model": "report",
    "evaluation_tiles": "config",
    "finish_run": "report",
    "load_data": "data",
    "logged_quantities": "config",
    "non_finite_weights": "run",
    "option_name": "config",
    "read_checkpoint_state": "checkpoint",
    "resolve_loss": "config",
    "resume_config": "config",
    "save_checkpoint": "checkpoint",
    "saved_config": "config",
    "seed_everything": "checkpoint",
    "train": "run",
    "write_log": "report",
}
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_NAMES])
