"""Data tools: generated datasets, folder datasets, MNIST and augmentation."""

from .mnist import load_mnist, read_idx
from .moving_mnist import moving_mnist, moving_shapes

__all__ = ["load_mnist", "moving_mnist", "moving_shapes", "read_idx"]
