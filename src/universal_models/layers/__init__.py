"""Layers shared by several models (all registered for safe loading)."""

from .initializers import BilinearUpsampling
from .pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from .spatial import CropToMatch, PadToMultiple

__all__ = [
    "BilinearUpsampling",
    "CropToMatch",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "PadToMultiple",
]
