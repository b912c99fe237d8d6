"""Ladder network: the paper's algorithm checked piece by piece, training through plain
``fit`` on every backend, saving, the semi-supervised batches and the labelled loss."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import universal_models as um
from universal_models.layers import GaussianCombinator, LadderBatchNormalization
from universal_models.layers.ladder import batch_statistics
from universal_models.models.ladder import LabeledCrossEntropy, LadderNetwork, SemiSupervisedDataset

EPSILON = 1e-5


def numpy(tensor) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(tensor))


def bars(count: int, size: int = 16, seed: int = 0):
    """Images of 4 classes: a horizontal, a vertical, a diagonal bar, or a square; plus noise."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 0.1, (count, size, size, 1)).astype("float32")
    labels = np.arange(count) % 4
    for image, label in zip(images[..., 0], labels):
        start = rng.integers(2, size - 6)
        if label == 0:
            image[start : start + 2, 1:-1] += 1.0
        elif label == 1:
            image[1:-1, start : start + 2] += 1.0
        elif label == 2:
            for offset in range(size - 2):
                image[offset + 1, (offset + start) % size] += 1.0
        else:
            image[start : start + 5, start : start + 5] += 1.0
    return images, labels.astype("int32")


# One small configuration per encoder, shared by the tests: JAX compiles every
# operation for each new shape, so fewer shapes keep the suite fast.
CONV_SIZE, CONV_CLASSES, CONV_OPTIONS = (16, 16, 1), 4, {"encoder": "conv", "filters": (8, 16)}
DENSE_SIZE, DENSE_CLASSES, DENSE_OPTIONS = (4, 4, 1), 3, {"encoder": "dense", "units": (6, 5)}


def conv_ladder(**options) -> LadderNetwork:
    return um.get_model("ladder", *CONV_SIZE, CONV_CLASSES, **{**CONV_OPTIONS, **options})[0]


def dense_ladder(**options) -> LadderNetwork:
    return LadderNetwork(DENSE_SIZE, DENSE_CLASSES, **{**DENSE_OPTIONS, **options})


def dense_images(count: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (np.random.default_rng(seed).random((count, *DENSE_SIZE)) * scale).astype("float32")


# -- building -----------------------------------------------------------------------
@pytest.mark.parametrize("build,images", [(conv_ladder, lambda: bars(8)[0]), (dense_ladder, lambda: dense_images(8))])
def test_builds_with_output_size_one_by_one_and_class_probabilities(build, images):
    model = build()
    assert isinstance(model, keras.Model)
    probabilities = numpy(model(images()))
    assert probabilities.shape == (8, model.n_classes)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model._flatten_layers())
    _, height, width = um.get_model("ladder", *CONV_SIZE, CONV_CLASSES, **CONV_OPTIONS)
    assert (height, width) == (1, 1)


def test_dense_encoder_has_the_paper_sizes_and_takes_flat_inputs():
    model, _, _ = um.get_model("ladder", 28, 28, 1, 10, encoder="dense", variant="supervised")
    # 784-1000-500-250-250-250-10, no biases (beta is the bias), gamma on the softmax layer only.
    assert [layer.kernel.shape[-1] for layer in model.encoder_transforms] == [1000, 500, 250, 250, 250, 10]
    kernels = sum(a * b for a, b in [(784, 1000), (1000, 500), (500, 250), (250, 250), (250, 250), (250, 10)])
    units = 1000 + 500 + 250 + 250 + 250 + 10
    assert model.count_params() == kernels + units * 3 + 10  # beta, moving mean and variance; gamma on top
    small = dense_ladder()
    images = dense_images(8)
    np.testing.assert_allclose(numpy(small(images.reshape(8, -1))), numpy(small(images)), atol=1e-6)


