"""Layers shared by several models (all registered for safe loading)."""

from .depth_to_space import ICNR, DepthToSpace
from .initializers import BilinearUpsampling
from .ladder import GaussianCombinator, LadderBatchNormalization
from .pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from .spatial import CropToMatch, PadToMultiple
from .time import FoldTime, UnfoldTime

__all__ = [
    "BilinearUpsampling",
    "CropToMatch",
    "DepthToSpace",
    "FoldTime",
    "GaussianCombinator",
    "ICNR",
    "LadderBatchNormalization",
    "MaxPoolingWithArgmax2D",
    "MaxUnpooling2D",
    "PadToMultiple",
    "UnfoldTime",
]
