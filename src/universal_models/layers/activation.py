"""The models' output activation, with a faster softmax over few classes on PyTorch.

A segmentation model ends in a softmax over the class axis, the last axis of
an ``(N, H, W, C)`` tensor, and C is small (2-5 for most of our users).
PyTorch's softmax over a *last* dimension shorter than one SIMD vector (8
float32 values with AVX2) is slow: through Keras' layer, 10.6 ms for 16 x 128
x 128 x 2 on two cores, 3 % of a 16-filter U-Net's prediction of that batch.
The same memory read as a channels-last ``(N, C, H, W)`` tensor and reduced
over dimension 1 is vectorised across pixels instead: 2.6 ms
(``benchmarks/README.md``, "Where the time went"). :class:`Activation` is
Keras' layer with the same arguments and config; on the torch backend a
softmax over 2-7 classes computed without gradients (prediction, evaluation)
goes that way, everything else (training included) is Keras' layer unchanged.
"""

from __future__ import annotations

import keras

from .fast_paths import fast_paths_enabled

#: Softmax over at most this many classes takes the pixel-vectorised path on torch; from 8 classes
#: (one AVX2 vector) PyTorch's own last-axis kernel is as fast or faster (measured 8-12 classes).
MAX_FAST_SOFTMAX_CLASSES = 7


def fast_softmax_applies(layer: keras.layers.Activation, inputs) -> bool:
    if keras.config.backend() != "torch" or not fast_paths_enabled():
        return False
    if layer.activation is not keras.activations.softmax:
        return False
    rank = len(inputs.shape)
    if not (rank >= 3 and 2 <= inputs.shape[-1] <= MAX_FAST_SOFTMAX_CLASSES):
        return False
    from ..runtime.torch import kernels

    # Inference only: training keeps Keras' kernel, so training runs are bit-identical to Keras' layer
    # (the training gain was within noise; see benchmarks/README.md, "The output softmax").
    return not kernels.gradients_recorded()


@keras.saving.register_keras_serializable(package="universal_models")
class Activation(keras.layers.Activation):
    """``keras.layers.Activation`` with a faster few-class softmax on the torch backend.

    Same arguments, config and outputs as Keras' layer (to float32 rounding:
    tested in ``tests/test_performance_paths.py``). On the torch backend, when
    no gradient is recorded (``predict``, ``evaluate``, ``torch.no_grad``), a
    softmax over a last axis of 2-7 classes, for inputs of rank 3 or more, is
    computed as ``torch.softmax`` over dimension 1 of the channels-last view
    of the tensor (no copy); the result is returned in Keras' channels-last
    order as a view of PyTorch's output. Every other activation, and every
    other backend, runs Keras' code.

    Args:
        activation: as ``keras.layers.Activation``.
        **kwargs: as ``keras.layers.Activation``.

    Example:
        >>> layer = Activation("softmax", dtype="float32", name="classifier_softmax")
        >>> layer(keras.ops.zeros((1, 4, 4, 3))).shape
        (1, 4, 4, 3)
    """

    def call(self, inputs):
        if not fast_softmax_applies(self, inputs):
            return super().call(inputs)
        from ..runtime.torch import kernels

        return kernels.softmax_over_channels(inputs)
