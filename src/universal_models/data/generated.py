"""Built-in generated datasets: shapes, moving shapes and particles.

Everything here is plain numpy, vectorised over images and shapes, seedable and
free of downloads, so a model can be tried, tested or demonstrated anywhere.
Images are ``float32`` in ``[0, 1]`` with shape ``(n, height, width, channels)``
(sequences ``(n, timesteps, height, width, channels)``); masks are ``int32``
class indices with shape ``(n, height, width)`` (sequences
``(n, timesteps, height, width)``), class 0 being the background.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .._validation import check_integer

#: Class names of :func:`make_shapes` and :func:`make_moving_shapes`, by label.
SHAPE_CLASSES = ("background", "circle", "rectangle", "triangle")

# Images generated per chunk: bounds the (chunk, shapes, height, width) temporaries.
_CHUNK_PIXELS = 4_000_000


def _check_shape_arguments(function: str, counts: dict, height: int, width: int, channels: int) -> None:
    for name, value in {**counts, "height": height, "width": width}.items():
        check_integer(name, value)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (greyscale) or 3 (RGB), got {channels!r}.")
    if min(height, width) < 8:
        raise ValueError(f"{function} needs images of at least 8 x 8 pixels, got {height} x {width}.")


def _upsample_bilinear(coarse: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of ``(n, gh, gw)`` to ``(n, height, width)`` (separable, vectorised)."""
    grid_height, grid_width = coarse.shape[1:]
    rows = np.linspace(0, grid_height - 1, height)
    cols = np.linspace(0, grid_width - 1, width)
    row0 = np.minimum(rows.astype(int), grid_height - 2)
    col0 = np.minimum(cols.astype(int), grid_width - 2)
    row_weight = (rows - row0)[None, :, None]
    col_weight = (cols - col0)[None, None, :]
    top = coarse[:, row0, :]
    bottom = coarse[:, row0 + 1, :]
    vertical = top * (1 - row_weight) + bottom * row_weight
    return vertical[:, :, col0] * (1 - col_weight) + vertical[:, :, col0 + 1] * col_weight


