"""Recurrent (ConvLSTM) models for image sequences: segmentation and next-frame prediction."""

from .lstm_full import build_lstm_full
from .lstm_next_frame import build_lstm_next_frame
from .lstm_shallow import build_lstm_shallow
from .lstm_unet import build_lstm_unet

__all__ = ["build_lstm_full", "build_lstm_next_frame", "build_lstm_shallow", "build_lstm_unet"]
