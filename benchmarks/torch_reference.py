"""The library's segmentation models written directly in PyTorch, and the
interleaved speed comparison against them.

Each ``Reference*`` module below is the architecture of the Keras model of the
same name, layer for layer: same convolutions (no bias before batch norm),
same batch-norm settings (epsilon 1e-3, momentum 0.99 in Keras' convention),
same pooling, upsampling and classifier. The modules are named after the Keras
layers (``encoder1_1.conv`` <-> ``encoder1_1_conv``), so
:func:`copy_keras_weights` can load a Keras model's weights into its twin, and
:func:`check_twins` asserts that parameter counts are equal and that both give
the same outputs. The reference is written as a PyTorch user would write it:
NCHW tensors, in-place ReLU, ``nn.CrossEntropyLoss`` on logits,
``torch.optim.Adam``.

Run (torch backend only; writes a Markdown table to stdout)::

    KERAS_BACKEND=torch python benchmarks/torch_reference.py            # short default
    KERAS_BACKEND=torch python benchmarks/torch_reference.py --models unet16 unet segnet \\
        --size 128 --batch 16 --runs 5

FLOPs are counted on the reference with ``torch.utils.flop_counter.FlopCounterMode``
(2 per multiply-add; convolutions and matrix products only), which
:func:`benchmarks.common.keras_flops` reproduces from the Keras model alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks import common  # noqa: E402

#: Keras BatchNormalization defaults, in PyTorch's convention.
BN_EPSILON = 1e-3
BN_MOMENTUM = 0.01  # Keras momentum 0.99


class ConvBNAct(nn.Module):
    """3x3 (or ``kernel_size``) convolution, batch norm, ReLU: ``conv_bn_act`` in the library."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, batch_norm: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not batch_norm)
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPSILON, momentum=BN_MOMENTUM) if batch_norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True)


class _Twin(nn.Module):
    """Base class: modules are added under the Keras layer-name prefixes."""

    def stack(self, name: str, in_channels: int, out_channels: int, n_convs: int, **kwargs) -> int:
        for index in range(1, n_convs + 1):
            self.add_module(f"{name}_{index}", ConvBNAct(in_channels, out_channels, **kwargs))
            in_channels = out_channels
        return out_channels

    def run_stack(self, name: str, n_convs: int, x: torch.Tensor) -> torch.Tensor:
        for index in range(1, n_convs + 1):
            x = getattr(self, f"{name}_{index}")(x)
        return x


