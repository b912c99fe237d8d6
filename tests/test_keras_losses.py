"""Keras' own losses on the library's models, on every supported Keras release.

``compile(loss="sparse_categorical_crossentropy")`` on integer masks is the recipe most users start
with. From Keras 3.14 on, the torch backend computes that loss as ``nll_loss`` of the output with its
class axis moved to the front; for a ``(batch, height, width, classes)`` output PyTorch's
``nll_loss2d`` backward then fails (``grad_input must be contiguous``, PyTorch issue 175084).
:meth:`universal_models.GraphModel.compute_loss` hands such outputs to the loss stored class-major
(``universal_models.runtime.torch.plan.outputs_for_loss``). The first test trains through Keras' loss on
whatever Keras is installed (CI runs the newest release, where it fails without that workaround); the
torch tests below reproduce the failing call itself, so they also check the mechanism on releases
that compute the loss another way.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import threshold_batch, to_backend, to_numpy, train_steps
from universal_models.losses import CrossEntropyLoss

torch_only = pytest.mark.skipif(keras.config.backend() != "torch", reason="the workaround is for the torch backend")


def _unet():
    model, _, _ = um.get_model("unet", 32, 32, 1, 3, base_filters=4, depth=2)
    return model


@pytest.mark.parametrize("loss", [
    "sparse_categorical_crossentropy",
    pytest.param("instance", marks=torch_only),  # the same loss function as the string on JAX / TensorFlow
])
def test_keras_sparse_cross_entropy_trains_a_unet_on_integer_masks(loss):
    images, labels = threshold_batch(4, 32, 32, 1, 3)
    model = _unet()
    expected = float(CrossEntropyLoss()(labels, model(images, training=False)))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy() if loss == "instance" else loss)
    losses = train_steps(model, images, labels, 6)
    assert all(np.isfinite(losses))
    # The first step's loss is computed on the initial weights in training mode (batch statistics), so
    # it is close to, not equal to, the inference-mode value; the library's own loss is the yardstick.
    assert abs(losses[0] - expected) < 0.2
    assert losses[-1] < losses[0]


def _keras_314_sparse_ce(labels, probabilities):
    """``keras.losses.sparse_categorical_crossentropy`` as Keras 3.14-3.15 compute it on torch (probabilities)."""
    import torch

    output = probabilities.movedim(-1, 1)
    output = output / torch.sum(output, dim=1, keepdim=True)
    output = torch.clip(output, keras.config.epsilon(), 1.0 - keras.config.epsilon())
    return torch.nn.functional.nll_loss(torch.log(output), labels, reduction="none")


def _torch_bug_present() -> bool:
    probabilities = to_backend(np.full((1, 2, 2, 2), 0.5, "float32"), requires_grad=True)  # on Keras' device
    try:
        _keras_314_sparse_ce(to_backend(np.zeros((1, 2, 2), "int64")), probabilities).sum().backward()
    except RuntimeError as error:
        assert "contiguous" in str(error)
        return True
    return False


@torch_only
def test_class_major_outputs_run_the_failing_call_with_the_same_gradients():
    import torch

    from universal_models.runtime.torch.plan import class_major

    images, labels = threshold_batch(2, 32, 32, 1, 3)
    model = _unet()
    targets = to_backend(labels.astype("int64"))  # on Keras' device
    outputs = model(images, training=True)
    if _torch_bug_present():
        with pytest.raises(RuntimeError, match="contiguous"):
            _keras_314_sparse_ce(targets, outputs).mean().backward()
    weights = [variable.value for variable in model.trainable_variables]

    def gradients(loss):
        return torch.autograd.grad(loss, weights)

    fixed = class_major(model(images, training=True))
    assert fixed.shape == outputs.shape and fixed.movedim(-1, 1).is_contiguous()
    found = gradients(_keras_314_sparse_ce(targets, fixed).mean())
    one_hot = torch.nn.functional.one_hot(targets, 3).to(outputs.dtype)
    reference_outputs = model(images, training=True)
    reference = gradients(-(one_hot * torch.log(torch.clip(reference_outputs, 1e-7, 1 - 1e-7))).sum(-1).mean())
    for value, expected in zip(found, reference):
        np.testing.assert_allclose(to_numpy(value), to_numpy(expected), rtol=1e-4, atol=1e-6)
        assert value.stride() == expected.stride()  # the gradient comes back in the weights' own layout


@torch_only
def test_outputs_reach_the_loss_class_major_only_where_keras_needs_it(monkeypatch):
    import torch

    from universal_models.runtime.torch import plan as _torch_graph

    keras_version = tuple(int(part) for part in keras.__version__.split(".")[:2])
    assert _torch_graph._sparse_ce_backward_fails("cpu") == (keras_version >= (3, 14) and _torch_bug_present())
    outputs = to_backend(np.random.default_rng(0).random((2, 4, 4, 3)).astype("float32"), requires_grad=True)
    for fails in (False, True):
        monkeypatch.setitem(_torch_graph._CLASS_AXIS_LOSS_FAILS, outputs.device.type, fails)
        given = _torch_graph.outputs_for_loss({"segmentation": outputs, "count": outputs.sum()})
        assert (given["segmentation"] is outputs) != fails
        assert given["count"] is not None and given["count"].ndim == 0
        torch.testing.assert_close(given["segmentation"], outputs)
    detached = outputs.detach()  # no gradient recorded (evaluate): no backward pass to work around
    assert _torch_graph.outputs_for_loss([detached])[0] is detached
