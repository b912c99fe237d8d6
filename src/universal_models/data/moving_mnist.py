"""Sequences of bouncing sprites: Moving MNIST, and moving shapes with masks.

Moving MNIST (Srivastava, Mansimov and Salakhutdinov 2015, "Unsupervised
Learning of Video Representations using LSTMs", arXiv:1502.04681) puts two
28 x 28 MNIST digits in a 64 x 64 canvas; each moves in a straight line at a
constant speed and bounces off the edges, and where digits overlap the frame
takes the pixel-wise maximum. :func:`moving_mnist` builds such sequences from
digits you give (for example ``load_mnist("../shared/data/mnist")``).
:func:`moving_shapes` needs no digits: bouncing circles, squares and triangles
with per-pixel labels, for recurrent segmentation.

Both are deterministic for a given ``seed`` and use only numpy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validation import check_integer
from .mnist import load_mnist

#: Labels of :func:`moving_shapes` masks (0 is background).
SHAPE_CLASSES = ("background", "circle", "square", "triangle")


def bouncing_positions(rng: np.random.Generator, n_sequences: int, n_objects: int, n_frames: int,
                       travel: int, step_length: float = 0.1) -> np.ndarray:
    """Top-left corners of objects bouncing in a box, as in Srivastava et al.

    Each object starts at a uniform position in ``[0, travel]^2`` with a
    uniform direction and moves ``step_length * travel`` pixels per frame,
    reflecting its velocity at the walls.

    Returns:
        ``int`` array ``(n_sequences, n_objects, n_frames, 2)`` of ``(row,
        column)`` positions in ``[0, travel]``.
    """
    position = rng.random((n_sequences, n_objects, 2))
    angle = rng.random((n_sequences, n_objects)) * 2 * np.pi
    velocity = np.stack([np.sin(angle), np.cos(angle)], axis=-1)
    positions = np.empty((n_sequences, n_objects, n_frames, 2))
    for frame in range(n_frames):
        position = position + velocity * step_length
        low, high = position < 0, position > 1
        velocity = np.where(low | high, -velocity, velocity)
        position = np.clip(position, 0, 1)
        positions[:, :, frame] = position
    return np.round(positions * travel).astype(np.int64)


def _paste_max(canvas: np.ndarray, sprites: np.ndarray, positions: np.ndarray) -> None:
    """``canvas[n, t] = max(canvas, sprite[n] at positions[n, t])`` for every sequence and frame."""
    height, width = sprites.shape[1:3]
    for sequence in range(canvas.shape[0]):
        for frame, (row, column) in enumerate(positions[sequence]):
            window = canvas[sequence, frame, row : row + height, column : column + width]
            np.maximum(window, sprites[sequence], out=window)


def moving_mnist(digits, n_sequences: int, n_frames: int = 20, *, canvas_size: int = 64,
                 n_digits: int = 2, step_length: float = 0.1, seed: int | None = None) -> np.ndarray:
    """Moving MNIST sequences (Srivastava et al. 2015, arXiv:1502.04681).

    Each sequence draws ``n_digits`` digits at random from ``digits``; each
    starts at a random place with a random direction and moves ``step_length``
    of the free travel (``canvas_size - 28`` pixels) per frame, about 3.6
    pixels for the standard 64 x 64 canvas, bouncing off the edges. Where
    digits overlap the frame takes the pixel-wise maximum.

    Args:
        digits: MNIST digits ``(n, 28, 28)`` (``uint8`` 0-255 or floats in
            [0, 1]), or a folder with the MNIST IDX files (read with
            :func:`~universal_models.data.load_mnist`, test split). Use separate
            digits for training and test sequences.
        n_sequences: number of sequences.
        n_frames: frames per sequence (20 in the usual 10-in, 10-out setting).
        canvas_size: height and width of the frames (> the digit size).
        n_digits: digits per sequence.
        step_length: distance per frame as a fraction of the free travel.
        seed: seed of the random generator (same seed, same sequences).

    Returns:
        ``float32`` array ``(n_sequences, n_frames, canvas_size, canvas_size, 1)``
        in [0, 1].

    Raises:
        ValueError: ``digits`` is not a ``(n, h, w)`` stack that fits in the
            canvas, or a count is not a positive integer.
        FileNotFoundError: ``digits`` is a folder without MNIST files.

    Example:
        >>> from universal_models.data import load_mnist
        >>> images, _ = load_mnist("../shared/data/mnist")  # doctest: +SKIP
        >>> train = moving_mnist(images[:8000], 1000, seed=0)  # doctest: +SKIP
        >>> train.shape  # doctest: +SKIP
        (1000, 20, 64, 64, 1)
    """
    if isinstance(digits, (str, Path)):
        digits = load_mnist(digits)[0]
    digits = np.asarray(digits)
    if digits.ndim != 3 or len(digits) == 0:
        raise ValueError(
            f"digits must be a non-empty stack of images (n, height, width), got shape {digits.shape}; "
            "pass load_mnist(folder)[0] or the folder itself."
        )
    n_sequences = check_integer("n_sequences", n_sequences)
    n_frames = check_integer("n_frames", n_frames)
    n_digits = check_integer("n_digits", n_digits)
    canvas_size = check_integer("canvas_size", canvas_size)
    digit_height, digit_width = digits.shape[1:]
    if max(digit_height, digit_width) >= canvas_size:
        raise ValueError(
            f"canvas_size must be larger than the digits ({digit_height} x {digit_width}), got {canvas_size}."
        )
    scale = 255.0 if digits.dtype == np.uint8 or digits.max() > 1.0 else 1.0
    rng = np.random.default_rng(seed)
    travel = canvas_size - max(digit_height, digit_width)
    positions = bouncing_positions(rng, n_sequences, n_digits, n_frames, travel, step_length)
    choice = rng.integers(0, len(digits), size=(n_sequences, n_digits))
    canvas = np.zeros((n_sequences, n_frames, canvas_size, canvas_size), dtype=np.float32)
    for index in range(n_digits):
        sprites = digits[choice[:, index]].astype(np.float32) / scale
        _paste_max(canvas, sprites, positions[:, index])
    return canvas[..., None]


def _shape_sprite(kind: int, size: int) -> np.ndarray:
    """A ``size x size`` boolean mask of a circle (1), square (2) or triangle (3)."""
    rows, columns = np.mgrid[0:size, 0:size] + 0.5
    centre = size / 2
    if kind == 1:
        return (rows - centre) ** 2 + (columns - centre) ** 2 <= (0.48 * size) ** 2
    if kind == 2:
        margin = 0.05 * size
        return (rows >= margin) & (rows <= size - margin) & (columns >= margin) & (columns <= size - margin)
    # Upright isosceles triangle: apex at the top centre, base along the bottom.
    return np.abs(columns - centre) <= rows / 2


def moving_shapes(n_sequences: int, n_frames: int = 10, *, size: int = 64, n_shapes: int = 2,
                  shape_size: int | None = None, noise: float = 0.1, step_length: float = 0.1,
                  seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bouncing circles, squares and triangles with per-pixel labels.

    A recurrent segmentation dataset that needs no downloaded data: each
    sequence has ``n_shapes`` shapes of random kind and grey level (0.5 to 1)
    moving like Moving MNIST digits, on a background of Gaussian noise.
    Where shapes overlap, the image takes the brighter one and the mask the
    shape drawn last.

    Args:
        n_sequences: number of sequences.
        n_frames: frames per sequence.
        size: height and width of the frames.
        n_shapes: shapes per sequence.
        shape_size: side of a shape's bounding box; ``size // 4`` (at least 3)
            by default.
        noise: standard deviation of the added Gaussian noise.
        step_length: distance per frame as a fraction of the free travel.
        seed: seed of the random generator.

    Returns:
        ``(frames, masks)``: ``float32 (n, n_frames, size, size, 1)`` and
        ``int32 (n, n_frames, size, size)`` with labels 0 (background),
        1 (circle), 2 (square), 3 (triangle) (see :data:`SHAPE_CLASSES`).

    Raises:
        ValueError: a count is not a positive integer, ``shape_size`` does not
            fit in the frame, or ``noise`` is negative.

    Example:
        >>> frames, masks = moving_shapes(8, 4, size=16, seed=0)
        >>> frames.shape, masks.shape
        ((8, 4, 16, 16, 1), (8, 4, 16, 16))
    """
    n_sequences = check_integer("n_sequences", n_sequences)
    n_frames = check_integer("n_frames", n_frames)
    n_shapes = check_integer("n_shapes", n_shapes)
    size = check_integer("size", size)
    shape_size = max(size // 4, 3) if shape_size is None else check_integer("shape_size", shape_size)
    if shape_size >= size:
        raise ValueError(f"shape_size must be smaller than size ({size}), got {shape_size}.")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise!r}.")
    rng = np.random.default_rng(seed)
    positions = bouncing_positions(rng, n_sequences, n_shapes, n_frames, size - shape_size, step_length)
    kinds = rng.integers(1, len(SHAPE_CLASSES), size=(n_sequences, n_shapes))
    levels = rng.uniform(0.5, 1.0, size=(n_sequences, n_shapes)).astype(np.float32)
    sprites = np.stack([_shape_sprite(kind, shape_size) for kind in range(len(SHAPE_CLASSES))])
    frames = np.zeros((n_sequences, n_frames, size, size), dtype=np.float32)
    masks = np.zeros((n_sequences, n_frames, size, size), dtype=np.int32)
    for index in range(n_shapes):
        shape_masks = sprites[kinds[:, index]]
        _paste_max(frames, shape_masks * levels[:, index, None, None], positions[:, index])
        labelled = np.zeros_like(masks)
        _paste_max(labelled, shape_masks * kinds[:, index, None, None], positions[:, index])
        masks = np.where(labelled > 0, labelled, masks)
    frames += rng.normal(0.0, noise, frames.shape).astype(np.float32)
    return frames[..., None], masks
