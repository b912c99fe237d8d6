"""The ``umodels`` command: list, train, evaluate, predict, export, demo.

Run ``umodels --help`` or ``umodels SUBCOMMAND --help``. Errors in the
arguments or the data end the command with a message that says what was wrong
and exit code 2 (set ``UMODELS_TRACEBACK=1`` to see the traceback instead); an
interrupted training (Ctrl-C) exits with 130 and says how to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .runtime.allocator import keep_freed_memory

#: Demo settings: a U-Net on generated shapes, sized for about two minutes on 2 CPU cores. Batch-norm
#: momentum 0.9 (not Keras' 0.99) so the moving statistics follow the weights in a run of 900 steps;
#: batch 8 for twice the updates of batch 16 at about the same cost per image (docs/demo.md).
DEMO_SETTINGS = dict(
    model="unet", model_options={"base_filters": 16, "depth": 3, "bn_momentum": 0.9}, data="shapes",
    n_samples=400, image_size=64, val_split=0.1, patch_size=64, batch_size=8, epochs=20, learning_rate=2e-3,
    lr_schedule="cosine",
    rotation=0.0, brightness=0.05, contrast=0.1, monitor="val_loss", seed=0,
)
#: ``--quick`` demo: seconds, for tests and a first look.
DEMO_QUICK = dict(model_options={"base_filters": 4, "depth": 2, "bn_momentum": 0.9}, n_samples=24,
                  image_size=32, patch_size=32, batch_size=8, epochs=1, val_split=4)


class UsageError(Exception):
    """Bad arguments or data: reported without a traceback, exit code 2."""


# -- argument parsing --------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _size(text: str) -> list[int]:
    """``64`` or ``64x96`` (height x width)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = [int(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 64 or 64x96 (height x width), got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected a size like 64 or 64x96 (height x width), got {text!r}")
    return values if len(values) == 2 else values * 2


def _split(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("the validation split must be a fraction in (0, 1) or a count >= 1")
    return int(value) if value >= 1 and value == int(value) else value


def _option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with VALUE read as JSON when it is JSON (numbers, true/false, null), else a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. base_filters=16), got {text!r}")
    key, raw = text.split("=", 1)
    if not key.isidentifier():
        raise argparse.ArgumentTypeError(f"option name {key!r} is not a valid name")
    lowered = {"true": "true", "false": "false", "none": "null", "null": "null"}.get(raw.lower(), raw)
    try:
        value = json.loads(lowered)
    except json.JSONDecodeError:
        value = raw
    return key, value


def _add_data_arguments(parser: argparse.ArgumentParser, required: bool) -> None:
    from .data.reading import MASK_MODES

    group = parser.add_argument_group("data")
    group.add_argument("--data", required=required, metavar="DIR|NAME",
                       help="data folder (images/ and masks/ with matching file names) or a generated dataset: "
                            "shapes, particles, moving_shapes")
    group.add_argument("--images-dir", metavar="NAME", help="image sub-folder of --data (detected: images, image ...)")
    group.add_argument("--masks-dir", metavar="NAME", help="mask sub-folder of --data (detected: masks, labels ...)")
    group.add_argument("--n-classes", type=_positive_int, metavar="N",
                       help="classes including background (default: inferred from the masks)")
    group.add_argument("--class-names", type=lambda text: [name.strip() for name in text.split(",")],
                       metavar="A,B,...", help="a name per class for the reports, background first")
    group.add_argument("--mask-mode", choices=MASK_MODES, default="auto",
                       help="mask values: auto (default: 0/255 masks are binary, others class indices), index "
                            "(values are classes), binary (non-zero is class 1), threshold (values >= half the "
                            "full scale, 128 of 255, are class 1: anti-aliased or JPEG binary masks); see docs/cli.md")


def _add_tile_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("full-size inference")
    group.add_argument("--tile-size", type=_positive_int, metavar="PX",
                       help="tile size for large images (default: the run's, else 256)")
    group.add_argument("--overlap", type=int, metavar="PX", help="overlap of neighbouring tiles (default: tile/8)")
    group.add_argument("--batch-size", type=_positive_int, default=4, metavar="N", help="tiles per model call")


def build_parser(explicit_only: bool = False) -> argparse.ArgumentParser:
    """The argument parser of ``umodels`` (all subcommands).

    With ``explicit_only`` no option has a default: the parsed namespace holds only the options
    given on the command line (how ``train --resume`` tells an option given as ``--epochs 10``
    from the parser's default 10).
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="umodels",
        description="Dense-prediction models (U-Net, SegNet, FCN, ConvLSTM, Ladder) for Keras 3 on PyTorch, JAX "
                    "and TensorFlow: train, evaluate, predict, export.",
        epilog="Choose the backend with KERAS_BACKEND=torch|jax|tensorflow. Start with: umodels demo",
    )
    parser.add_argument("--version", action="version", version=f"umodels {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    listing = commands.add_parser("list", help="list models, generated datasets and losses",
                                  description="List the registered models (and datasets and losses).")
    listing.add_argument("what", nargs="?", default="models", choices=("models", "datasets", "losses", "all"))
    listing.add_argument("--kind", choices=("segmentation", "recurrent", "ladder"), help="only models of this kind")

    training = commands.add_parser(
        "train", help="train a model", description="Train a model with checkpoints (best.keras, last.keras), a CSV "
        "log, curves, validation overlays and metrics.json in --output.",
        epilog="Example: umodels train --model unet --option base_filters=32 --data ../shared/data/isbi2012 "
               "--images-dir image --masks-dir label --val-split 5 --loss ce_dice_loss --epochs 30 --patch-size 128")
    group = training.add_argument_group("model")
    group.add_argument("--model", default="unet", help="model name (umodels list); default unet")
    group.add_argument("--option", action="append", type=_option, default=[], metavar="KEY=VALUE",
                       help="model option, repeatable (e.g. --option base_filters=16 --option depth=3)")
    _add_data_arguments(training, required=False)
    group = training.add_argument_group("data split and generated data")
    group.add_argument("--val-data", metavar="DIR", help="a separate validation folder")
    group.add_argument("--channels", type=_positive_int, metavar="N",
                       help="read the images with N channels: 1 greyscale, 3 colour (converted into each other; "
                            "default: the count all images share)")
    group.add_argument("--val-split", type=_split, default=0.2, metavar="F|N",
                       help="validation: fraction (0.2) or count (5) of the last samples in natural file order")
    group.add_argument("--n-samples", type=_positive_int, default=256, help="generated data: number of samples")
    group.add_argument("--image-size", type=_positive_int, default=64, help="generated data: image size")
    group.add_argument("--timesteps", type=_positive_int, default=8, help="moving_shapes: frames per sequence")
    group = training.add_argument_group("optimisation")
    group.add_argument("--loss", help="loss name: cross_entropy (default), ce_dice_loss, bce_dice_loss, focal_loss, "
                                      "dice_loss ... or any Keras loss")
    group.add_argument("--optimizer", choices=("adam", "adamw", "sgd", "rmsprop"), default="adam")
    group.add_argument("--learning-rate", type=float, default=1e-3, metavar="LR")
    group.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant")
    group.add_argument("--weight-decay", type=_non_negative_float, default=0.0)
    group.add_argument("--epochs", type=_positive_int, default=10)
    group.add_argument("--batch-size", type=_positive_int, default=8)
    group.add_argument("--patch-size", type=_size, default=[64, 64], metavar="PX|HxW",
                       help="training patch size, e.g. 128 or 96x128")
    group.add_argument("--steps-per-epoch", type=_positive_int,
                       help="batches per epoch (default: cover the training images' area once)")
    group.add_argument("--monitor", default="val_loss", help="logged quantity that picks best.keras (val_loss, "
                                                             "val_mean_iou ...)")
    group.add_argument("--time-limit", type=float, metavar="MINUTES",
                       help="stop after the epoch that would otherwise overrun this wall-clock budget")
    group = training.add_argument_group("augmentation (image and mask transformed together)")
    group.add_argument("--no-augment", dest="augment", action="store_false", help="no augmentation at all")
    group.add_argument("--no-flips", dest="flips", action="store_false", help="no random flips")
    group.add_argument("--rotation", type=_non_negative_float, default=15.0, metavar="DEGREES")
    group.add_argument("--brightness", type=_non_negative_float, default=0.1, metavar="F")
    group.add_argument("--contrast", type=_non_negative_float, default=0.2, metavar="F")
    group = training.add_argument_group("run")
    group.add_argument("--output", default="runs/latest", metavar="DIR", help="run folder (default runs/latest)")
    group.add_argument("--resume", action="store_true",
                       help="continue the run in --output from last.keras with its saved settings "
                            "(options given "
                            "too must equal them, except --epochs, --time-limit, --workers, "
                            "--use-multiprocessing, "
                            "--data, --val-data and --verbose; see docs/cli.md)")
    group.add_argument("--overwrite", action="store_true",
                       help="start over in an --output that holds a run (after every check has passed; "
                            "removes "
                            "only umodels' own files there)")
    group.add_argument("--seed", type=int, default=0, help="seed of weights, data order and augmentation")
    group.add_argument("--distributed", action="store_true",
                       help="data-parallel training over every visible device (JAX backend: several GPUs, or "
                            "hosts after keras.distribution.initialize; see docs/cli.md)")
    group.add_argument("--no-deterministic", dest="deterministic", action="store_false",
                       help="allow non-deterministic backend kernels")
    group.add_argument("--precision", choices=("float32", "bfloat16", "float16"), default="float32",
                       help="float32 (default), or mixed precision with Keras' mixed_bfloat16 / mixed_float16 "
                            "policies (float16 with loss scaling); weights stay float32; saved with the run")
    group.add_argument("--workers", type=_positive_int, default=1, help="data-loading workers (threads)")
    group.add_argument("--use-multiprocessing", action="store_true", help="processes instead of threads")
    group.add_argument("--tile-size", type=_positive_int, help="final full-size evaluation: tile size")
    group.add_argument("--overlap", type=int, help="final full-size evaluation: tile overlap")
    group.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                       help="0 silent, 1 progress bar (default), 2 one line per epoch")

    evaluating = commands.add_parser(
        "evaluate", help="score a model on full-size images",
        description="Score a model on full-size images (tiled, overlapping, blended): pixel accuracy, IoU and "
                    "Dice per class, mean IoU. MODEL is a .keras file or a run folder (its best.keras; without "
                    "--data, the run's own validation images).")
    evaluating.add_argument("model", metavar="MODEL")
    _add_data_arguments(evaluating, required=False)
    _add_tile_arguments(evaluating)
    evaluating.add_argument("--output", metavar="FILE.json", help="also write the scores to this JSON file")

    predicting = commands.add_parser(
        "predict", help="write predicted masks of images",
        description="Predict a mask for every input image (files or folders), one at a time, and write "
                    "<name>.png class-index masks (and probability maps on request) to --output.")
    predicting.add_argument("model", metavar="MODEL", help=".keras file, run folder or .onnx file")
    predicting.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders of images")
    predicting.add_argument("--output", required=True, metavar="DIR")
    predicting.add_argument("--probabilities", action="store_true",
                            help="also write <name>_probabilities.tif (float32, one channel per class)")
    predicting.add_argument("--mask-values", choices=("index", "spread"), default="index",
                            help="index: pixel = class (default); spread: classes spread over 0..255 for viewing")
    _add_tile_arguments(predicting)

    exporting = commands.add_parser(
        "export", help="export a model for inference (.keras or ONNX)",
        description="Export a trained model for inference: --format keras writes a .keras file without optimizer "
                    "state; --format onnx writes an ONNX graph for onnxruntime (fixed input size).")
    exporting.add_argument("model", metavar="MODEL", help=".keras file or run folder")
    exporting.add_argument("--format", choices=("keras", "onnx"), default="keras")
    exporting.add_argument("--output", required=True, metavar="FILE")
    exporting.add_argument("--input-size", type=_size, metavar="PX|HxW",
                           help="ONNX: input height x width (default: the model's, or twice the run's patch)")
    exporting.add_argument("--batch-size", type=_positive_int, default=1, help="ONNX: batch size of the graph")
    exporting.add_argument("--opset", type=_positive_int, help="ONNX opset version (default: the exporter's)")
    exporting.add_argument("--frames", type=_positive_int, metavar="N",
                           help="ONNX of a recurrent model: frames per sequence of the graph (its time "
                                "axis is "
                                "otherwise free, which ONNX export cannot take)")

    demo = commands.add_parser(
        "demo", help="train a U-Net on generated shapes (about 2 minutes)",
        description="Train a U-Net on the built-in shapes data (4 classes) and write curves, prediction overlays "
                    "and metrics.json; prints where they are and the mean IoU.")
    demo.add_argument("--output", default="umodels-demo", metavar="DIR", help="default ./umodels-demo")
    demo.add_argument("--quick", action="store_true", help="a few seconds on tiny data (to check the setup)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--epochs", type=_positive_int, help="override the number of epochs")
    demo.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1)
    if explicit_only:
        for subparser in commands.choices.values():
            for action in subparser._actions:
                action.default = argparse.SUPPRESS
    return parser


def given_options(argv: Sequence[str] | None) -> set[str]:
    """The destinations of the options given explicitly in ``argv`` (parser defaults do not count)."""
    parsed = build_parser(explicit_only=True).parse_args(argv)
    return set(vars(parsed)) - {"command"}


# -- helpers ---------------------------------------------------------------------------------
def _resolve_model_path(path: str) -> tuple[Path, Path | None]:
    """``(model file, run folder or None)`` for a .keras/.onnx file or a run folder."""
    candidate = Path(path)
    if candidate.is_dir():
        for name in ("best.keras", "last.keras"):
            if (candidate / name).is_file():
                return candidate / name, candidate
        raise UsageError(f"{candidate} is a folder without best.keras or last.keras; give a .keras file or a run "
                         "folder of `umodels train`.")
    if not candidate.is_file():
        raise UsageError(f"model file {candidate} does not exist.")
    run = candidate.parent if (candidate.parent / "config.json").is_file() else None
    return candidate, run


def _load_keras_model(path: Path):
    from .inference.loading import load_model

    if path.suffix != ".keras":
        raise UsageError(f"{path} is not a .keras file; give a model saved by `umodels train` or `export`.")
    return load_model(path, compile=False)


def _run_config(run: Path | None):
    from .training import CONFIG_FILE, TrainConfig

    if run is None or not (run / CONFIG_FILE).is_file():
        return None
    return TrainConfig.from_json(json.loads((run / CONFIG_FILE).read_text(encoding="utf-8")))


def _tiles(args, config, model_size) -> tuple[tuple[int, int], int]:
    from .training import evaluation_tiles

    if all(model_size):
        tile = tuple(model_size)
    elif args.tile_size:
        tile = (args.tile_size, args.tile_size)
    elif config is not None:
        tile = evaluation_tiles(config)[0]
    else:
        tile = (256, 256)
    overlap = args.overlap if args.overlap is not None else min(tile) // 8
    if not 0 <= overlap < min(tile):
        raise UsageError(f"--overlap must be in [0, tile size {min(tile)}), got {overlap}.")
    return tile, overlap


def _check_output_file(path: Path, option: str = "--output") -> None:
    """Refuse an output file path that cannot be written, before any work."""
    import errno

    from .training.folder import check_writable_folder

    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{option} {path} is a folder; give a file path (e.g. "
                                              f"{path / 'scores.json'})")
    check_writable_folder(path.parent, f"the folder of {option} {path}")


def _os_error_message(error: OSError) -> str:
    """One line for a file-system error: what failed, on which path, and what to do."""
    import errno

    if not error.filename:
        return error.strerror if error.strerror and len(error.args) == 2 else str(error)
    fixes = {
        errno.EACCES: "make it writable (or readable) for this user, or choose another path",
        errno.EPERM: "make it writable for this user, or choose another path",
        errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
        errno.EISDIR: "it is a folder; give a file path",
        errno.ENOSPC: "free disk space, or choose a path on another disk",
        errno.EROFS: "the file system is read-only; choose another path",
        errno.ENOENT: "check the path",
        errno.EEXIST: "remove it or choose another path",
    }
    fix = fixes.get(error.errno, "check the path and its permissions")
    return f"{error.strerror or type(error).__name__}: {error.filename}; {fix}."


# -- subcommands -----------------------------------------------------------------------------------
def _command_list(args) -> int:
    from .data.generated import GENERATED_DATASETS
    from .registry import list_models

    if args.what in ("models", "all"):
        models = list_models(args.kind)
        width = max(len(info.name) for info in models)
        print("Models (umodels train --model NAME):")
        for info in models:
            print(f"  {info.name:<{width}}  {info.kind:<12}  {info.description}")
    if args.what in ("datasets", "all"):
        print("Generated datasets (umodels train --data NAME):")
        for dataset in GENERATED_DATASETS.values():
            print(f"  {dataset.name:<14}  {dataset.description}")
    if args.what in ("losses", "all"):
        try:
            from .losses import LOSS_ALIASES

            names = sorted(LOSS_ALIASES)
        except ImportError:  # pragma: no cover
            names = []
        print("Losses (umodels train --loss NAME; any Keras loss name works too):")
        for name in names:
            print(f"  {name}")
    return 0


def _train_config(args):
    from .training import TrainConfig, default_loss

    options = dict(args.option)
    return TrainConfig(
        model=args.model, model_options=options, data=args.data or "shapes", images_dir=args.images_dir,
        masks_dir=args.masks_dir, val_data=args.val_data, val_split=args.val_split, n_classes=args.n_classes,
        class_names=args.class_names, mask_mode=args.mask_mode, channels=args.channels, n_samples=args.n_samples,
        image_size=args.image_size, timesteps=args.timesteps,
        loss=args.loss or default_loss(), optimizer=args.optimizer, learning_rate=args.learning_rate,
        lr_schedule=args.lr_schedule, weight_decay=args.weight_decay, epochs=args.epochs, batch_size=args.batch_size,
        patch_size=list(args.patch_size), steps_per_epoch=args.steps_per_epoch, augment=args.augment,
        flips=args.flips, rotation=args.rotation, brightness=args.brightness, contrast=args.contrast, seed=args.seed,
        monitor=args.monitor, time_limit=args.time_limit, workers=args.workers,
        use_multiprocessing=args.use_multiprocessing, tile_size=args.tile_size, overlap=args.overlap,
        deterministic=args.deterministic, precision=args.precision, distributed=args.distributed,
        output=args.output,
    )


def _report(result, started: float) -> None:
    metrics = result.metrics or {}
    minutes = (time.monotonic() - started) / 60
    print(f"\nRun folder: {result.output.resolve()}  ({minutes:.1f} min)")
    if result.stopped_by_time_limit:
        print("Stopped early by --time-limit (after a complete epoch).")
    for name in ("best.keras", "last.keras", "log.csv", "curves.png", "predictions.png", "metrics.json"):
        if (result.output / name).exists():
            print(f"  {name}")
    if metrics:
        per_class = ", ".join(f"{entry['name']} {entry['iou']:.3f}" for entry in metrics["per_class"]
                              if entry["iou"] is not None)
        print(f"Validation (full size, {metrics['checkpoint']}): mean IoU {metrics['mean_iou']:.4f}, "
              f"pixel accuracy {metrics['pixel_accuracy']:.4f}; IoU per class: {per_class}")


#: ``umodels train`` destinations that are not settings of the run
_RUN_CONTROL = {"resume", "overwrite", "verbose", "output"}
_SETTING_OF = {"option": "model_options"}


def _resume_config(args):
    """The run's saved settings, with the options given explicitly on this command line applied
    (checked by :func:`~universal_models.training.resume_config`: only a few may differ)."""
    from .training import resume_config

    given = getattr(args, "given", None)
    if given is None:  # called without main(): every option counts as given
        given = set(vars(args)) - {"command"}
    full = _train_config(args)
    changes = {}
    for dest in sorted(given - _RUN_CONTROL):
        setting = _SETTING_OF.get(dest, dest)
        if hasattr(full, setting):
            changes[setting] = getattr(full, setting)
    return resume_config(args.output, changes)


def _command_train(args) -> int:
    from .training import train

    config = _resume_config(args) if args.resume else _train_config(args)
    started = time.monotonic()
    result = train(config, resume=args.resume, overwrite=args.overwrite, verbose=args.verbose)
    if result.already_complete:
        print(f"The run in {result.output} is already complete: {config.epochs} of {config.epochs} epochs "
              "trained, "
              f"and evaluated (metrics.json). To train it longer: umodels train --resume --output "
              f"{result.output} "
              "--epochs N.")
        return 0
    _report(result, started)
    return 0


def _command_demo(args) -> int:
    from .training import TrainConfig, default_loss, train

    settings = dict(DEMO_SETTINGS)
    if args.quick:
        settings.update(DEMO_QUICK)
    if args.epochs:
        settings["epochs"] = args.epochs
    config = TrainConfig(**settings, loss=default_loss(), output=args.output)
    config.seed = args.seed
    print(f"umodels demo: training {config.model} ({config.model_options}) on {config.n_samples} generated "
          f"'shapes' images ({config.image_size} px, 4 classes) for {config.epochs} epochs; writing to {args.output}")
    if not args.quick:
        print("  the same run as: umodels " + " ".join(demo_train_arguments(config)))
    started = time.monotonic()
    result = train(config, overwrite=True, verbose=args.verbose)
    _report(result, started)
    seconds = sum(float(entry.get("time", 0.0)) for entry in result.history)
    print(f"Training time: {seconds:.0f} s for {len(result.history)} epochs (the epochs' own times, without "
          "start-up and the final scoring)")
    print(f"Final mean IoU: {result.metrics['mean_iou']:.4f}")
    return 0


def demo_train_arguments(config) -> list[str]:
    """The ``umodels train`` arguments that train what the demo's ``config`` trains (docs/demo.md)."""
    arguments = ["train", "--model", config.model]
    for key, value in config.model_options.items():
        arguments += ["--option", f"{key}={json.dumps(value)}"]
    arguments += [
        "--data", config.data, "--n-samples", str(config.n_samples), "--image-size", str(config.image_size),
        "--val-split", str(config.val_split), "--patch-size", "x".join(str(size) for size in config.patch),
        "--batch-size", str(config.batch_size), "--epochs", str(config.epochs),
        "--learning-rate", str(config.learning_rate), "--lr-schedule", config.lr_schedule,
        "--loss", config.loss, "--rotation", str(config.rotation), "--brightness", str(config.brightness),
        "--contrast", str(config.contrast), "--monitor", config.monitor, "--seed", str(config.seed),
        "--output", config.output, "--overwrite",
    ]
    return arguments


def _evaluation_source(args, config, channels: int):
    from .data.folder import SegmentationFolder
    from .training import load_data

    if args.data is None:
        if config is None:
            raise UsageError("give --data (a folder or generated dataset), or a run folder whose settings name it.")
        return load_data(config)
    if config is not None:  # same data handling as the run, other data
        config.data, config.images_dir, config.masks_dir = args.data, args.images_dir, args.masks_dir
        config.mask_mode = args.mask_mode
        if args.n_classes:
            config.n_classes = args.n_classes
        from .data.generated import GENERATED_DATASETS

        if args.data in GENERATED_DATASETS:
            return load_data(config)
    folder = SegmentationFolder(args.data, images_dir=args.images_dir, masks_dir=args.masks_dir,
                                n_classes=args.n_classes, mask_mode=args.mask_mode, channels=channels)
    folder.scan()
    names = folder.class_names or tuple(str(i) for i in range(folder.n_classes))
    from .training import DataSplit

    return DataSplit(None, folder, folder.n_classes, folder.channels, tuple(names), sequence=False)


def _command_evaluate(args) -> int:
    from .inference import fixed_input_size
    from .training import evaluate_model

    if args.output:
        _check_output_file(Path(args.output))  # before the evaluation, not after it
    path, run = _resolve_model_path(args.model)
    config = _run_config(run)
    model = _load_keras_model(path)
    data = _evaluation_source(args, config, model.input_shape[-1])
    n_outputs = model.output_shape[-1]
    n_classes = max(n_outputs, 2)
    if data.n_classes > n_classes:
        raise UsageError(f"the masks have {data.n_classes} classes but the model predicts {n_classes}.")
    tile, overlap = _tiles(args, config, fixed_input_size(model))
    scores, _ = evaluate_model(model, data.validation, n_classes, tile_size=tile, overlap=overlap,
                               batch_size=args.batch_size, class_names=(list(data.class_names) + [
                                   str(i) for i in range(len(data.class_names), n_classes)])[:n_classes])
    scores = {"model": str(path), "tile_size": list(tile), "overlap": overlap, **scores}
    print(f"{scores['n_images']} images, {path}")
    print(f"pixel accuracy {scores['pixel_accuracy']:.4f}   mean IoU {scores['mean_iou']:.4f}   "
          f"mean Dice {scores['mean_dice']:.4f}")
    for entry in scores["per_class"]:
        iou = "   n/a" if entry["iou"] is None else f"{entry['iou']:.4f}"
        dice = "   n/a" if entry["dice"] is None else f"{entry['dice']:.4f}"
        print(f"  class {entry['class']} {entry['name']:<16} IoU {iou}   Dice {dice}   pixels {entry['pixels']}")
    if args.output:
        from .training.folder import atomic_write_text

        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.output, json.dumps(scores, indent=2))
        print(f"wrote {args.output}")
    return 0


def _prediction_inputs(inputs: Sequence[str]) -> list[Path]:
    from .data.folder import IMAGE_DIR_NAMES, IMAGE_EXTENSIONS, list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path)
            if not found:
                sub = next((path / name for name in IMAGE_DIR_NAMES if (path / name).is_dir()), None)
                found = list_images(sub) if sub is not None else []
            if not found:
                raise UsageError(f"folder {path} has no images ({', '.join(IMAGE_EXTENSIONS)}).")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"input {path} does not exist.")
    stems: dict[str, Path] = {}
    for path in files:
        if path.stem in stems:
            raise UsageError(f"two inputs would write the same output {path.stem}.png: {stems[path.stem]} and "
                             f"{path}; predict them into separate --output folders.")
        stems[path.stem] = path
    return files


