"""ONNX export and the onnxruntime predictor give the Keras model's outputs."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import onnx_export_available, threshold_batch
from universal_models.inference.export import OnnxPredictor, export_onnx

can_export = onnx_export_available()


@pytest.mark.skipif(not can_export,
                    reason="ONNX export is tested on torch >= 2.6 with onnx, onnxscript and onnxruntime")
def test_exported_unet_and_segnet_match_keras(tmp_path):
    """A model built for any size, trained a little (BN statistics move), exported with batch 2
    and run on 3 images (the last batch is padded): outputs equal Keras' to 1e-4."""
    images, labels = threshold_batch(3, 32, 32, 1, 3)
    for name, options in (("unet", {"base_filters": 4, "depth": 2}), ("segnet", {"base_filters": 4, "n_blocks": 2})):
        model, _, _ = um.get_model(name, None, None, 1, 3, **options)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.fit(images, np.eye(3, dtype="float32")[labels], epochs=1, verbose=0)
        path = export_onnx(model, tmp_path / f"{name}.onnx", input_shape=(32, 32, 1), batch_size=2)
        predictor = OnnxPredictor(path, threads=1)
        assert predictor.input_shape == (2, 32, 32, 1)
        expected = np.asarray(model.predict(images, verbose=0))
        np.testing.assert_allclose(predictor.predict(images), expected, atol=1e-4)
        np.testing.assert_allclose(predictor(images[:1]), expected[:1], atol=1e-4)
        with pytest.raises(ValueError, match="do not fit"):
            predictor.predict(images[:, :16])


def test_export_needs_a_fixed_shape(tmp_path):
    model, _, _ = um.get_model("testnet", None, None, 1, 2, base_filters=4)
    with pytest.raises(ValueError, match="fixed input shape"):
        export_onnx(model, tmp_path / "model.onnx")
    with pytest.raises(ValueError, match="batch_size"):
        export_onnx(model, tmp_path / "model.onnx", input_shape=(32, 32, 1), batch_size=0)
    fixed, _, _ = um.get_model("testnet", 32, 32, 1, 2, base_filters=4)
    with pytest.raises(ValueError, match="fixed input shape"):
        export_onnx(fixed, tmp_path / "model.onnx", input_shape=(64, 64, 1))


@pytest.mark.backend_independent
def test_predictor_reports_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        OnnxPredictor(tmp_path / "missing.onnx")


@pytest.mark.skipif(keras.config.backend() != "torch", reason="the torch exporter's release check")
def test_export_on_a_torch_too_old_for_it_says_which_release_it_needs(tmp_path, monkeypatch):
    from universal_models.inference import export

    monkeypatch.setattr(export, "ONNX_MIN_TORCH", (99, 0))
    model, _, _ = um.get_model("testnet", 32, 32, 1, 2, base_filters=4)
    with pytest.raises(ValueError, match=r"needs torch >= 99\.0, found .*Upgrade torch"):
        export_onnx(model, tmp_path / "model.onnx")
    assert not (tmp_path / "model.onnx").exists()
