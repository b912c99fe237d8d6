"""Paired augmentation of images and masks with Keras 3's preprocessing layers.

Keras' image layers accept ``{"images": ..., "segmentation_masks": ...}`` and
apply one random transformation to both. Two things need care for masks that
hold class labels:

- ``RandomRotation`` (and other affine layers) resample masks with the
  *image's* interpolation, bilinear by default, which invents labels between
  two classes at every boundary. :class:`SegmentationRandomRotation` resamples
  masks with nearest-neighbour interpolation (and the image as configured).
- A layer called as ``layer(data)`` draws from its own ``SeedGenerator``: shared
  mutable state whose value depends on how many batches were drawn before,
  and on which worker thread got there first. :class:`PairedAugmentation`
  calls the same two layer methods (``get_random_transformation``, then
  ``transform_images`` / ``transform_segmentation_masks``) with a seed derived
  from the sample, so that augmentation is a pure function of ``(seed,
  epoch, batch)``: reproducible with any number of workers and after
  ``--resume``.

Random crops are not done here but by the patch sampler
(:class:`universal_models.data.PatchDataset`), in numpy, before any tensor is
made: Keras' ``RandomCrop`` draws one offset for a whole batch, falls back to a
centre crop when one side of the image equals the patch size, and resizes
(bilinearly) when an image is smaller than the patch, none of which suits masks.
"""

from __future__ import annotations

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="universal_models")
class SegmentationRandomRotation(keras.layers.RandomRotation):
    """``keras.layers.RandomRotation`` that keeps segmentation masks as labels.

    Images are rotated with ``interpolation`` (bilinear by default); the
    ``"segmentation_masks"`` of a ``{"images": ..., "segmentation_masks": ...}``
    input get the same rotation with nearest-neighbour interpolation, so they
    only contain labels that were in the input. Arguments are those of
    ``keras.layers.RandomRotation``.

    Example:
        >>> layer = SegmentationRandomRotation(0.1, seed=1)
        >>> out = layer({"images": np.zeros((2, 32, 32, 1), "float32"),
        ...              "segmentation_masks": np.zeros((2, 32, 32, 1), "float32")})
    """

    def transform_images(self, images, transformation, training=True):
        images = self.backend.cast(images, self.compute_dtype)
        if not training or transformation is None:
            return images
        return self._affine(images, transformation["rotation_matrix"], self.interpolation)

    def transform_segmentation_masks(self, segmentation_masks, transformation, training=True):
        masks = self.backend.cast(segmentation_masks, self.compute_dtype)
        if not training or transformation is None:
            return masks
        return self._affine(masks, transformation["rotation_matrix"], "nearest")

    def _affine(self, images, matrix, interpolation):
        if self.backend.name == "torch" and _torch_affine_supported(
                images, self.fill_mode, interpolation, self.data_format):
            return _torch_affine_transform(images, matrix, interpolation, self.fill_mode)
        return self.backend.image.affine_transform(
            images=images, transform=matrix, interpolation=interpolation, fill_mode=self.fill_mode,
            fill_value=self.fill_value, data_format=self.data_format,
        )


# Keras' fill modes and interpolations that torch's grid_sample computes the same way.
_GRID_SAMPLE_PADDING = {"reflect": "reflection", "nearest": "border"}


def _torch_affine_supported(images, fill_mode, interpolation, data_format) -> bool:
    return (
        fill_mode in _GRID_SAMPLE_PADDING
        and interpolation in ("nearest", "bilinear")
        and data_format == "channels_last"
        and len(images.shape) in (3, 4)
    )


def _torch_affine_transform(images, matrix, interpolation: str, fill_mode: str):
    """``keras.ops.image.affine_transform`` for projective-free transforms, with ``grid_sample``.

    Keras' torch backend resamples each image through a generic N-d
    ``map_coordinates`` that is about 100 times slower than the fused
    ``torch.nn.functional.grid_sample``; both sample the input at the same
    points with the same border rule (tested to agree to float rounding).
    ``matrix`` rows ``[a0, a1, a2, b0, b1, b2, c0, c1]`` map an output pixel
    ``(x, y)`` to the input point ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``
    (``c0 = c1 = 0`` for rotations).
    """
    import torch

    unbatched = len(images.shape) == 3
    if unbatched:
        images = images[None]
        matrix = matrix[None] if len(matrix.shape) == 1 else matrix
    batch, height, width, _ = images.shape
    matrix = matrix.to(images.dtype)
    rows = torch.arange(height, dtype=images.dtype, device=images.device)
    cols = torch.arange(width, dtype=images.dtype, device=images.device)
    y, x = torch.meshgrid(rows, cols, indexing="ij")
    a0, a1, a2, b0, b1, b2 = (matrix[:, i, None, None] for i in range(6))
    source_x = a0 * x + a1 * y + a2
    source_y = b0 * x + b1 * y + b2
    # grid_sample with align_corners=False: pixel i spans [-1 + 2i/W, -1 + 2(i+1)/W].
    grid = torch.stack([(2 * source_x + 1) / width - 1, (2 * source_y + 1) / height - 1], dim=-1)
    output = torch.nn.functional.grid_sample(
        images.permute(0, 3, 1, 2), grid, mode=interpolation,
        padding_mode=_GRID_SAMPLE_PADDING[fill_mode], align_corners=False,
    ).permute(0, 2, 3, 1)
    return output[0] if unbatched else output


