"""Does running a whole Keras model channels-first on torch close the gap to plain PyTorch?

``conv_layout.py`` found one 3x3 convolution's forward + backward 1.6x slower on
channels-last views (what Keras' torch backend hands PyTorch) than on contiguous
NCHW tensors on this project's AVX2 machine. This script asks the question at the
level of a whole network: the 16-filter U-Net three ways, timed interleaved in one
process at 128 x 128, batch 16 (torch backend only):

- ``ours``: ``um.get_model("unet", ..., base_filters=16)``, channels-last, with the
  library's fused batch norm;
- ``keras_nchw``: the same layers built with ``data_format="channels_first"`` (one
  transpose at the input and one at the output) and a batch norm that calls
  ``torch.nn.functional.batch_norm`` on the NCHW tensor, so every convolution and
  normalisation gets a contiguous NCHW tensor, as in a hand-written model;
- ``pytorch``: the hand-written twin of ``torch_reference.py`` (NCHW).

Parameter counts are asserted equal. Prints images/s and the ratio to ``pytorch``.

    python benchmarks/layout_whole_model.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from keras import layers  # noqa: E402

import universal_models as um  # noqa: E402
from benchmarks import common, torch_reference  # noqa: E402


class ChannelsFirstBatchNorm(keras.layers.BatchNormalization):
    """Batch norm over axis 1 through PyTorch's kernel (same statistics rule as Keras')."""

    def call(self, inputs, training=None, mask=None):
        if training:
            channels = inputs.shape[1]
            mean, variance = torch.zeros(channels), torch.zeros(channels)
            outputs = F.batch_norm(inputs, mean, variance, self.gamma.value, self.beta.value, True, 1.0, self.epsilon)
            count = inputs.numel() // channels
            self.moving_mean.assign(self.moving_mean.value * self.momentum + mean * (1 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance.value * self.momentum + variance * ((count - 1) / count) * (1 - self.momentum)
            )
            return outputs
        scale = torch.rsqrt(self.moving_variance.value + self.epsilon) * self.gamma.value
        shift = self.beta.value - self.moving_mean.value * scale
        return torch.addcmul(shift[:, None, None], inputs, scale[:, None, None])


def channels_first_unet(size: int, channels: int, n_classes: int, base_filters: int = 16, depth: int = 4):
    """The library's U-Net layer for layer (bias-free convs + batch norm + ReLU), channels-first inside."""
    inputs = keras.Input((size, size, channels))
    tensor = layers.Permute((3, 1, 2))(inputs)

    def stack(tensor, filters):
        for _ in range(2):
            tensor = layers.Conv2D(filters, 3, padding="same", use_bias=False, data_format="channels_first")(tensor)
            tensor = ChannelsFirstBatchNorm(axis=1)(tensor)
            tensor = layers.ReLU()(tensor)
        return tensor

    skips = []
    for level in range(depth):
        tensor = stack(tensor, base_filters * 2**level)
        skips.append(tensor)
        tensor = layers.MaxPooling2D(2, data_format="channels_first")(tensor)
    tensor = stack(tensor, base_filters * 2**depth)
    for level in reversed(range(depth)):
        tensor = layers.Conv2DTranspose(base_filters * 2**level, 2, strides=2, data_format="channels_first")(tensor)
        tensor = layers.Concatenate(axis=1)([skips[level], tensor])
        tensor = stack(tensor, base_filters * 2**level)
    tensor = layers.Conv2D(n_classes, 1, data_format="channels_first")(tensor)
    outputs = layers.Softmax()(layers.Permute((2, 3, 1))(tensor))
    return keras.Model(inputs, outputs)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="batches per timed run")
    parser.add_argument("--runs", type=int, default=5, help="timed runs (median reported)")
    args = parser.parse_args(argv)
    if keras.config.backend() != "torch":
        raise SystemExit("this comparison is about the torch backend: run with KERAS_BACKEND=torch")
    um.keep_freed_memory()

    size, batch, steps = args.size, args.batch, args.steps
    images, labels = common.synthetic_batch(batch * steps, size, size, 3, 2)
    ours, _, _ = um.get_model("unet", size, size, 3, 2, base_filters=16)
    nchw = channels_first_unet(size, 3, 2)
    _, twin = torch_reference.build_twins("unet16", size)
    counts = {"ours": ours.count_params(), "keras_nchw": nchw.count_params(),
              "pytorch": sum(torch_reference.count_parameters(twin))}
    assert len(set(counts.values())) == 1, f"the three models differ: {counts}"

    runners = {}
    for name, model in (("ours", ours), ("keras_nchw", nchw)):
        runners[f"train_{name}"], runners[f"infer_{name}"] = common.keras_runners(model, images, labels, batch)
    runners["train_pytorch"], runners["infer_pytorch"] = torch_reference._reference_runners(
        twin, images, labels, steps, channels_last=False)
    timings = common.interleave(runners, runs=args.runs)

    count = batch * steps
    print(f"U-Net-16, {size} x {size} x 3, batch {batch}, {counts['ours']:,} parameters; "
          f"median of {args.runs} interleaved runs, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | train img/s | train ratio | infer img/s | infer ratio |")
    print("|---|---|---|---|---|")
    for name in ("ours", "keras_nchw", "pytorch"):
        train, infer = count / timings[f"train_{name}"], count / timings[f"infer_{name}"]
        train_ratio = timings["train_pytorch"] / timings[f"train_{name}"]
        infer_ratio = timings["infer_pytorch"] / timings[f"infer_{name}"]
        print(f"| {name} | {train:.2f} | {train_ratio:.2f} | {infer:.2f} | {infer_ratio:.2f} |")


if __name__ == "__main__":
    main()
