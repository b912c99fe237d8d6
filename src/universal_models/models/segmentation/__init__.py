"""Segmentation models: TestNet, U-Net, SegNet, FCN."""

from .fcn import build_fcn8, build_fcn16, build_fcn32
from .segnet import build_segnet, build_segnet_shallow
from .testnet import build_testnet
from .unet import build_unet, build_unet_shallow

__all__ = [
    "build_fcn8",
    "build_fcn16",
    "build_fcn32",
    "build_segnet",
    "build_segnet_shallow",
    "build_testnet",
    "build_unet",
    "build_unet_shallow",
]
