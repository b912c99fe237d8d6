"""Our paper-width models against peer libraries, in one run: images/s and achieved GFLOP/s.

The peers are the PyTorch segmentation libraries the issue names:
segmentation_models.pytorch's ``Unet`` with ResNet-34 and ResNet-18 encoders
(random weights: nothing is downloaded) and MONAI's ``BasicUNet`` (2-D, its
default widths). Ours are the library's U-Net and SegNet at the papers' width
(64 base filters). Every model trains with Adam (1e-3) and cross-entropy on
two classes at 128 x 128 x 3, batch 16, and predicts the same batches; all
models run in turns in one process (``common.interleave``), medians of
``--runs``. The peers are timed as their users run them (NCHW tensors,
``F.cross_entropy`` on logits, ``torch.optim.Adam``; the same code as the
PyTorch twins in ``torch_reference.py``), ours through ``model.fit`` and
``model.predict`` on the torch backend.

FLOPs per image (2 per multiply-add, convolutions and matrix products) come
from PyTorch's ``FlopCounterMode`` for the peers and from
``common.keras_flops`` for ours, which ``torch_reference.py`` checks equal to
``FlopCounterMode`` on our models' twins. GFLOP/s is that count times
images/s: how much of the CPU each library turns into useful arithmetic.

The peer libraries are not dependencies of ours; install them beside it::

    pip install segmentation-models-pytorch monai
    KERAS_BACKEND=torch python benchmarks/peers.py --runs 3 --keep-memory

A peer whose package is missing is left out with a note.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from benchmarks import common, torch_reference  # noqa: E402


def _peer_builders(n_classes: int) -> dict:
    """name -> constructor of each peer model, for the peer packages that import."""
    builders = {}
    try:
        import segmentation_models_pytorch as smp

        for encoder in ("resnet34", "resnet18"):
            builders[f"smp Unet-{encoder}"] = (
                lambda encoder=encoder: smp.Unet(encoder, encoder_weights=None, in_channels=3, classes=n_classes))
    except ImportError as error:
        print(f"# segmentation_models_pytorch left out: {error}", file=sys.stderr)
    try:
        from monai.networks.nets import BasicUNet

        builders["MONAI BasicUNet"] = lambda: BasicUNet(spatial_dims=2, in_channels=3, out_channels=n_classes)
    except ImportError as error:
        print(f"# monai left out: {error}", file=sys.stderr)
    return builders


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1, help="batches per timed run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per model (median reported)")
    parser.add_argument("--ours", nargs="+", default=["unet", "segnet"], choices=sorted(torch_reference.TWINS))
    common.add_memory_option(parser)
    args = parser.parse_args(argv)
    allocator = common.apply_memory_option(args)
    import keras

    if keras.config.backend() != "torch":
        raise SystemExit("peers.py compares against PyTorch libraries: run it with KERAS_BACKEND=torch")
    print(common.machine_line(allocator))
    n_classes, count = 2, args.batch * args.steps
    images, labels = common.synthetic_batch(count, args.size, args.size, 3, n_classes)
    x = torch.from_numpy(images[:args.batch].transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(labels[:args.batch].astype("int64"))

    functions, flops, params, library = {}, {}, {}, {}
    for key in args.ours:
        model, _ = torch_reference.build_twins(key, args.size, n_classes=n_classes)
        name = f"ours: {key}" + (" (64 filters)" if key in ("unet", "segnet") else "")
        functions[f"{name}|train"], functions[f"{name}|infer"] = common.keras_runners(model, images, labels, args.batch)
        flops[name] = (common.keras_flops(model, (args.size, args.size), train=True),
                       common.keras_flops(model, (args.size, args.size)))
        params[name], library[name] = model.count_params(), f"universal-models (Keras {keras.__version__})"
    for name, build in _peer_builders(n_classes).items():
        torch.manual_seed(0)
        module = build()
        flops[name] = (torch_reference.reference_flops(module, x, y) / args.batch,
                       torch_reference.reference_flops(module, x) / args.batch)
        functions[f"{name}|train"], functions[f"{name}|infer"] = torch_reference._reference_runners(
            module, images, labels, args.steps, channels_last=False)
        params[name] = sum(p.numel() for p in module.parameters())
        library[name] = f"PyTorch {torch.__version__}"

    timings = common.interleave(functions, runs=args.runs)
    rows = []
    for name in flops:
        train_rate, infer_rate = count / timings[f"{name}|train"], count / timings[f"{name}|infer"]
        rows.append([name, library[name], f"{params[name] / 1e6:.1f} M",
                     f"{flops[name][0] / 1e9:.1f} / {flops[name][1] / 1e9:.1f}",
                     f"{train_rate:.2f}", f"**{train_rate * flops[name][0] / 1e9:.0f}**",
                     f"{infer_rate:.2f}", f"**{infer_rate * flops[name][1] / 1e9:.0f}**"])
        print(f"# {rows[-1]}", file=sys.stderr, flush=True)
    print(f"\n{args.size} x {args.size} x 3, 2 classes, batch {args.batch}, {args.steps} step(s) per run, "
          f"median of {args.runs} interleaved runs\n")
    print(common.markdown_table(
        ["model", "runs on", "params", "GFLOP per image, train step / inference", "train img/s", "train GFLOP/s",
         "infer img/s", "infer GFLOP/s"], rows))


if __name__ == "__main__":
    main()
