"""Data tools: generated datasets, folder datasets, MNIST and augmentation."""

from .mnist import load_mnist, read_idx

__all__ = ["load_mnist", "read_idx"]
