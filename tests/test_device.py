"""Device-correctness on a CPU-only machine (torch backend): the guard of ``tests/device_guard.py``.

On a GPU, Keras' torch backend keeps every tensor on the GPU, and a tensor our code makes without
naming a device lands on the CPU: the first operation that mixes the two fails. CI has no GPU, so
every torch test runs under :class:`~tests.device_guard.DeviceGuard` (``tests/conftest.py``), which
refuses such tensors (and backend tensors read as numpy without ``keras.ops.convert_to_numpy``)
where our code makes them. The tests here make sure that every registered model goes through
every path that can meet the GPU under it: a training step (the plan's direct convolutions, fused
batch norm, optimizer-slot alignment), evaluation and prediction (batch norm folded into the
convolutions, the few-class softmax), and a gradient-free call; and that the guard refuses what it
should (it caught the folded batch norm's kernel allocated on the CPU, which crashed every
``predict`` of a batch-norm model on a GPU).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import to_backend, to_numpy
from tests.models.options import SMALL

torch_only = pytest.mark.skipif(keras.config.backend() != "torch", reason="the device guard watches the torch backend")


def _model_and_batch(name: str):
    if name == "ladder":
        model, _, _ = um.get_model("ladder", 16, 16, 1, 4, encoder="conv", filters=(8, 16))
        images = np.random.default_rng(0).normal(size=(4, 16, 16, 1)).astype("float32")
        labels = np.array([0, 3, -1, -1], dtype="int32")  # -1: unlabelled
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
        return model, images, labels
    recurrent = name.startswith("lstm")
    model, _, _ = um.get_model(name, 32, 32, 1 if recurrent else 2, 3, **SMALL[name])
    shape = (2, 3, 32, 32, 1) if recurrent else (2, 32, 32, 2)
    images = np.random.default_rng(0).normal(size=shape).astype("float32")
    labels = np.random.default_rng(1).integers(0, 3, shape[:-1]).astype("int32")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy",
                  metrics=[um.metrics.IoU(3)])
    return model, images, labels


@torch_only
@pytest.mark.parametrize("name", sorted(SMALL) + ["ladder"])
def test_every_model_trains_evaluates_and_predicts_under_the_device_guard(name, _device_guard):
    import torch

    if _device_guard is None:
        pytest.skip("the device guard is switched off (UMODELS_DEVICE_GUARD=0)")
    model, images, labels = _model_and_batch(name)
    for _ in range(2):  # the second step runs with the kernels moved and the optimizer slots aligned
        loss = model.train_on_batch(images, labels)
        loss = loss[0] if isinstance(loss, list) else loss
        assert np.isfinite(loss)
    model.test_on_batch(images, labels)  # evaluate: no gradients, batch norm folded
    predicted = model.predict_on_batch(images)
    with torch.no_grad():
        direct = model(to_backend(images), training=False)
    direct = direct[0] if isinstance(direct, (list, tuple)) else direct
    predicted = predicted[0] if isinstance(predicted, (list, tuple)) else predicted
    np.testing.assert_allclose(to_numpy(direct), predicted, rtol=1e-5, atol=1e-5)
    assert _device_guard.violations == []


@pytest.mark.host_tensors  # about the guard itself: it judges this file, not the autouse guard
@torch_only
def test_guard_refuses_implicit_devices_and_host_reads():
    import torch

    from tests.device_guard import DeviceGuard, ImplicitDeviceError

    tensor = torch.ones(3, device="cpu")
    refused = {
        "torch.empty without device=": lambda: torch.empty(3),
        "torch.zeros without device=": lambda: torch.zeros(3, dtype=torch.float32),
        "torch.linspace without device=": lambda: torch.linspace(0, 1, 3),
        "torch.tensor of host data without device=": lambda: torch.tensor([1.0]),
        "torch.from_numpy": lambda: torch.from_numpy(np.zeros(2)),
        "Tensor.numpy()": lambda: tensor.numpy(),
        "Tensor.cpu()": lambda: tensor.cpu(),
        "np.asarray/np.array of a tensor": lambda: np.asarray(tensor),
    }
    allowed = [
        lambda: torch.empty(3, device=tensor.device), lambda: torch.empty_like(tensor),
        lambda: torch.zeros_like(tensor), lambda: torch.as_tensor(tensor), lambda: float(tensor[0]),
        lambda: keras.ops.convert_to_numpy(tensor), lambda: torch.arange(3, device="cpu"),
    ]
    with DeviceGuard(roots=[__file__]) as guard:
        for problem, call in refused.items():
            with pytest.raises(ImplicitDeviceError, match=f"test_device.py:[0-9]+ .* calls {problem}"):
                call()
        for call in allowed:
            call()
    assert len(guard.violations) == len(refused)
    with pytest.raises(ImplicitDeviceError, match=f"{len(refused)} implicit-device call"):
        guard.check()  # also what was refused inside code that caught the error
    assert torch.from_numpy(np.zeros(1)).shape == (1,)  # restored on exit


@pytest.mark.host_tensors
@torch_only
def test_guard_judges_only_the_direct_caller():
    """A factory inside other code (Keras', torch's) is that code's to place, even when ours called into it."""
    import torch

    from tests.device_guard import DeviceGuard

    elsewhere: dict = {"torch": torch}
    exec(compile("def make():\n    return torch.empty(3)\n", "/elsewhere/library.py", "exec"), elsewhere)
    with DeviceGuard(roots=[__file__]) as guard:
        elsewhere["make"]()
        keras.ops.convert_to_tensor(np.zeros(3, "float32"))
    assert guard.violations == []
