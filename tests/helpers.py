"""Small data helpers shared by the tests."""

from __future__ import annotations

import os

import keras
import numpy as np

from universal_models import prepare_training


def _box_blur(field: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2 radius + 1)^2 window along the two last axes (edge padded)."""
    size = 2 * radius + 1
    padded = np.pad(field, ((0, 0), (radius, radius), (radius, radius)), mode="edge")
    height, width = field.shape[1:]
    return sum(padded[:, i : i + height, j : j + width] for i in range(size) for j in range(size)) / size**2


def threshold_batch(batch, height, width, channels, n_classes, seed=0, blob_radius=2):
    """A fixed, learnable segmentation batch.

    Labels are blobs: a smoothed random field cut into ``max(n_classes, 2)``
    equally frequent levels; ``blob_radius`` sets their size. The first image channel is the label's grey level
    plus noise, the other channels are noise, so a network has to denoise and
    find the blobs. Returns ``(images float32, labels int32 (b, h, w))``.
    """
    rng = np.random.default_rng(seed)
    field = _box_blur(_box_blur(rng.random((batch, height, width)), blob_radius), blob_radius)
    levels = np.quantile(field, np.linspace(0, 1, max(n_classes, 2) + 1)[1:-1])
    labels = np.digitize(field, levels).astype("int32")
    images = rng.normal(0.0, 0.25, (batch, height, width, channels)).astype("float32")
    images[..., 0] += labels / max(n_classes - 1, 1)
    return images, labels


def perturb_weights(model, seed: int = 5) -> None:
    """Move every weight of ``model`` away from its initial value, batch-norm statistics
    included (non-negative weights such as variances stay positive).

    Stands in for a short training run where a test needs a model whose weights are
    all "trained" (a save/load round trip, a stateful twin) without compiling a
    training step.
    """
    rng = np.random.default_rng(seed)
    model.set_weights([
        weight * rng.uniform(0.5, 1.5, weight.shape).astype(weight.dtype) + 0.01 * (weight.min() >= 0)
        for weight in model.get_weights()
    ])


def to_numpy(value) -> np.ndarray:
    """A backend tensor (on any device: a GPU's too), a Keras variable or an array, as numpy.

    The one way the tests read values: ``np.asarray(tensor)`` and ``tensor.numpy()`` fail for a
    tensor on a GPU (``tests/device_guard.py`` refuses them on the torch backend).
    """
    return np.asarray(keras.ops.convert_to_numpy(value))


def to_backend(array, *, requires_grad: bool = False):
    """``array`` as a backend tensor on the device Keras uses (a GPU's where there is one).

    ``requires_grad`` (torch only): a leaf tensor that records gradients, for ``torch.autograd.grad``.
    """
    tensor = keras.ops.convert_to_tensor(np.asarray(array))
    return tensor.requires_grad_(True) if requires_grad else tensor


def infer(model, inputs) -> np.ndarray:
    """Inference-mode outputs of ``model`` on one batch, as numpy.

    On JAX through ``predict_on_batch``, one compiled program: an eager call there compiles and
    dispatches every operation on its own (U-Net-8 on a 45 x 61 image: 5.6 s against 1.4 s).
    Elsewhere the eager call, which is the cheaper one there (TensorFlow: 0.2 s against 0.9 s
    for ``predict``, which traces a graph first).
    """
    if keras.config.backend() == "jax":
        return to_numpy(model.predict_on_batch(inputs))
    return to_numpy(model(inputs, training=False))


def train_steps(model, inputs, targets, steps: int) -> list[float]:
    """Train a compiled ``model`` for ``steps`` steps on one batch; the loss of every step.

    One compiled train step called ``steps`` times: ``fit`` with one epoch per step would add
    its per-epoch set-up (data adapter, callbacks) to every step, a third of a learning test's
    time on TensorFlow.
    """
    prepare_training(model, inputs, targets)  # TensorFlow would otherwise trace the first step twice
    losses = []
    for _ in range(steps):
        model.reset_metrics()
        losses.append(float(model.train_on_batch(inputs, targets)))
    return losses


def with_python_path(*folders) -> str:
    """``PYTHONPATH`` for a subprocess: ``folders`` first, then the test process's own (where packages such as
    Keras may come from, as on a machine that installs them with ``pip install --target``)."""
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([str(folder) for folder in folders] + ([inherited] if inherited else []))


def assert_clear_error(case, error, problem, fix, tmp_path) -> None:
    """``case(tmp_path)`` raises ``error`` whose message names every word of ``problem`` and one of ``fix``.

    The check of the bad-input tables (``tests/test_bad_input.py``, ``tests/test_bad_data.py``).
    """
    import pytest

    with pytest.raises(error) as raised:
        case(tmp_path)
    message = str(raised.value)
    missing = [word for word in problem if word not in message]
    assert not missing, f"message does not name the problem ({missing}): {message}"
    # One of the fix words is enough where a case lists alternatives.
    assert any(word in message for word in fix), f"message does not say what to do ({fix}): {message}"


def onnx_export_available() -> bool:
    """Whether this environment exports ONNX: the torch backend (>= the release the exporter needs) with
    onnx, onnxscript and onnxruntime installed."""
    import importlib.util

    if keras.config.backend() != "torch":
        return False
    if not all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime")):
        return False
    from universal_models.inference.export import ONNX_MIN_TORCH, _torch_release

    return _torch_release() >= ONNX_MIN_TORCH