def test_variants_decode_the_right_levels():
    full, gamma, supervised = dense_ladder(), dense_ladder(variant="gamma"), dense_ladder(variant="supervised")
    assert len(full.combinators) == 4 and len(full.decoder_transforms) == 3
    assert len(gamma.combinators) == 1 and not gamma.decoder_transforms
    assert not supervised.combinators and not supervised.decoder_transforms
    assert full.denoising_costs == (1000.0, 10.0, 0.1, 0.1)  # the authors' MNIST settings
    images = dense_images(8)
    assert sorted(full.reconstruction_costs(images)) == [0, 1, 2, 3]
    assert sorted(gamma.reconstruction_costs(images)) == [3]
    assert supervised.reconstruction_costs(images) == {}


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "size,options,message",
    [
        ((28, 28), {"variant": "ladder"}, "variant must be one of"),
        ((28, 28), {"encoder": "recurrent"}, "encoder must be one of"),
        ((30, 28), {"filters": (8, 16, 32)}, "multiples of 4"),
        ((None, 28), {}, "fixed image size"),
        ((28, 28), {"encoder": "dense", "units": (8,), "denoising_costs": (1.0, 2.0)}, "sequence of 3 numbers"),
        ((28, 28), {"encoder": "dense", "units": (8,), "noise_std": -0.1}, ">= 0"),
        ((28, 28), {"encoder": "dense", "units": (8,), "variant": "gamma", "denoising_costs": (1.0, 0, 1.0)},
         "decodes only levels >= 2"),
        ((28, 28), {"kernel_size": 4}, "kernel_size must be odd"),
        ((28, 28), {"filters": (8, 0)}, "positive integers"),
        ((28, 28), {"output_activation": "relu"}, "output_activation must be one of"),
    ],
)
def test_invalid_options_are_refused_with_a_clear_message(size, options, message):
    with pytest.raises(ValueError, match=message):
        um.get_model("ladder", *size, 1, 10, **options)


@pytest.mark.backend_independent
def test_one_class_is_refused_and_the_model_is_listed():
    with pytest.raises(ValueError, match="n_classes >= 2"):
        um.get_model("ladder", 28, 28, 1, 1)
    assert [(info.name, info.kind) for info in um.list_models("ladder")] == [("ladder", "ladder")]
    assert um.model_options("ladder")["noise_std"] == 0.3


def test_wrong_input_shape_names_the_expected_one():
    model = conv_ladder()
    with pytest.raises(ValueError, match=r"\(batch, 16, 16, 1\)"):
        model(np.zeros((2, 16, 12, 1), "float32"))


# -- the paper's details ---------------------------------------------------------
def test_gaussian_combinator_formula_and_initialisation():
    combinator = GaussianCombinator()
    rng = np.random.default_rng(0)
    lateral, vertical = rng.normal(size=(2, 4, 3)).astype("float32")
    # Initialised a2 = a7 = 1, the rest 0: the estimate starts at 0.
    np.testing.assert_allclose(numpy(combinator([lateral, vertical])), 0.0, atol=1e-7)
    assert [float(numpy(a)[0]) for a in combinator.coefficients] == [0, 1, 0, 0, 0, 0, 1, 0, 0, 0]
    assert all(a.shape == (3,) for a in combinator.coefficients)  # ten parameters per unit
    values = rng.normal(size=(10, 3)).astype("float32")
    for coefficient, value in zip(combinator.coefficients, values):
        coefficient.assign(value)
    a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = values
    sigmoid = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
    mean = a1 * sigmoid(a2 * vertical + a3) + a4 * vertical + a5
    slope = a6 * sigmoid(a7 * vertical + a8) + a9 * vertical + a10
    np.testing.assert_allclose(numpy(combinator([lateral, vertical])), (lateral - mean) * slope + mean, rtol=1e-5,
                               atol=1e-6)