def _texture(rng: np.random.Generator, n: int, height: int, width: int, cell: int = 8) -> np.ndarray:
    """Smooth random texture in [0, 1]: coarse noise (one value per ``cell`` pixels) upsampled."""
    coarse = rng.random((n, max(height // cell, 1) + 2, max(width // cell, 1) + 2))
    return _upsample_bilinear(coarse, height, width)


def _inside(kind, center_y, center_x, radius, aspect, angle, height: int, width: int) -> np.ndarray:
    """Pixels inside one shape per image; every argument has shape ``(m,)``.

    ``kind`` is 0 (no shape), 1 (circle of ``radius``), 2 (rectangle of half
    sides ``radius`` and ``radius * aspect``, rotated by ``angle``) or 3
    (equilateral triangle of circumradius ``radius``, rotated by ``angle``).
    Returns ``(m, height, width)`` booleans.
    """
    yy = np.arange(height, dtype=np.float32)[None, :, None]
    xx = np.arange(width, dtype=np.float32)[None, None, :]
    dy = yy - center_y[:, None, None]
    dx = xx - center_x[:, None, None]
    r = radius[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    along = dx * cos + dy * sin
    across = -dx * sin + dy * cos
    circle = dx * dx + dy * dy <= r * r
    rectangle = (np.abs(along) <= r) & (np.abs(across) <= r * aspect[:, None, None])
    # Equilateral triangle of circumradius r: inside its three edges (inradius r / 2).
    triangle = np.ones_like(circle)
    for k in range(3):
        normal = 2.0 * np.pi * k / 3.0
        triangle &= along * np.cos(normal) + across * np.sin(normal) <= r / 2
    kind = kind[:, None, None]
    return np.where(kind == 1, circle, np.where(kind == 2, rectangle, (kind == 3) & triangle))


def _paint(rng, kinds, center_y, center_x, radius, aspect, angle, height, width, colours, background):
    """Draw shapes slot by slot (later slots on top) onto ``background``.

    Shape arguments have shape ``(m, slots)``, ``colours`` ``(m, slots,
    channels)``, ``background`` ``(m, height, width, channels)``. Returns
    ``(images, labels)``.
    """
    images = background.copy()
    labels = np.zeros(background.shape[:3], dtype=np.int32)
    # Shapes are coloured and modulated by a fine texture, so that they are
    # found by their outline, not by one grey level.
    shade = (0.85 + 0.15 * _texture(rng, kinds.shape[0], height, width, cell=4))[..., None]
    for slot in range(kinds.shape[1]):
        inside = _inside(kinds[:, slot], center_y[:, slot], center_x[:, slot], radius[:, slot],
                         aspect[:, slot], angle[:, slot], height, width)
        labels = np.where(inside, kinds[:, slot, None, None], labels)
        fill = colours[:, slot, None, None, :] * shade
        images = np.where(inside[..., None], fill, images)
    return images, labels


def _noise_and_clip(rng, images: np.ndarray, noise: float) -> np.ndarray:
    if noise:
        images = images + rng.normal(0.0, noise, images.shape)
    return np.clip(images, 0.0, 1.0).astype(np.float32)


def _shape_parameters(rng, m: int, max_shapes: int, min_shapes: int, size: int):
    """Random kinds, radii, aspects, angles and colours for ``m`` images of ``max_shapes`` slots."""
    count = rng.integers(min_shapes, max_shapes + 1, size=(m, 1))
    kinds = rng.integers(1, 4, size=(m, max_shapes)) * (np.arange(max_shapes)[None, :] < count)
    radius = rng.uniform(0.09, 0.2, size=(m, max_shapes)) * size
    aspect = rng.uniform(0.45, 1.0, size=(m, max_shapes))
    angle = rng.uniform(0.0, 2.0 * np.pi, size=(m, max_shapes))
    return kinds, radius, aspect, angle


def _colours(rng, m: int, slots: int, channels: int) -> np.ndarray:
    """Shape colours, brighter on average than the background but overlapping it."""
    if channels == 1:
        return rng.uniform(0.45, 1.0, size=(m, slots, 1))
    return rng.uniform(0.2, 1.0, size=(m, slots, 3))


def _backgrounds(rng, m: int, height: int, width: int, channels: int) -> np.ndarray:
    texture = _texture(rng, m, height, width)
    if channels == 1:
        return (0.1 + 0.4 * texture)[..., None]
    tint = rng.uniform(0.3, 1.0, size=(m, 1, 1, 3))
    return (0.05 + 0.45 * texture[..., None]) * tint


def _chunks(n: int, pixels_per_item: int):
    step = max(1, _CHUNK_PIXELS // max(pixels_per_item, 1))
    for start in range(0, n, step):
        yield start, min(n, start + step)


def make_shapes(
    n: int,
    height: int = 64,
    width: int = 64,
    *,
    channels: int = 1,
    max_shapes: int = 4,
    noise: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Circles, rectangles and triangles on a textured background.

    A multi-class segmentation task (4 classes: background 0, circle 1,
    rectangle 2, triangle 3; see :data:`SHAPE_CLASSES`) that needs the shape
    of an object, not only its brightness: shape colours overlap the
    background's range, shapes are rotated, sized 9-20 % of the image and may
    overlap (the one drawn last is on top, in image and mask alike).

    Args:
        n: number of images.
        height, width: image size in pixels (>= 8).
        channels: 1 (greyscale) or 3 (RGB: random colours and tinted background).
        max_shapes: at most this many shapes per image (at least one).
        noise: standard deviation of the added Gaussian pixel noise.
        seed: the same seed gives the same images on every machine.

    Returns:
        ``(images, masks)``: ``float32 (n, height, width, channels)`` in [0, 1]
        and ``int32 (n, height, width)`` labels in ``[0, 4)``.

    Raises:
        ValueError: a non-positive count or size, or ``channels`` not 1 or 3.

    Example:
        >>> images, masks = make_shapes(8, 64, 64, seed=1)
        >>> images.shape, masks.shape, int(masks.max()) <= 3
        ((8, 64, 64, 1), (8, 64, 64), True)
    """
    _check_shape_arguments("make_shapes", {"n": n, "max_shapes": max_shapes}, height, width, channels)
    rng = np.random.default_rng(seed)
    images = np.empty((n, height, width, channels), dtype=np.float32)
    masks = np.empty((n, height, width), dtype=np.int32)
    size = min(height, width)
    for start, stop in _chunks(n, height * width * max_shapes):
        m = stop - start
        kinds, radius, aspect, angle = _shape_parameters(rng, m, max_shapes, 1, size)
        margin = 0.5 * radius
        center_y = rng.uniform(margin, height - margin)
        center_x = rng.uniform(margin, width - margin)
        colours = _colours(rng, m, max_shapes, channels)
        background = _backgrounds(rng, m, height, width, channels)
        chunk_images, chunk_masks = _paint(
            rng, kinds, center_y, center_x, radius, aspect, angle, height, width, colours, background
        )
        images[start:stop] = _noise_and_clip(rng, chunk_images, noise)
        masks[start:stop] = chunk_masks
    return images, masks


def _bounce(start: np.ndarray, velocity: np.ndarray, low: np.ndarray, high: np.ndarray, times: np.ndarray):
    """Positions of points moving at constant speed and bouncing between ``low`` and ``high``."""
    span = np.maximum(high - low, 1e-6)
    travelled = (start - low)[..., None] + velocity[..., None] * times
    phase = np.mod(travelled, 2 * span[..., None])
    return low[..., None] + span[..., None] - np.abs(phase - span[..., None])


def make_moving_shapes(
    n: int,
    timesteps: int = 8,
    height: int = 64,
    width: int = 64,
    *,
    channels: int = 1,
    max_shapes: int = 3,
    speed: float = 2.0,
    noise: float = 0.05,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sequences of shapes that glide, rotate and bounce off the borders.

    The classes are those of :func:`make_shapes`. Each shape keeps its colour
    and size and moves with a constant velocity (``speed`` pixels per frame on
    average, in a random direction) and angular velocity; it bounces off the
    image borders. The background texture is fixed per sequence, the pixel
    noise is new in every frame. For recurrent segmentation models
    (``(batch, time, height, width, channels)`` inputs).

    Args:
        n: number of sequences.
        timesteps: frames per sequence.
        height, width: frame size (>= 8).
        channels: 1 or 3.
        max_shapes: at most this many shapes per sequence (at least one).
        speed: mean speed in pixels per frame.
        noise: standard deviation of the per-frame Gaussian noise.
        seed: the same seed gives the same sequences.

    Returns:
        ``(images, masks)``: ``float32 (n, timesteps, height, width, channels)``
        in [0, 1] and ``int32 (n, timesteps, height, width)``.

    Raises:
        ValueError: non-positive counts or sizes, ``channels`` not 1 or 3.

    Example:
        >>> frames, masks = make_moving_shapes(2, timesteps=5, height=32, width=32)
        >>> frames.shape, masks.shape
        ((2, 5, 32, 32, 1), (2, 5, 32, 32))
    """
    _check_shape_arguments("make_moving_shapes", {"n": n, "timesteps": timesteps, "max_shapes": max_shapes},
                           height, width, channels)
    if speed < 0:
        raise ValueError(f"speed must be >= 0 pixels per frame, got {speed!r}.")
    rng = np.random.default_rng(seed)
    images = np.empty((n, timesteps, height, width, channels), dtype=np.float32)
    masks = np.empty((n, timesteps, height, width), dtype=np.int32)
    size = min(height, width)
    times = np.arange(timesteps, dtype=np.float64)
    for start, stop in _chunks(n, timesteps * height * width * max_shapes):
        m = stop - start
        kinds, radius, aspect, angle0 = _shape_parameters(rng, m, max_shapes, 1, size)
        margin = 0.5 * radius
        direction = rng.uniform(0.0, 2.0 * np.pi, size=(m, max_shapes))
        magnitude = speed * rng.uniform(0.5, 1.5, size=(m, max_shapes))
        center_y = _bounce(rng.uniform(margin, height - margin), magnitude * np.sin(direction),
                           margin, height - margin, times)
        center_x = _bounce(rng.uniform(margin, width - margin), magnitude * np.cos(direction),
                           margin, width - margin, times)
        angle = angle0[..., None] + rng.uniform(-0.15, 0.15, size=(m, max_shapes))[..., None] * times
        colours = _colours(rng, m, max_shapes, channels)
        background = _backgrounds(rng, m, height, width, channels)

        def frames(array):  # (m, slots, t) -> (m * t, slots), frame-major within a sequence
            return np.moveaxis(array, -1, 1).reshape(m * timesteps, max_shapes)

        def repeat(array):  # (m, slots) -> (m * t, slots)
            return np.repeat(array, timesteps, axis=0)

        chunk_images, chunk_masks = _paint(
            rng, repeat(kinds), frames(center_y), frames(center_x), repeat(radius), repeat(aspect), frames(angle),
            height, width, np.repeat(colours, timesteps, axis=0), np.repeat(background, timesteps, axis=0),
        )
        images[start:stop] = _noise_and_clip(rng, chunk_images, noise).reshape(m, timesteps, height, width, channels)
        masks[start:stop] = chunk_masks.reshape(m, timesteps, height, width)
    return images, masks


def make_particles(
    n: int,
    height: int = 64,
    width: int = 64,
    *,
    n_particle_classes: int = 3,
    max_particles: int = 24,
    radius: float = 2.5,
    attribute: str = "intensity",
    noise: float = 0.05,
    seed: int = 0,
    return_particles: bool = False,
):
    """Small blobs, each with a position and a class given by one attribute.

    The use case of the original project: find particles and tell an attribute
    of each (here its class, ``1 .. n_particle_classes``) from the image. With
    ``attribute="intensity"`` a particle's peak brightness encodes its class
    (evenly spaced levels, with some jitter); with ``attribute="size"`` its
    radius does (``radius`` times 0.7 ... 1.6). Each particle is a Gaussian blob;
    its mask is the disc of its radius labelled with its class (the particle
    drawn later wins where two overlap); background is 0.

    Args:
        n: number of images.
        height, width: image size.
        n_particle_classes: number of particle classes (the mask has this many
            plus one labels).
        max_particles: at most this many particles per image (at least one).
        radius: base particle radius in pixels.
        attribute: ``"intensity"`` or ``"size"``.
        noise: standard deviation of the Gaussian pixel noise.
        seed: the same seed gives the same images.
        return_particles: also return the particles.

    Returns:
        ``(images, masks)`` as :func:`make_shapes` (``float32 (n, h, w, 1)``,
        ``int32 (n, h, w)`` in ``[0, n_particle_classes]``), and with
        ``return_particles=True`` a third element: a list of ``n`` arrays
        ``(particles, 3)`` of ``[y, x, class]`` rows.

    Raises:
        ValueError: non-positive counts or sizes, a non-positive radius or an
            unknown attribute.

    Example:
        >>> images, masks, particles = make_particles(4, 48, 48, return_particles=True)
        >>> particles[0].shape[1], int(masks.max()) <= 3
        (3, True)
    """
    for name, value in (("n", n), ("height", height), ("width", width),
                        ("n_particle_classes", n_particle_classes), ("max_particles", max_particles)):
        check_integer(name, value)
    if attribute not in ("intensity", "size"):
        raise ValueError(f"attribute must be 'intensity' or 'size', got {attribute!r}.")
    if not radius > 0:
        raise ValueError(f"radius must be > 0 pixels, got {radius!r}.")
    rng = np.random.default_rng(seed)
    images = np.empty((n, height, width, 1), dtype=np.float32)
    masks = np.empty((n, height, width), dtype=np.int32)
    particles = []
    yy = np.arange(height, dtype=np.float32)[None, :, None]
    xx = np.arange(width, dtype=np.float32)[None, None, :]
    for start, stop in _chunks(n, height * width * max_particles):
        m = stop - start
        count = rng.integers(1, max_particles + 1, size=m)
        classes = rng.integers(1, n_particle_classes + 1, size=(m, max_particles))
        active = np.arange(max_particles)[None, :] < count[:, None]
        center_y = rng.uniform(radius, height - radius, size=(m, max_particles))
        center_x = rng.uniform(radius, width - radius, size=(m, max_particles))
        if attribute == "intensity":
            peak = 0.25 + 0.75 * classes / n_particle_classes + rng.uniform(-0.04, 0.04, size=classes.shape)
            radii = np.full(classes.shape, float(radius))
        else:
            peak = rng.uniform(0.7, 0.9, size=classes.shape)
            scale = 0.7 + 0.9 * (classes - 1) / max(n_particle_classes - 1, 1)
            radii = radius * scale
        chunk_images = 0.08 + 0.12 * _texture(rng, m, height, width)
        chunk_masks = np.zeros((m, height, width), dtype=np.int32)
        for slot in range(max_particles):
            on = active[:, slot, None, None]
            distance2 = (yy - center_y[:, slot, None, None]) ** 2 + (xx - center_x[:, slot, None, None]) ** 2
            r = radii[:, slot, None, None]
            blob = peak[:, slot, None, None] * np.exp(-distance2 / (2 * (0.6 * r) ** 2))
            chunk_images = np.where(on, np.maximum(chunk_images, blob), chunk_images)
            chunk_masks = np.where(on & (distance2 <= r * r), classes[:, slot, None, None], chunk_masks)
        images[start:stop] = _noise_and_clip(rng, chunk_images[..., None], noise)
        masks[start:stop] = chunk_masks
        for index in range(m):
            keep = active[index]
            particles.append(np.stack([center_y[index, keep], center_x[index, keep],
                                       classes[index, keep].astype(np.float64)], axis=1))
    if return_particles:
        return images, masks, particles
    return images, masks


@dataclass(frozen=True)
class GeneratedDataset:
    """A named built-in dataset, as the ``umodels`` command knows it."""

    name: str
    n_classes: int
    sequence: bool
    description: str
    make: Callable[..., tuple[np.ndarray, np.ndarray]]


#: Built-in generated datasets by name (``umodels train --data shapes``).
GENERATED_DATASETS: dict[str, GeneratedDataset] = {
    "shapes": GeneratedDataset(
        "shapes", 4, False, "circles, rectangles and triangles on textured noise (4 classes)", make_shapes),
    "particles": GeneratedDataset(
        "particles", 4, False, "small blobs whose brightness gives one of 3 classes (4 labels)", make_particles),
    "moving_shapes": GeneratedDataset(
        "moving_shapes", 4, True, "sequences of moving, rotating shapes with masks (4 classes)", make_moving_shapes),
}
