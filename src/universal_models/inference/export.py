"""Fast inference: export a model to ONNX and run it with onnxruntime.

:func:`export_onnx` writes the model's inference graph (batch norm with its
moving statistics, no dropout) to an ``.onnx`` file through Keras' own
exporter, for a fixed input shape; :class:`OnnxPredictor` runs that file with
onnxruntime and takes any number of images, cutting them into batches of the
exported size (padding the last one). The graph needs neither Keras nor this
library to run. On a CPU, ``model.predict`` on torch is as fast as onnxruntime
for the U-Nets and faster for SegNet; the export is 1.1-1.4 times faster for
FCN-8s and lstm_unet (``benchmarks/README.md``, "Throughput per backend"). Outputs equal the Keras model's to 1e-4
(``tests/test_export.py``).

Export needs the torch backend (``pip install 'universal-models[torch,onnx]'``)
or, on TensorFlow/JAX, the ``tf2onnx`` package; prediction needs only numpy and
onnxruntime.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .._validation import check_integer

#: ONNX operator set used by default (supported by onnxruntime >= 1.17).
DEFAULT_OPSET = 18


def _fixed_shape(model, input_shape: Sequence[int] | None, batch_size: int) -> tuple[int, ...]:
    declared = model.input_shape
    if isinstance(declared, list):
        raise ValueError("export_onnx supports single-input models only.")
    batch_size = check_integer("batch_size", batch_size)
    if input_shape is None:
        input_shape = declared[1:]
    input_shape = tuple(input_shape)
    if len(input_shape) != len(declared) - 1:
        raise ValueError(f"input_shape {input_shape} must give the {len(declared) - 1} axes after the batch "
                         f"axis of the model's input {declared}.")
    for size, expected in zip(input_shape, declared[1:]):
        if size is None or (expected is not None and size != expected):
            raise ValueError(
                f"the ONNX graph needs a fixed input shape: got {input_shape} for a model whose input is "
                f"{declared}. Pass input_shape=(height, width, channels) with every size given "
                "(and equal to the model's where the model fixes it)."
            )
    return (batch_size,) + input_shape


def export_onnx(model, path: str | os.PathLike, *, input_shape: Sequence[int] | None = None,
                batch_size: int = 1, opset: int = DEFAULT_OPSET) -> Path:
    """Write the inference graph of ``model`` to an ONNX file.

    Uses PyTorch's dynamo-based ONNX exporter on the torch backend and
    ``keras.Model.export(format="onnx")`` (tf2onnx) on the others. ONNX graphs from Keras have a fixed
    input shape, so models built for any size (``input_height=None``) need
    ``input_shape``; :class:`OnnxPredictor` handles any number of images.

    Args:
        model: a Keras model with one input, e.g. from :func:`universal_models.get_model`
            or ``keras.saving.load_model``.
        path: the ``.onnx`` file to write (folders are created).
        input_shape: ``(height, width, channels)`` (or ``(time, height, width,
            channels)``) for the graph; defaults to the model's own when fixed.
        batch_size: images per call of the graph. Larger batches are faster per
            image on a CPU up to the cache size; 1 is the most flexible.
        opset: ONNX operator-set version.

    Returns:
        The path written.

    Raises:
        ValueError: a multi-input model, a missing or non-fixed input size, a
            bad batch size, or (torch backend) a torch older than ``ONNX_MIN_TORCH``.
        ImportError: the exporter's packages (onnx, onnxscript; tf2onnx off torch)
            are not installed.

    Example:
        >>> model, _, _ = universal_models.get_model("unet", 128, 128, 1, 2, base_filters=16)
        >>> export_onnx(model, "unet.onnx", batch_size=8)
        PosixPath('unet.onnx')
    """
    import keras

    shape = _fixed_shape(model, input_shape, batch_size)
    if keras.config.backend() == "torch" and _torch_release() < ONNX_MIN_TORCH:
        import torch

        raise ValueError(
            f"ONNX export on the torch backend needs torch >= {'.'.join(map(str, ONNX_MIN_TORCH))}, found "
            f"{torch.__version__} (PyTorch's exporter cannot trace Keras layers before that release). Upgrade "
            "torch, or use the .keras model, which predicts on every backend."
        )
    needed = ("onnx", "onnxscript") if keras.config.backend() == "torch" else ("onnx", "tf2onnx")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"ONNX export on the {keras.config.backend()} backend needs {', '.join(missing)}: "
            "pip install 'universal-models[onnx]'" + (" tf2onnx" if "tf2onnx" in missing else "") + "."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = np.zeros(shape, dtype="float32")
    model(sample, training=False)  # Keras exports only models that were called
    if keras.config.backend() == "torch":
        _export_torch(_fixed_size_twin(model, shape), sample, path, opset)
    else:
        model.export(str(path), format="onnx", verbose=False, opset_version=opset,
                     input_signature=[keras.InputSpec(shape=shape, dtype="float32")])
    return path


def _fixed_size_twin(model, shape: tuple[int, ...]):
    """The same functional model rebuilt for a fixed input shape, sharing the weights' values.

    PyTorch's exporter traces a model built for any size (``None`` axes) into
    data-dependent shapes it cannot export; the same graph built for fixed
    sizes exports cleanly. Other models are returned unchanged.
    """

    if all(size is not None for size in model.input_shape[1:]):
        return model
    config = model.get_config()
    inputs = [layer for layer in config.get("layers", []) if layer.get("class_name") == "InputLayer"]
    if len(inputs) != 1 or "batch_shape" not in inputs[0].get("config", {}):
        return model
    inputs[0]["config"]["batch_shape"] = list(shape)
    twin = model.__class__.from_config(config)
    twin.set_weights(model.get_weights())
    return twin


#: the first torch release whose ONNX exporter traces Keras' layers (2.4.1 fails in torch.export with Keras 3.15;
#: 2.6.0 passes the export tests; benchmarks/README.md, "Supported versions")
ONNX_MIN_TORCH = (2, 6)


def _torch_release() -> tuple[int, int]:
    import torch

    return tuple(int(part) for part in torch.__version__.split("+")[0].split(".")[:2])


def _export_torch(model, sample: np.ndarray, path: Path, opset: int) -> None:
    """PyTorch's dynamo-based ONNX exporter, called directly.

    ``keras.Model.export`` wraps the same exporter but, when it fails, falls back
    to the TorchScript exporter, which cannot trace Keras' functional models
    and hides the first error; calling it ourselves keeps the real message.
    """
    import warnings

    import keras
    import torch

    model.eval()
    example = keras.ops.convert_to_tensor(sample)  # on the model's device (a GPU's, where Keras uses one)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                    input_names=["images"], output_names=["outputs"], verbose=False)
        program.optimize()
    program.save(str(path))


class OnnxPredictor:
    """Run an exported ONNX model with onnxruntime, on any number of images.

    Args:
        path: an ``.onnx`` file written by :func:`export_onnx` (or any
            single-input, single-output ONNX image model).
        threads: intra-op threads for onnxruntime (default: its own choice,
            one per core). Idle threads do not spin-wait, so the predictor
            leaves the cores free between calls.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ImportError: onnxruntime is not installed.

    Example:
        >>> predictor = OnnxPredictor("unet.onnx")
        >>> probabilities = predictor.predict(images)       # (n, height, width, classes)
        >>> probabilities = predictor(images)               # the same, as a plain function
    """

    def __init__(self, path: str | os.PathLike, *, threads: int | None = None):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no ONNX model at {path}; write one with export_onnx(model, {str(path)!r}) "
                                    "or `umodels export --format onnx`.")
        try:
            import onnxruntime
        except ImportError as error:
            raise ImportError("OnnxPredictor needs onnxruntime: pip install 'universal-models[onnx]'.") from error
        options = onnxruntime.SessionOptions()
        # Idle onnxruntime threads otherwise spin for a while after each run, taking
        # the cores from whatever runs next (training, other processes).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        self.path = path
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        self.input_shape = tuple(size if isinstance(size, int) else None for size in spec.shape)
        self.batch_size = self.input_shape[0]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Model outputs for ``images`` of shape ``(n,) + input_shape[1:]`` (float32).

        Raises:
            ValueError: no images, or their shape does not match the graph's input.
        """
        images = np.asarray(images, dtype=np.float32)
        expected = self.input_shape[1:]
        if images.ndim != len(self.input_shape) or any(
            size is not None and size != actual for size, actual in zip(expected, images.shape[1:])
        ):
            raise ValueError(f"images of shape {images.shape} do not fit the ONNX graph's input (batch,) + "
                             f"{expected}; resize or tile them, or export the model for this size.")
        if len(images) == 0:
            raise ValueError("no images to predict (got an empty array).")
        if self.batch_size is None:
            return self._run(images)
        outputs = []
        for start in range(0, len(images), self.batch_size):
            batch = images[start:start + self.batch_size]
            count = len(batch)
            if count < self.batch_size:  # pad the last batch to the graph's fixed size
                padding = np.zeros((self.batch_size - count,) + batch.shape[1:], dtype=np.float32)
                batch = np.concatenate([batch, padding])
            outputs.append(self._run(batch)[:count])
        return np.concatenate(outputs)

    __call__ = predict