class PairedAugmentation:
    """Random flips, rotations and intensity changes applied to images and masks.

    Geometric transforms (flips, rotation) move image and mask together;
    intensity transforms (brightness, contrast) change the image only. Masks
    stay integer labels (nearest-neighbour resampling). Works on batches of
    images ``(batch, height, width, channels)`` and of sequences folded as
    ``(batch, height, width, time * channels)`` (one transform per sequence).

    Args:
        flips: random horizontal and vertical flips (each with probability 1/2).
        rotation: largest rotation angle in degrees (0 disables it); borders
            are filled by reflection, in images and masks alike.
        brightness: largest brightness change, as a fraction of the [0, 1]
            range (0 disables it).
        contrast: largest relative contrast change (0 disables it).

    Raises:
        ValueError: a negative or out-of-range amount.

    Example:
        >>> augment = PairedAugmentation(rotation=20, brightness=0.1)
        >>> images, masks = augment(np.random.rand(4, 32, 32, 1).astype("float32"),
        ...                         np.zeros((4, 32, 32), "int32"), seed=7)
    """

    def __init__(self, *, flips: bool = True, rotation: float = 15.0, brightness: float = 0.1,
                 contrast: float = 0.2):
        if not 0 <= rotation <= 180:
            raise ValueError(f"rotation must be an angle in degrees in [0, 180], got {rotation!r}.")
        if not 0 <= brightness <= 1:
            raise ValueError(f"brightness must be in [0, 1] (fraction of the intensity range), got {brightness!r}.")
        if not 0 <= contrast < 1:
            raise ValueError(f"contrast must be in [0, 1), got {contrast!r}.")
        self.flips, self.rotation, self.brightness, self.contrast = flips, rotation, brightness, contrast
        self.layers: list[keras.layers.Layer] = []
        if flips:
            self.layers += [keras.layers.RandomFlip("horizontal"), keras.layers.RandomFlip("vertical")]
        if rotation:
            self.layers.append(SegmentationRandomRotation(rotation / 360.0, fill_mode="reflect"))
        if brightness:
            self.layers.append(keras.layers.RandomBrightness(brightness, value_range=(0.0, 1.0)))
        if contrast:
            self.layers.append(keras.layers.RandomContrast(contrast, value_range=(0.0, 1.0)))

    def get_config(self) -> dict:
        """The arguments, to rebuild an equal augmentation."""
        return {"flips": self.flips, "rotation": self.rotation, "brightness": self.brightness,
                "contrast": self.contrast}

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"PairedAugmentation({arguments})"

    def __call__(self, images: np.ndarray, masks: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Augment a batch; the same ``seed`` gives the same result (on one backend).

        Args:
            images: ``float32 (batch, height, width, channels)`` in [0, 1].
            masks: ``int (batch, height, width)`` or ``(batch, height, width, k)``
                labels.
            seed: integer seed of this batch.

        Returns:
            ``(images float32, masks int32)`` with the input shapes.
        """
        if not self.layers:
            return images, masks
        squeeze = masks.ndim == images.ndim - 1
        data = {
            "images": keras.ops.convert_to_tensor(images, dtype="float32"),
            "segmentation_masks": keras.ops.convert_to_tensor(
                masks[..., None] if squeeze else masks, dtype="float32"),
        }
        generator = keras.random.SeedGenerator(int(seed) % (2**31 - 1))
        for layer in self.layers:
            transformation = layer.get_random_transformation(data, training=True, seed=generator)
            data["images"] = layer.transform_images(data["images"], transformation, training=True)
            data["segmentation_masks"] = layer.transform_segmentation_masks(
                data["segmentation_masks"], transformation, training=True)
        out_images = np.clip(keras.ops.convert_to_numpy(data["images"]), 0.0, 1.0).astype(np.float32)
        out_masks = np.rint(keras.ops.convert_to_numpy(data["segmentation_masks"])).astype(np.int32)
        return out_images, (out_masks[..., 0] if squeeze else out_masks)
