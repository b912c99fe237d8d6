"""Memory layouts of image tensors on the PyTorch backend.

Keras keeps images channels-last, ``(N, H, W, C)``; its torch backend hands
PyTorch a permuted view, ``(N, C, H, W)`` in ``torch.channels_last`` memory.
PyTorch's kernels accept either memory layout, and which one is faster
depends on the operation and the shape (``benchmarks/conv_layout.py``): a
3x3 convolution at high resolution with few channels is up to 2.3 times
faster on channels-last memory, one at low resolution with many channels up
to 2.5 times faster on NCHW memory. What costs most is mixing the two: an
elementwise backward kernel that reads one tensor in each layout is several
times slower than one that reads a single layout. The helpers here change a
tensor's memory layout without changing its values or its logical shape, and
give its gradient back in the layout of the original tensor.
"""

from __future__ import annotations

#: A 3x3 convolution runs on NCHW memory when batch x height x width is at most this many
#: times its input channels (else channels-last). Measured on the project's Intel machine
#: (AVX-512, 2 cores) with ``benchmarks/conv_layout.py --grid``, forward plus backward: NCHW is
#: 1.07-2.5 times faster at or below this ratio (e.g. 16 x 8 x 8 x 512: 1.37 times), channels-last
#: 1.04-2.3 times faster above it (e.g. 16 x 32 x 32 x 256: 1.05 times).
CHANNELS_FIRST_ROWS_PER_CHANNEL = 8


def memory_format_of(tensor):
    """``torch.channels_last`` for a 4-D tensor in channels-last memory, else ``torch.contiguous_format``."""
    import torch

    if tensor.ndim == 4 and not tensor.is_contiguous() and tensor.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def prefers_channels_first(rows: int, in_channels: int) -> bool:
    """Whether a convolution over ``rows`` = batch x height x width positions and ``in_channels``
    input channels is faster on NCHW memory (see :data:`CHANNELS_FIRST_ROWS_PER_CHANNEL`)."""
    return rows <= CHANNELS_FIRST_ROWS_PER_CHANNEL * in_channels


_RELAYOUT = []


def _relayout_function():
    import torch

    class Relayout(torch.autograd.Function):
        """``tensor.contiguous(memory_format)`` whose gradient comes back in the input's layout."""

        @staticmethod
        def forward(ctx, tensor, memory_format):
            ctx.input_format = memory_format_of(tensor)
            if tensor.is_contiguous(memory_format=memory_format):
                return tensor.view_as(tensor)
            return tensor.contiguous(memory_format=memory_format)

        @staticmethod
        def backward(ctx, gradient):
            return gradient.contiguous(memory_format=ctx.input_format), None

    return Relayout


def relayout(tensor, memory_format):
    """``tensor`` (a 4-D NCHW-shaped torch tensor) in ``memory_format`` memory, same values.

    In backward, the gradient is handed back in the memory layout ``tensor``
    had, so the kernels before it read one layout. With ``memory_format`` the
    tensor's own layout this is an identity that only fixes the layout of the
    gradient (used after ``max_unpool2d``, whose backward returns NCHW memory).
    """
    if not _RELAYOUT:
        _RELAYOUT.append(_relayout_function())
    if not tensor.requires_grad:
        return tensor.contiguous(memory_format=memory_format)
    return _RELAYOUT[0].apply(tensor, memory_format)