def _onnx_predictor(path: Path):
    from .inference.export import OnnxPredictor

    try:
        predictor = OnnxPredictor(path)
    except ImportError as error:
        raise UsageError(str(error)) from error
    shape = predictor.input_shape
    return predictor, shape[-3:-1], shape[-1], predictor.batch_size


def _command_predict(args) -> int:
    import collections

    import numpy as np
    from PIL import Image

    from .data.reading import read_image, to_float_image
    from .inference import fixed_input_size, keras_predictor, labels_from_probabilities, predict_images
    from .training.folder import atomic_write, check_writable_folder

    output = Path(args.output)
    check_writable_folder(output)  # before the model is loaded or an image read
    path, run = _resolve_model_path(args.model)
    config = _run_config(run)
    if path.suffix == ".onnx":
        predictor, size, channels, batch = _onnx_predictor(path)
        batch_size = batch or args.batch_size
        rank = len(predictor.input_shape)
    else:
        model = _load_keras_model(path)
        predictor, size, channels = keras_predictor(model), fixed_input_size(model), model.input_shape[-1]
        batch_size = args.batch_size
        rank = len(model.input_shape)
    if rank == 5:
        raise UsageError(
            f"{path} is a recurrent model: it takes sequences of frames (batch, time, height, width, "
            "channels), and "
            "`umodels predict` reads single images. Predict sequences from Python: "
            "universal_models.inference.predict_tiled(keras_predictor(model), frames) with frames a "
            "float32 array "
            "(time, height, width, channels) in [0, 1].")
    files = _prediction_inputs(args.inputs)
    tile, overlap = _tiles(args, config, size)
    output.mkdir(parents=True, exist_ok=True)
    skipped: list[tuple[Path, str]] = []
    read: collections.deque[Path] = collections.deque()  # the files whose images are in flight, in order

    def images():
        for file in files:
            try:
                image = to_float_image(read_image(file), file, channels)
            except (ValueError, OSError) as error:  # an unreadable image is reported at the end, not fatal
                skipped.append((file, str(error).splitlines()[0] if str(error) else type(error).__name__))
                print(f"skipped {file}: {skipped[-1][1]}", file=sys.stderr, flush=True)
                continue
            read.append(file)
            yield image

    predictions = predict_images(predictor, images(), tile_size=tile, overlap=overlap, batch_size=batch_size,
                                 fit_to_image=not all(size))  # tiles of consecutive images share model calls
    for index, probabilities in enumerate(predictions, start=1):
        file = read.popleft()
        labels = labels_from_probabilities(probabilities)
        n_classes = max(probabilities.shape[-1], 2)
        if args.mask_values == "spread":
            labels = labels * (255 // (n_classes - 1))
        dtype = np.uint8 if labels.max(initial=0) <= 255 else np.uint16
        mask = Image.fromarray(labels.astype(dtype))
        atomic_write(output / f"{file.stem}.png", lambda temporary: mask.save(temporary, format="PNG"))
        if args.probabilities:
            import tifffile

            values = probabilities.astype(np.float32)
            atomic_write(output / f"{file.stem}_probabilities.tif",
                         lambda temporary: tifffile.imwrite(temporary, values))
        print(f"[{index}/{len(files)}] {file} -> {output / (file.stem + '.png')}", flush=True)
    if skipped:
        print(f"umodels predict: wrote {len(files) - len(skipped)} of {len(files)} masks to {output}; "
              "skipped "
              f"{len(skipped)} unreadable input(s):", file=sys.stderr)
        for file, reason in skipped:
            print(f"  {file}: {reason}", file=sys.stderr)
        return 1
    return 0


def _command_export(args) -> int:
    from .inference import fixed_input_size
    from .inference.export import DEFAULT_OPSET, export_onnx

    output = Path(args.output)
    _check_output_file(output)
    path, run = _resolve_model_path(args.model)
    model = _load_keras_model(path)
    output.parent.mkdir(parents=True, exist_ok=True)
    if args.format == "keras":
        if output.suffix != ".keras":
            raise UsageError(f"--output for --format keras must end in .keras, got {output}.")
        from .training import save_checkpoint

        save_checkpoint(model, output)  # atomic; loaded without compile: no optimizer state in the export
        print(f"wrote {output} (inference only, {model.count_params():,} parameters)")
        return 0
    size = fixed_input_size(model)
    if args.input_size:
        height, width = args.input_size
    elif all(size):
        height, width = size
    else:
        config = _run_config(run)
        if config is None:
            raise UsageError("the model takes any input size; give the ONNX graph's size with --input-size HxW.")
        height, width = (2 * config.patch[0], 2 * config.patch[1])
    frames = ()
    if len(model.input_shape) == 5:  # recurrent: (batch, time, height, width, channels)
        fixed = model.input_shape[1]
        if fixed is None and args.frames is None:
            raise UsageError(f"{path} is a recurrent model whose time axis is free, and an ONNX graph "
                             "needs a fixed "
                             "frame count: give it with --frames N (the number of frames per sequence the "
                             "graph "
                             "will be called with, e.g. the run's --timesteps).")
        if fixed is not None and args.frames is not None and args.frames != fixed:
            raise UsageError(f"{path} was built for {fixed} frames per sequence; leave --frames out or give "
                             f"--frames {fixed}.")
        frames = (fixed or args.frames,)
    elif args.frames is not None:
        raise UsageError(f"--frames is for recurrent models; {path} takes single images, so leave "
                         "--frames out.")
    input_shape = frames + (height, width, model.input_shape[-1])
    if any(value is None for value in input_shape):
        raise UsageError(f"cannot export a fixed ONNX input shape from {model.input_shape}; the model has other "
                         "undefined input axes.")
    try:
        export_onnx(model, output, input_shape=input_shape, batch_size=args.batch_size,
                    opset=args.opset or DEFAULT_OPSET)
    except ImportError as error:
        raise UsageError(f"{error} (or export with the torch backend: the .keras file works on every backend: "
                         "KERAS_BACKEND=torch umodels export ...)") from error
    except ValueError:
        raise
    except Exception as error:  # torch.export / tf2onnx raise many kinds
        summary = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(
            f"ONNX export of {path} failed: {summary}. Some layers do not trace (on Keras 3.13 with torch.export, "
            "UpSampling2D, as in testnet, does not); the .keras model still works with `umodels predict`."
        ) from error
    print(f"wrote {output} (ONNX, input {(args.batch_size,) + input_shape})")
    return 0


_COMMANDS = {"list": _command_list, "train": _command_train, "evaluate": _command_evaluate,
             "predict": _command_predict, "export": _command_export, "demo": _command_demo}


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``umodels`` with ``argv`` (default: the command line); returns the exit code.

    Example:
        >>> main(["list"])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train":
        args.given = given_options(argv)  # what --resume compares with the run's settings
    keep_freed_memory()  # large activations reuse the process's memory (see universal_models.runtime.allocator)
    try:
        return _COMMANDS[args.command](args)
    except KeyboardInterrupt as interrupt:
        print(f"\numodels {args.command}: {interrupt or 'interrupted'}", file=sys.stderr)
        return 130
    except (UsageError, ValueError) as error:
        if os.environ.get("UMODELS_TRACEBACK"):
            raise
        print(f"umodels {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # file-system problems: one line naming the path and the fix, never a traceback
        if os.environ.get("UMODELS_TRACEBACK"):
            raise
        print(f"umodels {args.command}: error: {_os_error_message(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