def test_ladder_batch_normalization_returns_batch_statistics_and_applies_beta_gamma_after():
    layer = LadderBatchNormalization(scale=True, momentum=0.5)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(50, 4)) * 3 + 2).astype("float32")
    z, mean, std = (numpy(t) for t in layer(x, training=True))
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std, np.sqrt(x.var(0) + EPSILON), rtol=1e-5)
    np.testing.assert_allclose(z, (x - x.mean(0)) / np.sqrt(x.var(0) + EPSILON), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(numpy(layer.moving_mean), 0.5 * x.mean(0), rtol=1e-5)
    layer(x * 5, training=True, update_statistics=False)  # e.g. the corrupted pass
    np.testing.assert_allclose(numpy(layer.moving_mean), 0.5 * x.mean(0), rtol=1e-5)
    layer.beta.assign(np.full(4, 0.5, "float32"))
    layer.gamma.assign(np.full(4, 2.0, "float32"))
    np.testing.assert_allclose(numpy(layer.shift_and_scale(z)), 2.0 * (z + 0.5), rtol=1e-5)
    z_inference, _, _ = layer(x, training=False)
    moving_std = np.sqrt(numpy(layer.moving_variance) + EPSILON)
    np.testing.assert_allclose(numpy(z_inference), (x - numpy(layer.moving_mean)) / moving_std, rtol=1e-4, atol=1e-5)


def test_labelled_and_unlabelled_samples_get_statistics_of_their_own():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 2, 2, 3)).astype("float32")
    x[:4] += 5.0  # the labelled samples
    labeled = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], "float32")
    mean, std, population_mean, population_variance = (numpy(t) for t in batch_statistics(x, labeled))
    np.testing.assert_allclose(mean[:4], np.broadcast_to(x[:4].mean((0, 1, 2)), (4, 1, 1, 3)), rtol=1e-5)
    np.testing.assert_allclose(mean[4:], np.broadcast_to(x[4:].mean((0, 1, 2)), (6, 1, 1, 3)), rtol=1e-5)
    np.testing.assert_allclose(std[:4], np.broadcast_to(np.sqrt(x[:4].var((0, 1, 2)) + EPSILON), (4, 1, 1, 3)),
                               rtol=1e-4)
    np.testing.assert_allclose(std[4:], np.broadcast_to(np.sqrt(x[4:].var((0, 1, 2)) + EPSILON), (6, 1, 1, 3)),
                               rtol=1e-4)
    np.testing.assert_allclose(population_mean, x[4:].mean((0, 1, 2)), rtol=1e-5)  # moving averages: unlabelled
    np.testing.assert_allclose(population_variance, x[4:].var((0, 1, 2)), rtol=1e-4)
    _, _, only_labeled_mean, _ = batch_statistics(x, np.ones(10, "float32"))
    np.testing.assert_allclose(numpy(only_labeled_mean), x.mean((0, 1, 2)), rtol=1e-5)


def test_fit_hands_the_labels_to_call_and_normalises_the_groups_apart():
    model = dense_ladder(batch_norm_momentum=0.5, variant="gamma")
    model.compile()
    images = dense_images(12)
    images[:4] += 3.0
    labels = np.array([0, 1, 2, 0] + [-1] * 8, "int32")
    kernel = numpy(model.encoder_transforms[0].kernel)
    model.fit(images, labels, batch_size=12, epochs=1, verbose=0, shuffle=False)
    unlabeled_mean = (images[4:].reshape(8, -1) @ kernel).mean(0)  # not the whole batch's mean
    np.testing.assert_allclose(numpy(model.encoder_norms[0].moving_mean), 0.5 * unlabeled_mean, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="-1 for an unlabelled"):
        model.fit(images, epochs=1, verbose=0)
    joint = dense_ladder(batch_norm_momentum=0.5, variant="gamma", separate_statistics=False)
    joint((images, labels), training=True)
    joint_mean = (images.reshape(12, -1) @ numpy(joint.encoder_transforms[0].kernel)).mean(0)
    np.testing.assert_allclose(numpy(joint.encoder_norms[0].moving_mean), 0.5 * joint_mean, rtol=1e-4, atol=1e-6)


