"""One 3x3 convolution in PyTorch, forward and forward + backward, in the two memory layouts.

Keras' torch backend keeps images channels-last (NHWC): it hands PyTorch a
permuted view, which PyTorch treats as ``torch.channels_last`` memory, and a
kernel permuted from Keras' (h, w, in, out) layout. A hand-written PyTorch
model uses contiguous NCHW tensors and (out, in, h, w) kernels. Which is faster
depends on the CPU and on the layer's shape; this script measures both at the
shapes of a U-Net's levels, so the difference between our models and their
PyTorch twins in ``torch_reference.py`` can be read layer by layer.

    python benchmarks/conv_layout.py                 # U-Net levels at 128 x 128, batch 16
    python benchmarks/conv_layout.py --runs 10 --threads 1
    python benchmarks/conv_layout.py --grid          # both layouts as GraphModel's plan would run them

Prints a Markdown table of median milliseconds (interleaved runs). The default
table hands the NHWC convolution Keras' (h, w, in, out) kernel, permuted, as
Keras' own runner does. ``--grid`` compares the two layouts as
:class:`universal_models.GraphModel` runs them on torch, each with its kernel
stored in the layout its convolution reads (the plan moves kernels there), over
a grid of batch sizes, resolutions and widths: the evidence behind the plan
running every convolution channels-last.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks import common  # noqa: E402

#: (batch, height = width, in channels, out channels): the levels of a paper-width U-Net at 128 x 128
SHAPES = [(16, 128, 3, 64), (16, 128, 64, 64), (16, 64, 128, 128), (16, 32, 256, 256), (16, 16, 512, 512),
          (16, 8, 512, 1024)]


#: (batch, height = width, in channels, out channels) of ``--grid``
GRID = [(batch, size, channels, channels * (2 if size == 8 else 1))
        for batch in (16, 4) for size, channels in ((8, 512), (8, 256), (16, 512), (16, 256), (16, 128), (32, 256),
                                                    (32, 128), (32, 64), (64, 128), (64, 64), (64, 32), (128, 64),
                                                    (128, 16))]


def _runners(batch: int, size: int, in_channels: int, out_channels: int, channels_last: bool,
             matched_kernel: bool = False):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch, size, size, in_channels, generator=generator)  # NHWC, as Keras holds it
    kernel = torch.randn(3, 3, in_channels, out_channels, generator=generator) * 0.05  # Keras' layout
    gradient = torch.randn(batch, out_channels, size, size, generator=generator)
    if channels_last:  # what Keras' torch backend does: permuted views of NHWC data and HWIO kernels
        images.requires_grad_(True)
        if matched_kernel:  # stored (out, h, w, in): channels-last (out, in, h, w), as the plan stores it
            kernel = kernel.permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last).permute(2, 3, 1, 0)
        kernel.requires_grad_(True)
        gradient = gradient.contiguous(memory_format=torch.channels_last)

        def inputs():
            return images.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1)
    else:  # what a PyTorch user writes: contiguous NCHW data and OIHW kernels
        images_nchw = images.permute(0, 3, 1, 2).contiguous().requires_grad_(True)
        kernel_oihw = kernel.permute(3, 2, 0, 1).contiguous().requires_grad_(True)

        def inputs():
            return images_nchw, kernel_oihw

    def forward():
        with torch.no_grad():
            F.conv2d(*inputs(), padding=1)

    def forward_backward():
        F.conv2d(*inputs(), padding=1).backward(gradient)

    return forward, forward_backward


def grid_table(runs: int) -> str:
    """Both layouts over :data:`GRID`, each with its kernel stored in the layout its convolution reads."""
    rows = []
    for batch, size, in_channels, out_channels in GRID:
        functions = {}
        for layout, channels_last in (("NHWC", True), ("NCHW", False)):
            functions[layout] = _runners(batch, size, in_channels, out_channels, channels_last, matched_kernel=True)[1]
        times = common.interleave(functions, runs=runs)
        rows_per_channel = batch * size * size / in_channels
        faster = "NCHW" if times["NCHW"] < times["NHWC"] else "NHWC"
        rows.append([f"{batch} x {size}x{size}, {in_channels} -> {out_channels}", f"{rows_per_channel:g}",
                     f"{1e3 * times['NHWC']:.1f}", f"{1e3 * times['NCHW']:.1f}",
                     f"{times['NHWC'] / times['NCHW']:.2f}", faster])
        print(f"# {rows[-1]}", file=sys.stderr, flush=True)
    return common.markdown_table(
        ["convolution (3x3)", "batch x h x w / in channels", "forward + backward ms, NHWC",
         "forward + backward ms, NCHW", "NHWC / NCHW", "faster"], rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--grid", action="store_true", help="the grid of shapes behind the plan's layout rule")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")
    common.add_memory_option(parser)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("KERAS_BACKEND", "torch")
    print(common.machine_line(common.apply_memory_option(args)))
    if args.grid:
        print(grid_table(args.runs))
        return
    rows = []
    for batch, size, in_channels, out_channels in SHAPES:
        functions = {}
        for layout, channels_last in (("NHWC", True), ("NCHW", False)):
            forward, forward_backward = _runners(batch, size, in_channels, out_channels, channels_last)
            functions[(layout, "forward")] = forward
            functions[(layout, "train")] = forward_backward
        times = common.interleave(functions, runs=args.runs)
        row = [f"{batch} x {size}x{size}, {in_channels} -> {out_channels}"]
        for task in ("forward", "train"):
            ours, theirs = times[("NHWC", task)], times[("NCHW", task)]
            row += [f"{1e3 * ours:.1f}", f"{1e3 * theirs:.1f}", f"{theirs / ours:.2f}"]
        rows.append(row)
        print(f"# {row}", file=sys.stderr, flush=True)
    print(common.markdown_table(
        ["convolution", "forward ms, Keras layout (NHWC view)", "forward ms, NCHW", "NCHW / NHWC",
         "forward + backward ms, NHWC view", "forward + backward ms, NCHW", "NCHW / NHWC"], rows))


if __name__ == "__main__":
    main()
