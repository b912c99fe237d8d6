"""The same checks for every registered layer: build and call, config round trip, safe loading.

A layer registered under the ``universal_models`` package must have a case in :data:`CASES`
(``test_every_registered_layer_has_a_case`` fails until it does). Each case gives the layer's
constructor arguments and example inputs; the harness then checks that

- the layer builds and its call gives finite outputs of the shape and dtype Keras infers for it
  symbolically (``compute_output_spec``);
- ``from_config(get_config())`` rebuilds a layer with the same config that, given the same
  weights, computes the same outputs;
- a model holding the layer saved as ``.keras`` loads with ``safe_mode=True`` into the same class
  with the same outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras
import numpy as np
import pytest

import universal_models  # noqa: F401  (registers the layers)
from tests.helpers import to_backend, to_numpy
from universal_models.data.augmentation import SegmentationRandomRotation
from universal_models.layers.activation import Activation
from universal_models.layers.checks import InputGuard
from universal_models.layers.depth_to_space import DepthToSpace
from universal_models.layers.ladder import GaussianCombinator, LadderBatchNormalization
from universal_models.layers.normalization import BatchNormalization
from universal_models.layers.pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from universal_models.layers.recurrent import ConvLSTM2D
from universal_models.layers.spatial import CropToMatch, PadToMultiple
from universal_models.layers.time import FoldTime, UnfoldTime


def _images(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def _indices(*shape, pool_size=2, seed=1):
    return np.random.default_rng(seed).integers(0, pool_size * pool_size, shape).astype("int32")


@dataclass(frozen=True)
class Case:
    """A layer class, its constructor arguments and example inputs (one array, or a list)."""

    layer: type
    kwargs: dict = field(default_factory=dict)
    inputs: Callable[[], object] = lambda: _images(2, 8, 8, 3)


CASES = {
    "Activation": Case(Activation, {"activation": "relu"}),
    "BatchNormalization": Case(BatchNormalization, {"momentum": 0.9}),
    "ConvLSTM2D": Case(ConvLSTM2D, {"filters": 4, "kernel_size": 3, "padding": "same",
                                              "return_sequences": True},
                       lambda: _images(2, 3, 8, 8, 2)),
    "CropToMatch": Case(CropToMatch, {}, lambda: [_images(2, 10, 12, 3), _images(2, 7, 9, 1)]),
    "DepthToSpace": Case(DepthToSpace, {"block_size": 2}, lambda: _images(2, 4, 4, 8)),
    "FoldTime": Case(FoldTime, {}, lambda: _images(2, 3, 8, 8, 2)),
    "UnfoldTime": Case(UnfoldTime, {}, lambda: [_images(6, 4, 4, 5), _images(2, 3, 8, 8, 2)]),
    "GaussianCombinator": Case(GaussianCombinator, {}, lambda: [_images(4, 6), _images(4, 6, seed=2)]),
    "InputGuard": Case(InputGuard, {"channels": 3, "model_name": "unet"}),
    "LadderBatchNormalization": Case(LadderBatchNormalization, {"momentum": 0.9, "center": True},
                                     lambda: _images(4, 6)),
    "MaxPoolingWithArgmax2D": Case(MaxPoolingWithArgmax2D, {"pool_size": 2}),
    "MaxUnpooling2D": Case(MaxUnpooling2D, {"pool_size": 2},
                           lambda: [_images(2, 4, 4, 3), _indices(2, 4, 4, 3)]),
    "SegmentationRandomRotation": Case(SegmentationRandomRotation, {"factor": 0.1, "seed": 1,
                                                                    "fill_mode": "reflect"}),
    "PadToMultiple": Case(PadToMultiple, {"multiple": 4, "mode": "reflect"},
                          lambda: _images(2, 7, 9, 3)),
}


def _registered_layers() -> dict[str, type]:
    found = {}
    for key, value in keras.saving.get_custom_objects().items():
        package, _, name = key.partition(">")
        if (package == "universal_models" and isinstance(value, type)
                and issubclass(value, keras.layers.Layer) and not issubclass(value, keras.Model)):
            found[name] = value
    return found


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _call(layer, arrays):
    tensors = [to_backend(array) for array in arrays]
    return _as_list(layer(tensors if len(tensors) > 1 else tensors[0]))


def _outputs(layer, arrays) -> list[np.ndarray]:
    return [to_numpy(output) for output in _call(layer, arrays)]


def _symbols(arrays):
    symbols = [keras.KerasTensor(array.shape, dtype=str(array.dtype)) for array in arrays]
    return symbols if len(symbols) > 1 else symbols[0]


def _make(name):
    case = CASES[name]
    return case.layer(**case.kwargs), _as_list(case.inputs())


def test_every_registered_layer_has_a_case():
    registered = _registered_layers()
    assert set(registered) == set(CASES), (
        f"registered layers without a case: {sorted(set(registered) - set(CASES))}; "
        f"cases for layers that are not registered: {sorted(set(CASES) - set(registered))}")
    for name, case in CASES.items():
        assert registered[name] is case.layer, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_builds_and_calls(name):
    layer, arrays = _make(name)
    outputs = _outputs(layer, arrays)
    assert layer.built
    # what Keras infers symbolically (compute_output_shape where the layer has one) is what it computes
    expected = _as_list(layer.compute_output_spec(_symbols(arrays)))
    assert [tuple(output.shape) for output in outputs] == [tuple(spec.shape) for spec in expected]
    assert [str(output.dtype) for output in outputs] == [spec.dtype for spec in expected]
    for output in outputs:
        assert np.all(np.isfinite(output))


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_round_trip(name):
    layer, arrays = _make(name)
    # built symbolically, so that a random layer's generator has not moved when its weights are copied
    layer(_symbols(arrays))
    weights = layer.get_weights()
    expected = _outputs(layer, arrays)
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone(_symbols(arrays))
    clone.set_weights(weights)
    for got, want in zip(_outputs(clone, arrays), expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_safe_load_in_a_model(name, tmp_path):
    layer, arrays = _make(name)
    inputs = [keras.Input(shape=array.shape[1:], batch_size=array.shape[0], dtype=str(array.dtype))
              for array in arrays]
    outputs = layer(inputs if len(inputs) > 1 else inputs[0])
    model = keras.Model(inputs, outputs)
    # weights away from their initial values, so that loading them is checked too
    model.set_weights([weight + 0.25 for weight in model.get_weights()])
    expected = [to_numpy(output) for output in _as_list(model([to_backend(array) for array in arrays]))]
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert [type(item) for item in loaded.layers] == [type(item) for item in model.layers]
    got = [to_numpy(output) for output in _as_list(loaded([to_backend(array) for array in arrays]))]
    for got_one, want in zip(got, expected):
        np.testing.assert_allclose(got_one, want, rtol=1e-5, atol=1e-6)
