"""Figures of a training run: learning curves and validation predictions (PNG).

matplotlib is used with its non-interactive Agg canvas, so plots are written
on machines without a display and never open windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Overlay colours per class (class 0, the background, is left uncoloured).
CLASS_COLOURS = np.array([
    [0.0, 0.0, 0.0], [0.89, 0.10, 0.11], [0.22, 0.49, 0.72], [0.30, 0.69, 0.29], [0.60, 0.31, 0.64],
    [1.00, 0.50, 0.00], [1.00, 1.00, 0.20], [0.65, 0.34, 0.16], [0.97, 0.51, 0.75], [0.60, 0.60, 0.60],
], dtype=np.float32)


def _figure(rows: int, columns: int, size: tuple[float, float]):
    from matplotlib.figure import Figure

    # A bare Figure draws on the Agg canvas and is not registered with pyplot:
    # no display needed, nothing leaks between calls.
    figure = Figure(figsize=size, dpi=100)
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    from .folder import atomic_write

    return atomic_write(path, lambda temporary: figure.savefig(temporary, format=path.suffix[1:] or "png"))


def plot_history(history: Sequence[dict], path: str | Path) -> Path:
    """Training curves: one panel per quantity, training and validation together.

    Args:
        history: one dict per epoch, as in the run's CSV log (``epoch``,
            ``loss``, ``val_loss``, other metrics and ``val_`` twins).
        path: the PNG to write.

    Returns:
        ``path``.

    Raises:
        ValueError: an empty history.

    Example:
        >>> plot_history([{"epoch": 0, "loss": 1.0, "val_loss": 1.2}, {"epoch": 1, "loss": 0.5, "val_loss": 0.7}],
        ...              "curves.png")  # doctest: +SKIP
    """
    if not history:
        raise ValueError("cannot plot an empty training history.")
    keys = [key for key in history[0] if key not in ("epoch", "learning_rate", "time")
            and not key.startswith("val_")]
    keys += [key[4:] for key in history[0] if key.startswith("val_") and key[4:] not in keys]
    figure, axes = _figure(1, len(keys), (4.0 * len(keys), 3.2))
    epochs = [int(row.get("epoch", index)) + 1 for index, row in enumerate(history)]
    for axis, key in zip(axes[0], keys):
        for prefix, label in (("", "training"), ("val_", "validation")):
            values = [row.get(prefix + key) for row in history]
            if any(value is not None for value in values):
                axis.plot(epochs, [np.nan if value is None else float(value) for value in values], marker=".",
                          label=label)
        axis.set_title(key.replace("_", " "))
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    return _save(figure, path)


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """RGB picture of ``image`` with non-background classes tinted in :data:`CLASS_COLOURS`.

    Args:
        image: ``(height, width, channels)`` in [0, 1] (the first three
            channels are shown, greyscale is repeated).
        labels: ``(height, width)`` class indices.
        alpha: opacity of the class colours.

    Returns:
        ``float32 (height, width, 3)``.
    """
    picture = image[..., :3] if image.shape[-1] >= 3 else np.repeat(image[..., :1], 3, axis=-1)
    picture = np.clip(picture, 0.0, 1.0).astype(np.float32)
    colours = CLASS_COLOURS[np.asarray(labels) % len(CLASS_COLOURS)]
    tint = (np.asarray(labels) > 0)[..., None] * alpha
    return picture * (1 - tint) + colours * tint


def plot_predictions(
    images: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    predictions: Sequence[np.ndarray],
    path: str | Path,
    *,
    titles: Sequence[str] | None = None,
) -> Path:
    """One row per sample: image | truth overlay | prediction overlay.

    Args:
        images: ``(height, width, channels)`` images in [0, 1].
        truths, predictions: ``(height, width)`` labels.
        path: the PNG to write.
        titles: a name per row (e.g. file names).

    Returns:
        ``path``.

    Example:
        >>> plot_predictions([image], [mask], [predicted], "predictions.png")  # doctest: +SKIP
    """
    rows = len(images)
    if rows == 0 or not rows == len(truths) == len(predictions):
        raise ValueError(f"need the same positive number of images, truths and predictions, "
                         f"got {len(images)}, {len(truths)}, {len(predictions)}.")
    figure, axes = _figure(rows, 3, (9.0, 3.0 * rows))
    for row, (image, truth, prediction) in enumerate(zip(images, truths, predictions)):
        name = f"{titles[row]}: " if titles else ""
        shown = image[..., :3] if image.shape[-1] >= 3 else image[..., 0]
        axes[row, 0].imshow(np.clip(shown, 0, 1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        axes[row, 0].set_title(f"{name}image", fontsize=9)
        axes[row, 1].imshow(overlay(image, truth), interpolation="nearest")
        axes[row, 1].set_title("truth", fontsize=9)
        axes[row, 2].imshow(overlay(image, prediction), interpolation="nearest")
        axes[row, 2].set_title("prediction", fontsize=9)
        for axis in axes[row]:
            axis.set_axis_off()
    return _save(figure, path)
