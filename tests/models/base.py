"""One test class that every architecture runs (on every backend).

A model's test module subclasses :class:`ModelTest`, names the model and gives
small options so that the suite stays fast; the defaults of the paper-size
models are checked separately (parameter counts) in ``test_segmentation.py``.

The learning tests train with SGD and momentum rather than Adam: the model is
what is tested, and Keras' Adam makes TensorFlow trace about five times as many
graph operations per training step (12 s against 2.5 s for the first epoch of
an 8-filter U-Net on one core), which on three backends and nine architectures
is most of the suite's time. Adam is trained with on every backend in
``tests/test_training.py`` and ``tests/test_reliability.py``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import infer, perturb_weights, threshold_batch, train_steps
from tests.models.options import SMALL


class ModelTest:
    name: str = ""
    #: options for the fast tests; None: the model's entry in tests/models/options.py
    options: dict | None = None
    #: the documented minimum input size (height and width)
    min_size: int = 8
    #: SGD learning rate (momentum 0.9) and steps for the learning tests
    learning_rate: float = 0.1
    steps: int = 30
    #: image size and blob size of the learning test (coarse models need coarse targets)
    learn_size: int = 32
    blob_radius: int = 2

    def build(self, height, width, channels, n_classes, **overrides):
        options = {**(SMALL[self.name] if self.options is None else self.options), **overrides}
        return um.get_model(self.name, height, width, channels, n_classes, **options)

    # -- shapes and values -------------------------------------------------
    # 37 x 53 runs on torch only in CI: the padding and cropping around the network are the same
    # Keras operations on every backend, and 100 x 76 checks an odd size on each of them.
    @pytest.mark.parametrize("height,width,channels,n_classes", [
        (100, 76, 1, 3), (64, 64, 3, 1), pytest.param(37, 53, 2, 2, marks=pytest.mark.backend_independent)])
    def test_output_shape_and_range(self, height, width, channels, n_classes):
        model, output_height, output_width = self.build(height, width, channels, n_classes)
        assert isinstance(model, keras.Model)
        assert (output_height, output_width) == (height, width)
        images = np.random.default_rng(0).random((2, height, width, channels)).astype("float32")
        predictions = np.asarray(model.predict(images, verbose=0))
        assert predictions.shape == (2, height, width, n_classes)
        assert np.all(np.isfinite(predictions))
        assert predictions.min() >= 0.0 and predictions.max() <= 1.0
        if n_classes > 1:
            np.testing.assert_allclose(predictions.sum(axis=-1), 1.0, atol=1e-4)

    def test_logits_output(self):
        model, _, _ = self.build(32, 32, 1, 3, output_activation=None)
        images = np.random.default_rng(1).random((1, 32, 32, 1)).astype("float32")
        logits = np.asarray(model.predict(images, verbose=0))
        assert not np.allclose(logits.sum(axis=-1), 1.0, atol=1e-3)
        probabilities, _, _ = self.build(32, 32, 1, 3)
        assert probabilities.count_params() == model.count_params()

    def test_any_size_at_call_time(self):
        model, output_height, output_width = self.build(None, None, 1, 2)
        assert (output_height, output_width) == (None, None)
        # 45 x 61 is a multiple of no model's factor: padded inside the model and cropped back
        images = np.random.default_rng(2).random((1, 45, 61, 1)).astype("float32")
        assert infer(model, images).shape == (1, 45, 61, 2)

    def test_too_small_input_names_the_minimum(self):
        if self.min_size <= 1:
            pytest.skip("no minimum")
        with pytest.raises(ValueError, match=f">= {self.min_size}"):
            self.build(self.min_size - 1, 64, 1, 2)

    def test_unknown_option_is_refused(self):
        with pytest.raises(ValueError, match="Unknown option"):
            self.build(32, 32, 1, 2, not_an_option=3)

    def test_wrong_channel_count_says_how_to_fix_it(self):
        model, _, _ = self.build(32, 32, 3, 2)
        with pytest.raises(ValueError, match=r"built for 3-channel images.*build the model with input_channels=1"):
            model.predict(np.zeros((1, 32, 32, 1), "float32"), verbose=0)

    def test_no_lambda_layers(self):
        model, _, _ = self.build(32, 32, 1, 2)
        assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)

    # -- learning ------------------------------------------------------------
    def _fit(self, n_classes, one_hot, channels=1):
        height = width = self.learn_size
        images, labels = threshold_batch(4, height, width, channels, n_classes, blob_radius=self.blob_radius)
        model, _, _ = self.build(height, width, channels, n_classes)
        if n_classes == 1:
            targets, loss = labels[..., None].astype("float32"), "binary_crossentropy"
        elif one_hot:
            targets, loss = np.eye(n_classes, dtype="float32")[labels], "categorical_crossentropy"
        else:
            targets, loss = labels, "sparse_categorical_crossentropy"
        model.compile(optimizer=keras.optimizers.SGD(self.learning_rate, momentum=0.9), loss=loss)
        losses = train_steps(model, images, targets, self.steps)
        assert np.all(np.isfinite(losses)), losses
        return model, images, labels, losses

    def test_learns_with_integer_labels(self):
        _, _, _, losses = self._fit(3, one_hot=False)
        assert losses[-1] < 0.6 * losses[0], losses

    def test_learns_with_one_hot_labels_and_rgb(self):
        _, _, _, losses = self._fit(3, one_hot=True, channels=3)
        assert losses[-1] < 0.6 * losses[0], losses

    # Torch only in CI (budget): on JAX and TensorFlow the one-class sigmoid head runs in
    # test_output_shape_and_range[64-64-3-1], and sigmoid + binary cross-entropy training runs in
    # tests/losses (every loss trains a network there), while gradients through the architecture
    # are trained with in the two learning tests above.
    @pytest.mark.backend_independent
    def test_learns_binary(self):
        model, images, labels, losses = self._fit(1, one_hot=False)
        assert losses[-1] < 0.6 * losses[0], losses

    # -- saving --------------------------------------------------------------
    def test_save_and_safe_load_give_identical_predictions(self, tmp_path):
        model, _, _ = self.build(100, 76, 1, 3)
        images, _ = threshold_batch(2, 100, 76, 1, 3)
        perturb_weights(model)  # no weight at its initial value: one that failed to load would show
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")  # the optimizer is saved too
        path = tmp_path / f"{self.name}.keras"
        model.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        np.testing.assert_array_equal(
            np.asarray(model.predict(images, verbose=0)), np.asarray(loaded.predict(images, verbose=0))
        )