def _reference_costs(model: LadderNetwork, x: np.ndarray) -> dict[int, float]:
    """Algorithm 1 of Rasmus et al. (2015) in numpy, noise-free, for a dense ladder."""

    def statistics(a):
        return a.mean(0), np.sqrt(a.var(0) + EPSILON)

    def standardize(a):
        mean, std = statistics(a)
        return (a - mean) / std

    def g(combinator, lateral, vertical):
        a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = (numpy(a) for a in combinator.coefficients)
        sigmoid = lambda t: 1 / (1 + np.exp(-t))  # noqa: E731
        mean = a1 * sigmoid(a2 * vertical + a3) + a4 * vertical + a5
        return (lateral - mean) * (a6 * sigmoid(a7 * vertical + a8) + a9 * vertical + a10) + mean

    zs, means, stds, h = [x], [None], [None], x
    for dense, norm in zip(model.encoder_transforms, model.encoder_norms):
        pre = h @ numpy(dense.kernel)
        mean, std = statistics(pre)
        z = (pre - mean) / std
        shifted = z + numpy(norm.beta)
        if norm.gamma is not None:
            logits = numpy(norm.gamma) * shifted
            h = np.exp(logits - logits.max(1, keepdims=True))
            h /= h.sum(1, keepdims=True)
        else:
            h = np.maximum(shifted, 0)
        zs.append(z), means.append(mean), stds.append(std)
    top = len(zs) - 1
    costs, estimate = {}, None
    for level in range(top, -1, -1):
        vertical = h if level == top else estimate @ numpy(model.decoder_transforms[level].kernel)
        estimate = g(model.combinators[level], zs[level], standardize(vertical))
        normalized = estimate if level == 0 else (estimate - means[level]) / stds[level]  # std, not variance
        costs[level] = model.denoising_costs[level] * np.mean((normalized - zs[level]) ** 2)  # / layer width
    return costs


def test_denoising_costs_follow_algorithm_1():
    model = dense_ladder(noise_std=0.0, denoising_costs=(2.0, 1.0, 0.5, 3.0))
    rng = np.random.default_rng(1)
    for variable in model.trainable_variables:  # every parameter away from its initial value
        variable.assign(rng.normal(0.0, 0.7, variable.shape).astype("float32"))
    images = (rng.normal(size=(8, *DENSE_SIZE)) * 3 + 1).astype("float32")  # variances far from 1
    expected = _reference_costs(model, images.reshape(8, -1))
    costs = {level: float(numpy(cost)) for level, cost in model.reconstruction_costs(images).items()}
    assert sorted(costs) == [0, 1, 2, 3]
    for level in costs:
        np.testing.assert_allclose(costs[level], expected[level], rtol=2e-4, err_msg=f"level {level}")


def test_noise_is_added_after_normalisation_and_statistics_come_from_the_clean_pass():
    model = dense_ladder(noise_std=0.5, batch_norm_momentum=0.5)
    images = dense_images(1000)
    flat = images.reshape(1000, -1)
    corrupted = model._encode(ops.convert_to_tensor(flat), corrupted=True, training=True, update_statistics=False)
    # Input: x + N(0, 0.5^2). Layer 1: normalised (variance 1), then noise: variance 1 + 0.25.
    assert abs(float(np.std(numpy(corrupted.z[0]) - flat)) - 0.5) < 0.01
    assert abs(float(numpy(corrupted.z[1]).var(0).mean()) - 1.25) < 0.08
    np.testing.assert_allclose(numpy(model.encoder_norms[0].moving_mean), 0.0)  # untouched so far
    model(images, training=True)
    clean_mean = (flat @ numpy(model.encoder_transforms[0].kernel)).mean(0)
    np.testing.assert_allclose(numpy(model.encoder_norms[0].moving_mean), 0.5 * clean_mean, rtol=1e-4, atol=1e-6)


def test_training_output_is_the_corrupted_path_and_inference_the_clean_one():
    images = dense_images(8)
    noisy = dense_ladder(seed=3)
    first, second = numpy(noisy(images, training=True)), numpy(noisy(images, training=True))
    inference = numpy(noisy(images, training=False))
    assert np.abs(first - second).max() > 1e-3  # fresh corruption at every call
    assert np.abs(first - inference).max() > 1e-3
    quiet = dense_ladder(noise_std=0.0)
    np.testing.assert_allclose(numpy(quiet(images, training=True)), numpy(quiet(images, training=True)), atol=1e-6)