class ReferenceUNet(_Twin):
    """U-Net (Ronneberger et al. 2015) as ``universal_models`` builds it (transposed-conv upsampling)."""

    def __init__(self, in_channels: int, n_classes: int, base_filters: int = 64, depth: int = 4):
        super().__init__()
        self.depth = depth
        channels = in_channels
        for level in range(depth):
            channels = self.stack(f"encoder{level + 1}", channels, base_filters * 2**level, 2)
        channels = self.stack("bottleneck", channels, base_filters * 2**depth, 2)
        for level in reversed(range(depth)):
            filters = base_filters * 2**level
            self.add_module(f"decoder{level + 1}_upconv", nn.ConvTranspose2d(channels, filters, 2, stride=2))
            channels = self.stack(f"decoder{level + 1}", 2 * filters, filters, 2)
        self.classifier_conv = nn.Conv2d(channels, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level in range(self.depth):
            x = self.run_stack(f"encoder{level + 1}", 2, x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.run_stack("bottleneck", 2, x)
        for level in reversed(range(self.depth)):
            x = getattr(self, f"decoder{level + 1}_upconv")(x)
            x = torch.cat([skips[level], x], dim=1)
            x = self.run_stack(f"decoder{level + 1}", 2, x)
        return self.classifier_conv(x)


VGG16_CONVS = (2, 2, 3, 3, 3)


def _vgg_widths(base_filters: int, n_blocks: int) -> list[int]:
    return [base_filters * min(2**index, 8) for index in range(n_blocks)]


class ReferenceSegNet(_Twin):
    """SegNet (Badrinarayanan et al. 2015) with ``max_pool2d(return_indices=True)`` and ``max_unpool2d``."""

    def __init__(self, in_channels: int, n_classes: int, base_filters: int = 64, n_blocks: int = 5):
        super().__init__()
        self.n_blocks = n_blocks
        widths = _vgg_widths(base_filters, n_blocks)
        channels = in_channels
        for block in range(n_blocks):
            channels = self.stack(f"encoder{block + 1}", channels, widths[block], VGG16_CONVS[block])
        for block in reversed(range(n_blocks)):
            out_filters = widths[block - 1] if block > 0 else widths[0]
            channels = self.stack(f"decoder{block + 1}", channels, widths[block], VGG16_CONVS[block] - 1)
            channels = self.stack(f"decoder{block + 1}_out", channels, out_filters, 1)
        self.classifier_conv = nn.Conv2d(channels, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        indices = []
        for block in range(self.n_blocks):
            x = self.run_stack(f"encoder{block + 1}", VGG16_CONVS[block], x)
            x, block_indices = F.max_pool2d(x, 2, return_indices=True)
            indices.append(block_indices)
        for block in reversed(range(self.n_blocks)):
            x = F.max_unpool2d(x, indices[block], 2)
            x = self.run_stack(f"decoder{block + 1}", VGG16_CONVS[block] - 1, x)
            x = self.run_stack(f"decoder{block + 1}_out", 1, x)
        return self.classifier_conv(x)


class ReferenceTestNet(_Twin):
    """TestNet: three conv-BN-ReLU + max-pool blocks down, three nearest-upsample + conv blocks up."""

    def __init__(self, in_channels: int, n_classes: int, base_filters: int = 16):
        super().__init__()
        widths = [base_filters, base_filters * 2, base_filters * 4]
        channels = in_channels
        for block, filters in enumerate(widths, start=1):
            channels = self.stack(f"encoder{block}", channels, filters, 1)
        for block, filters in zip((3, 2, 1), reversed(widths)):
            channels = self.stack(f"decoder{block}", channels, filters, 1)
        self.classifier_conv = nn.Conv2d(channels, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in (1, 2, 3):
            x = F.max_pool2d(self.run_stack(f"encoder{block}", 1, x), 2)
        for block in (3, 2, 1):
            x = self.run_stack(f"decoder{block}", 1, F.interpolate(x, scale_factor=2, mode="nearest"))
        return self.classifier_conv(x)


class ReferenceFCN8(_Twin):
    """FCN-8s (Long et al. 2015) on a batch-normalised VGG16, as the library builds it."""

    def __init__(self, in_channels: int, n_classes: int, base_filters: int = 64, fc_filters: int = 4096,
                 dropout: float = 0.5):
        super().__init__()
        widths = _vgg_widths(base_filters, 5)
        channels = in_channels
        for block in range(5):
            channels = self.stack(f"block{block + 1}", channels, widths[block], VGG16_CONVS[block])
        self.fc6 = ConvBNAct(channels, fc_filters, kernel_size=7)
        self.fc7 = ConvBNAct(fc_filters, fc_filters, kernel_size=1)
        self.dropout = dropout
        self.score_fr = nn.Conv2d(fc_filters, n_classes, 1)
        self.score_pool4 = nn.Conv2d(widths[3], n_classes, 1)
        self.score_pool3 = nn.Conv2d(widths[2], n_classes, 1)
        self.upscore2 = nn.ConvTranspose2d(n_classes, n_classes, 4, stride=2, padding=1, bias=False)
        self.upscore_pool4 = nn.ConvTranspose2d(n_classes, n_classes, 4, stride=2, padding=1, bias=False)
        self.upscore8 = nn.ConvTranspose2d(n_classes, n_classes, 16, stride=8, padding=4, bias=False)
        self.upscore8.weight.requires_grad_(False)  # fixed bilinear interpolation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pools = []
        for block in range(5):
            x = F.max_pool2d(self.run_stack(f"block{block + 1}", VGG16_CONVS[block], x), 2)
            pools.append(x)
        x = F.dropout(self.fc6(x), self.dropout, self.training)
        x = F.dropout(self.fc7(x), self.dropout, self.training)
        x = self.upscore2(self.score_fr(x)) + self.score_pool4(pools[3])
        x = self.upscore_pool4(x) + self.score_pool3(pools[2])
        return self.upscore8(x)


#: name -> (library model name, library options, reference constructor)
TWINS: dict[str, tuple[str, dict, Callable[..., nn.Module]]] = {
    "testnet": ("testnet", {}, lambda c, n: ReferenceTestNet(c, n)),
    "unet16": ("unet", {"base_filters": 16}, lambda c, n: ReferenceUNet(c, n, base_filters=16)),
    "unet": ("unet", {}, lambda c, n: ReferenceUNet(c, n)),
    "segnet": ("segnet", {}, lambda c, n: ReferenceSegNet(c, n)),
    "segnet16": ("segnet", {"base_filters": 16}, lambda c, n: ReferenceSegNet(c, n, base_filters=16)),
    "fcn8": ("fcn8", {"fc_filters": 1024}, lambda c, n: ReferenceFCN8(c, n, fc_filters=1024)),
}


def build_twins(key: str, size: int, channels: int = 3, n_classes: int = 2, logits: bool = False):
    """The library model ``key`` (see :data:`TWINS`) and its PyTorch twin with the same weights.

    ``logits=True`` builds the Keras model without its output activation.
    Returns ``(keras_model, reference_module)``.
    """
    import universal_models as um

    name, options, make = TWINS[key]
    if logits:
        options = {**options, "output_activation": None}
    model, _, _ = um.get_model(name, size, size, channels, n_classes, **options)
    reference = make(channels, n_classes)
    copy_keras_weights(model, reference)
    return model, reference


def _keras_layer_name(module_path: str) -> str:
    return module_path.replace(".", "_")


def copy_keras_weights(model, reference: nn.Module) -> None:
    """Load the Keras model's weights into the reference (layer names matched).

    Raises ``ValueError`` if a layer with weights has no twin or shapes differ.
    """
    keras_layers = {layer.name: layer for layer in model.layers if layer.weights}
    used = set()
    with torch.no_grad():
        for path, module in reference.named_modules():
            if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d)):
                continue
            name = _keras_layer_name(path)
            if name not in keras_layers:
                raise ValueError(f"reference layer {path!r} has no Keras twin named {name!r}")
            used.add(name)
            weights = [np.asarray(w) for w in keras_layers[name].get_weights()]
            if isinstance(module, nn.BatchNorm2d):
                targets = [module.weight, module.bias, module.running_mean, module.running_var]
                sources = weights
            else:
                # Keras kernels are (h, w, in, out) for Conv2D and (h, w, out, in)
                # for Conv2DTranspose; PyTorch wants (out, in, h, w) and (in, out, h, w).
                sources = [weights[0].transpose(3, 2, 0, 1)] + weights[1:]
                targets = [module.weight] + ([module.bias] if module.bias is not None else [])
            if len(sources) != len(targets):
                raise ValueError(f"{name}: {len(sources)} Keras weights for {len(targets)} PyTorch tensors")
            for target, source in zip(targets, sources):
                if tuple(target.shape) != source.shape:
                    raise ValueError(f"{name}: shape {source.shape} does not fit {tuple(target.shape)}")
                target.copy_(torch.from_numpy(np.ascontiguousarray(source)))
    missing = sorted(set(keras_layers) - used)
    if missing:
        raise ValueError(f"Keras layers without a PyTorch twin: {missing}")


def count_parameters(reference: nn.Module) -> tuple[int, int]:
    """(trainable, non-trainable incl. batch-norm running statistics) of a PyTorch module."""
    trainable = sum(p.numel() for p in reference.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in reference.parameters() if not p.requires_grad)
    stats = sum(b.numel() for name, b in reference.named_buffers() if name.endswith(("running_mean", "running_var")))
    return trainable, frozen + stats


def reference_flops(reference: nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None) -> int:
    """FLOPs (2 per multiply-add) of one forward pass, or of one training step when ``labels`` is given."""
    from torch.utils.flop_counter import FlopCounterMode

    reference.train(labels is not None)
    counter = FlopCounterMode(display=False)
    with counter:
        if labels is None:
            with torch.no_grad():
                reference(images)
        else:
            F.cross_entropy(reference(images), labels).backward()
    reference.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def _float64_outputs(model, reference: nn.Module, images: np.ndarray, build):
    """Inference outputs of both twins in float64 (the weights of ``model``, widened)."""
    import copy

    import keras

    floatx = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        model64 = build()
    finally:
        keras.config.set_floatx(floatx)
    model64.set_weights([np.asarray(w, dtype="float64") for w in model.get_weights()])
    reference64 = copy.deepcopy(reference).double().eval()
    batch = images.astype("float64")
    with torch.no_grad():
        theirs = reference64(torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    return keras.ops.convert_to_numpy(model64(batch, training=False)), theirs


def check_twins(model, reference: nn.Module, images: np.ndarray, atol: float = 2e-3,
                float64_twin=None) -> None:
    """Assert equal parameter counts, equal inference outputs (all but <= 0.1 % of them within
    ``atol`` of the logit scale) and equal FLOP counts.

    The tolerance: the 16-filter nets agree to about 1e-6, but the paper-width SegNet's 26
    convolutions of up to 512 channels, summed in another order (channels-last against NCHW
    kernels), differ by up to 1.5e-3 of the logit scale; a wrong layer or weight differs by
    the order of the scale itself.

    Max pooling is discontinuous, so float32 rounding can also make the two SegNets unpool
    some values to different pixels (seen: 2.7 % of the paper-width SegNet's outputs on one
    batch). When more than 0.1 % of the float32 outputs differ and ``float64_twin`` is given
    (a function that builds the Keras model again), both networks are run once more in
    float64, where such near-ties are vanishingly rare, and must agree to 1e-6 of the scale.

    ``model`` must output logits (built with ``logits=True``).
    """
    import keras

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert count_parameters(reference) == (trainable, frozen), (count_parameters(reference), (trainable, frozen))
    reference.eval()
    with torch.no_grad():
        theirs = reference(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    ours = keras.ops.convert_to_numpy(model(images, training=False))
    scale = max(1.0, float(np.abs(theirs).max()))
    # Max pooling is discontinuous: where two values in a window differ by less than
    # float32 rounding (convolutions in channels-last and NCHW round differently), the two
    # networks may pick different maxima and a SegNet unpools them to different pixels.
    # So at most 0.1 % of the outputs may differ by more than the tolerance.
    mismatched = float(np.mean(np.abs(ours - theirs) > atol * scale))
    if mismatched > 1e-3 and float64_twin is not None:
        ours, theirs = _float64_outputs(model, reference, images, float64_twin)
        scale = max(1.0, float(np.abs(theirs).max()))
        mismatched = float(np.mean(np.abs(ours - theirs) > 1e-6 * scale))
    assert mismatched <= 1e-3, (mismatched, float(np.abs(ours - theirs).max()))
    batch = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    labels = torch.zeros((images.shape[0],) + images.shape[1:3], dtype=torch.long)
    for train in (False, True):
        counted = reference_flops(reference, batch, labels if train else None)
        analytic = common.keras_flops(model, images.shape[1:3], train=train) * images.shape[0]
        assert counted == analytic, (train, counted, analytic)


# -- the interleaved comparison -------------------------------------------------------
def _reference_runners(reference: nn.Module, images: np.ndarray, labels: np.ndarray, steps: int,
                       channels_last: bool):
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    reference = reference.to(memory_format=memory_format)
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=memory_format)
    y = torch.from_numpy(labels.astype("int64"))
    optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    batch = images.shape[0] // steps

    def train() -> None:
        reference.train()
        for step in range(steps):
            chunk = slice(step * batch, (step + 1) * batch)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(reference(x[chunk]), y[chunk]).backward()
            optimizer.step()

    def infer() -> None:
        reference.eval()
        with torch.inference_mode():
            for step in range(steps):
                torch.softmax(reference(x[step * batch:(step + 1) * batch]), dim=1).numpy()

    return train, infer


def plain_keras_model(model):
    """The same graph and weights as a plain ``keras.Model``, run by Keras' own functional runner
    (what every model was before :class:`universal_models.GraphModel`). Its outputs reach the loss as
    a GraphModel's do (``universal_models.runtime.torch.plan.outputs_for_loss``), so that Keras 3.14+'s
    sparse cross-entropy trains it on torch; the forward pass is Keras' alone."""
    import keras

    from universal_models.runtime.torch.plan import outputs_for_loss

    class KerasRunnerModel(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            return super().compute_loss(x, y, outputs_for_loss(y_pred), sample_weight, training=training)

    twin = KerasRunnerModel.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    return twin


def compare(key: str, size: int, batch: int, steps: int, runs: int, channels_last_reference: bool = False,
            loss: str = "sparse_categorical_crossentropy", keras_runner: bool = False) -> dict:
    """Interleaved timing of the library model and its twin; medians over ``runs``.

    ``keras_runner=True`` also times the same model run by Keras' functional runner
    (``train_keras`` / ``infer_keras`` in the result).
    """
    model, reference = build_twins(key, size, logits=True)
    images, labels = common.synthetic_batch(batch * steps, size, size, 3, 2)
    check_twins(model, reference, images[:2], float64_twin=lambda: build_twins(key, size, logits=True)[0])
    model, _ = build_twins(key, size)  # the model as users build it: softmax output
    functions = {}
    if keras_runner:
        functions["train_keras"], functions["infer_keras"] = common.keras_runners(
            plain_keras_model(model), images, labels, batch, loss=loss)
    train_ours, infer_ours = common.keras_runners(model, images, labels, batch, loss=loss)
    train_ref, infer_ref = _reference_runners(reference, images, labels, steps, channels_last_reference)
    functions.update({"train_ours": train_ours, "train_ref": train_ref, "infer_ours": infer_ours,
                      "infer_ref": infer_ref})
    timings = common.interleave(functions, runs=runs)
    count = batch * steps
    x = torch.from_numpy(images[:batch].transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(labels[:batch].astype("int64"))
    train_flops = reference_flops(reference, x, y) / batch
    infer_flops = reference_flops(reference, x) / batch
    result = {"model": key, "size": size, "batch": batch, "params": model.count_params()}
    for task, flops in (("train", train_flops), ("infer", infer_flops)):
        ours, ref = count / timings[f"{task}_ours"], count / timings[f"{task}_ref"]
        result.update({
            f"{task}_ours": ours, f"{task}_ref": ref, f"{task}_ratio": ours / ref,
            f"{task}_gflops_ours": ours * flops / 1e9, f"{task}_gflops_ref": ref * flops / 1e9,
        })
        if keras_runner:
            result[f"{task}_keras"] = count / timings[f"{task}_keras"]
            result[f"{task}_keras_ratio"] = result[f"{task}_keras"] / ref
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["unet16", "segnet16"], choices=sorted(TWINS))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="batches per timed run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per model (median reported)")
    parser.add_argument("--channels-last-reference", action="store_true",
                        help="run the reference in torch.channels_last memory format")
    parser.add_argument("--loss", default="sparse_categorical_crossentropy",
                        choices=["sparse_categorical_crossentropy", "categorical_crossentropy"],
                        help="our training loss (categorical: one-hot labels)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: all cores)")
    parser.add_argument("--keras-runner", action="store_true",
                        help="also time the same model run by Keras' functional runner (keras.Model, not GraphModel)")
    parser.add_argument("--json", action="store_true", help="print one JSON line per model instead of a table")
    common.add_memory_option(parser)
    args = parser.parse_args(argv)
    allocator = common.apply_memory_option(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    import keras

    if keras.config.backend() != "torch":
        raise SystemExit("torch_reference.py compares against PyTorch: run it with KERAS_BACKEND=torch")
    print(common.machine_line(allocator), file=sys.stderr if args.json else sys.stdout)
    rows = []
    for key in args.models:
        r = compare(key, args.size, args.batch, args.steps, args.runs, args.channels_last_reference, args.loss,
                    keras_runner=args.keras_runner)
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        row = [
            key, f"{r['size']}x{r['size']}", r["batch"], f"{r['params'] / 1e6:.2f} M",
            f"{r['train_ours']:.1f}", f"{r['train_ref']:.1f}", f"**{r['train_ratio']:.2f}**",
            f"{r['infer_ours']:.1f}", f"{r['infer_ref']:.1f}", f"**{r['infer_ratio']:.2f}**",
            f"{r['train_gflops_ours']:.0f} / {r['train_gflops_ref']:.0f}",
            f"{r['infer_gflops_ours']:.0f} / {r['infer_gflops_ref']:.0f}",
        ]
        if args.keras_runner:
            row += [f"{r['train_keras_ratio']:.2f}", f"{r['infer_keras_ratio']:.2f}"]
        rows.append(row)
        print(f"# {key}: {r}", file=sys.stderr, flush=True)
    if args.json:
        return
    header = ["model", "input", "batch", "params", "train img/s ours", "train img/s torch", "train ratio",
              "infer img/s ours", "infer img/s torch", "infer ratio", "train GFLOP/s ours / torch",
              "infer GFLOP/s ours / torch"]
    if args.keras_runner:
        header += ["train ratio, Keras' runner", "infer ratio, Keras' runner"]
    print(common.markdown_table(header, rows))


if __name__ == "__main__":
    main()
