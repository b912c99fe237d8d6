"""Training: a run's settings, data, checkpoints, loop and report.

- :mod:`.run`: :class:`TrainConfig` (every setting of a run, saved as ``config.json``),
  :func:`train` (what ``umodels train`` runs: data, model, checkpoints with exact resume, the
  callback that logs and guards, the final report), :func:`evaluate_model`.
- :mod:`.preparation`: :func:`prepare_training`, the optimizer and metric variables made before
  the first traced step.
- :mod:`.distributed`: data-parallel training on several devices (JAX).
- :mod:`.plotting`: the curves and prediction pictures of a run folder.

``from universal_models.training import train, TrainConfig`` works as before.
"""

# The names of .run, loaded on first use: ``import universal_models`` needs only .preparation.
_RUN_NAMES = (
    "CONFIG_FILE", "LR_SCHEDULES", "OPTIMIZERS", "PRECISIONS", "STATE_MEMBER", "DataSplit", "TrainConfig",
    "TrainResult", "build_model", "default_loss", "evaluate_model", "evaluation_tiles", "finish_run", "load_data",
    "read_checkpoint_state", "resolve_loss", "save_checkpoint", "seed_everything", "train", "write_log",
    "RESUME_CHANGES", "logged_quantities", "non_finite_weights", "option_name", "resume_config", "saved_config",
)
__all__ = list(_RUN_NAMES)


def __getattr__(name: str):
    if name in _RUN_NAMES:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_RUN_NAMES])