def test_logits_option():
    model = dense_ladder(output_activation=None)
    model.compile()
    assert model.loss.from_logits
    logits = numpy(model(dense_images(8)))
    assert not np.allclose(logits.sum(-1), 1.0, atol=1e-3)


# -- training through fit ---------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    """A small convolutional ladder trained with plain fit: first on unlabelled images
    only, then on batches of 16 labelled and 32 unlabelled images."""
    keras.utils.set_random_seed(0)
    images, labels = bars(96, seed=1)
    # Momentum 0.9: the moving averages must settle within the 51 steps of this test.
    model = conv_ladder(seed=0, batch_norm_momentum=0.9)
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    kernel = numpy(model.encoder_transforms[0].kernel)
    unlabeled = model.fit(images, np.full(96, -1, "int32"), batch_size=48, epochs=5, verbose=0).history
    unsupervised_kernel = numpy(model.encoder_transforms[0].kernel)
    data = SemiSupervisedDataset(images[:32], labels[:32], images, batch_size=32, labeled_batch_size=16, seed=0)
    mixed = model.fit(data, epochs=12, verbose=0).history
    return {"model": model, "images": images, "labels": labels, "unlabeled": unlabeled, "mixed": mixed,
            "kernels": (kernel, unsupervised_kernel)}


def test_unlabelled_batches_train_the_encoder_and_lower_the_denoising_cost(trained):
    history = trained["unlabeled"]
    assert np.all(np.isfinite(history["loss"]))
    np.testing.assert_allclose(history["supervised_cost"], 0.0, atol=1e-6)  # no label, no supervised cost
    assert history["reconstruction_cost"][-1] < 0.7 * history["reconstruction_cost"][0], history
    before, after = trained["kernels"]
    assert np.abs(after - before).max() > 1e-3  # the encoder learnt from images alone


def test_fit_learns_from_the_labels_and_adds_the_reconstruction_cost(trained):
    history = trained["mixed"]
    assert set(history) == {"loss", "supervised_cost", "reconstruction_cost"}
    assert np.all(np.isfinite(history["loss"]))
    # add_loss is honoured: loss = supervised (corrupted path) + reconstruction.
    np.testing.assert_allclose(np.add(history["supervised_cost"], history["reconstruction_cost"]),
                               history["loss"], rtol=1e-4)
    assert history["supervised_cost"][-1] < 0.5 * history["supervised_cost"][0], history
    predictions = trained["model"].predict(trained["images"], batch_size=32, verbose=0)
    accuracy = np.mean(np.argmax(predictions, -1) == trained["labels"])
    assert accuracy > 0.9, accuracy  # chance: 0.25; 32 of the 96 images are labelled


def test_inference_uses_the_moving_statistics(trained):
    model, images = trained["model"], trained["images"]
    norm = model.encoder_norms[0]
    moving_mean = numpy(norm.moving_mean)
    assert np.abs(moving_mean).max() > 1e-3  # updated by fit, also on JAX's stateless step
    # A sample's prediction does not depend on the other samples of its batch.
    other_batch = images[32:64].copy()
    other_batch[0] = images[0]
    np.testing.assert_allclose(model.predict(images[:32], batch_size=32, verbose=0)[0],
                               model.predict(other_batch, batch_size=32, verbose=0)[0], atol=1e-5)
    reference = numpy(model(images[:8]))
    try:
        norm.moving_mean.assign(moving_mean + 1.0)
        assert np.abs(numpy(model(images[:8])) - reference).max() > 1e-3
    finally:
        norm.moving_mean.assign(moving_mean)


def test_save_and_safe_load_give_identical_predictions(trained, tmp_path):
    model, images, labels = trained["model"], trained["images"], trained["labels"]
    path = tmp_path / "ladder.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, LadderNetwork) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(numpy(model(images[:8])), numpy(loaded(images[:8])))
    assert isinstance(loaded.loss, LabeledCrossEntropy)
    results = loaded.evaluate(images[:32], labels[:32], batch_size=32, verbose=0, return_dict=True)
    assert set(results) == {"loss", "supervised_cost", "reconstruction_cost"} and results["reconstruction_cost"] > 0


# -- loss and batches -------------------------------------------------------------
def test_labeled_cross_entropy_ignores_unlabelled_samples():
    probabilities = np.array([[0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]], "float32")
    expected = -(np.log(0.8) + np.log(0.5)) / 2
    loss = LabeledCrossEntropy()
    assert float(numpy(loss(np.array([2, -1, 0]), probabilities))) == pytest.approx(expected, rel=1e-5)
    assert float(numpy(loss(np.array([[2], [-1], [0]]), probabilities))) == pytest.approx(expected, rel=1e-5)
    one_hot = np.array([[0, 0, 1], [0, 0, 0], [1, 0, 0]], "float32")
    assert float(numpy(loss(one_hot, probabilities))) == pytest.approx(expected, rel=1e-5)
    assert float(numpy(loss(np.array([-1, -1, -1]), probabilities))) == 0.0
    logits = np.log(probabilities)
    from_logits = LabeledCrossEntropy(from_logits=True)
    assert float(numpy(from_logits(np.array([2, -1, 0]), logits))) == pytest.approx(expected, rel=1e-5)
    assert LabeledCrossEntropy.from_config(from_logits.get_config()).from_logits
    with pytest.raises(ValueError, match="one-hot"):
        loss(np.zeros((3, 2)), probabilities)  # neither class indices nor one-hot rows of 3 classes


@pytest.mark.backend_independent
def test_semi_supervised_dataset_mixes_every_label_with_new_unlabelled_samples():
    x_labeled = np.arange(10, dtype="float32").reshape(10, 1, 1, 1)
    y_labeled = np.arange(10) % 3
    x_unlabeled = 100 + np.arange(45, dtype="float32").reshape(45, 1, 1, 1)
    data = SemiSupervisedDataset(x_labeled, y_labeled, x_unlabeled, batch_size=20, seed=0)
    assert len(data) == 2 and data.labeled_batch_size == 10
    seen = []
    for index in range(len(data)):
        x, y = data[index]
        assert x.shape == (30, 1, 1, 1) and y.dtype == np.int32
        assert sorted(x[:10, 0, 0, 0]) == list(range(10))  # all labelled samples in every batch
        np.testing.assert_array_equal(y[:10], y_labeled[x[:10, 0, 0, 0].astype(int)])
        assert np.all(y[10:] == -1) and np.all(x[10:] >= 100)
        seen.extend(x[10:, 0, 0, 0])
    assert len(set(seen)) == 40  # no unlabelled sample twice in an epoch
    first_epoch = data[0][0].copy()
    data.on_epoch_end()
    assert not np.array_equal(first_epoch, data[0][0])  # a new order each epoch
    cycling = SemiSupervisedDataset(x_labeled, y_labeled, x_unlabeled, batch_size=20, labeled_batch_size=4)
    drawn = np.concatenate([cycling[index][0][:4, 0, 0, 0] for index in range(len(cycling))])
    assert len(set(drawn)) == 8  # labelled samples taken in turn, not at random with repeats
    unsupervised = SemiSupervisedDataset(None, None, x_unlabeled, batch_size=20)
    assert np.all(unsupervised[0][1] == -1) and unsupervised[0][0].shape == (20, 1, 1, 1)


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "arguments,message",
    [
        ((np.zeros((3, 2)), np.array([0, 1, -1]), np.zeros((5, 2))), "integer class labels >= 0"),
        ((np.zeros((3, 2)), np.array([0, 1]), np.zeros((5, 2))), "one integer class label"),
        ((np.zeros((3, 2)), np.array([0, 1, 1]), np.zeros((5, 3))), "same shape"),
        ((np.zeros((3, 2)), np.eye(3), np.zeros((5, 2))), "argmax"),
    ],
)
def test_semi_supervised_dataset_refuses_bad_input(arguments, message):
    with pytest.raises(ValueError, match=message):
        SemiSupervisedDataset(*arguments)
