"""GraphModel: the library's functional models and their eager runner on PyTorch.

On the torch backend a :class:`~universal_models.runtime.graph.GraphModel` runs its
graph through a plan (``universal_models.runtime.torch.plan``) instead of Keras'
functional runner. These tests hold the plan to Keras' runner on the same
model and weights: outputs, gradients and batch-norm moving statistics in
training, outputs and gradients in inference, and outputs in gradient-free
inference (where batch norm is folded into the convolution before it). They
also check what the plan decides (fusions, releases, fallbacks) and that the
models save and load as GraphModel. On JAX and TensorFlow a GraphModel is a
plain functional model; the backend-independent tests below run there too.
"""

from __future__ import annotations

import gc
import weakref

import keras
import numpy as np
import pytest

import universal_models as um
from tests.helpers import infer, perturb_weights, to_backend, to_numpy
from tests.models.options import SMALL
from universal_models.layers.blocks import conv_bn_act
from universal_models.layers.normalization import BatchNormalization
from universal_models.runtime.graph import GraphModel

torch_only = pytest.mark.skipif(keras.config.backend() != "torch", reason="the plan runs on the torch backend only")



def _build(name: str):
    recurrent = name.startswith("lstm")
    size = 32
    model, _, _ = um.get_model(name, size, size, 1 if recurrent else 2, 3, **SMALL[name])
    shape = (2, 3, size, size, 1) if recurrent else (2, size, size, 2)
    images = np.random.default_rng(0).normal(size=shape).astype("float32")
    return model, images


def _keras_runner(model, inputs, training):
    """The same model through Keras' own functional runner (``Functional.call``)."""
    from keras.src.models.functional import Functional

    return Functional.call(model, inputs, training=training)


def _run(model, images, training, runner):
    """Outputs, gradients of a weighted sum of them (trainable weights and input) and the
    weights afterwards; the weights are restored."""
    import torch

    before = [variable.value.detach().clone() for variable in model.weights]
    tensor = to_backend(images, requires_grad=True)
    outputs = runner(model, tensor, training)
    weights = to_backend(np.linspace(-1.0, 1.0, outputs.numel(), dtype="float32").reshape(tuple(outputs.shape)))
    gradients = torch.autograd.grad((outputs * weights).sum(), [tensor] + [v.value for v in model.trainable_weights])
    after = [to_numpy(variable) for variable in model.weights]
    for variable, value in zip(model.weights, before):
        variable.assign(value)
    return to_numpy(outputs), [to_numpy(g) for g in gradients], after


def _plan_runner(model, inputs, training):
    return model(inputs, training=training)


def _assert_close(mine, theirs, rtol, label, floor=1e-6):
    """Equal to ``rtol`` of the reference's largest magnitude (at least ``floor``: a gradient that
    is zero in exact arithmetic, such as that of a bias before a batch norm, is float32 noise)."""
    scale = max(float(np.abs(theirs).max()), floor)
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=rtol * scale, err_msg=label)


@torch_only
@pytest.mark.parametrize("name", sorted(SMALL))
def test_plan_matches_keras_runner(name):
    import torch

    model, images = _build(name)
    assert isinstance(model, GraphModel)
    perturb_weights(model)
    for training in (True, False):
        ours = _run(model, images, training, _plan_runner)
        theirs = _run(model, images, training, _keras_runner)
        _assert_close(ours[0], theirs[0], 1e-5, f"outputs, training={training}")
        largest = max(float(np.abs(gradient).max()) for gradient in theirs[1])
        for index, (mine, reference) in enumerate(zip(ours[1], theirs[1])):
            _assert_close(mine, reference, 1e-4, f"gradient {index}, training={training}", floor=1e-3 * largest)
        for variable, mine, reference in zip(model.weights, ours[2], theirs[2]):
            _assert_close(mine, reference, 1e-5, f"{variable.path} after the call, training={training}")
    with torch.no_grad():  # the folded batch norms
        folded = to_numpy(model(to_backend(images), training=False))
        reference = to_numpy(_keras_runner(model, to_backend(images), False))
    _assert_close(folded, reference, 1e-5, "gradient-free inference")


#: unit roundoff of each mixed policy's compute dtype
MIXED_ROUNDOFF = {"mixed_bfloat16": 2.0 ** -8, "mixed_float16": 2.0 ** -11}


def _relative_error(mine, reference, floor: float) -> float:
    """``|mine - reference| / max(|reference|, floor)`` in the L2 norm over the whole tensor."""
    difference = np.linalg.norm((np.asarray(mine, "float64") - reference).ravel())
    return float(difference / max(float(np.linalg.norm(np.asarray(reference, "float64").ravel())), floor))


def _build_mixed(name: str, policy: str):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return _build(name)[0]
    finally:
        keras.config.set_dtype_policy(previous)


@torch_only
@pytest.mark.parametrize("policy", sorted(MIXED_ROUNDOFF))
@pytest.mark.parametrize("name", sorted(SMALL))
def test_plan_matches_keras_runner_under_mixed_precision(name, policy):
    """Under a mixed policy the plan runs too (direct half-precision convolutions, batch norm in float32
    on half-precision activations, batch norm folded in inference), and is as accurate as Keras' runner.

    Both round to half precision, but not at the same places (the plan adds a convolution's bias inside
    the convolution and folds batch norm into the kernel in float32, where Keras rounds the convolution's
    output before the batch norm), and SegNet's unpooling turns a rounding difference at a tied maximum
    into a moved value. So each is compared with the same weights in float32, and the plan's error
    (relative, L2 norm over each output, gradient and weight) may be at most 1.5 times Keras' runner's
    plus two units of the precision."""
    import torch

    reference, images = _build(name)
    perturb_weights(reference)
    model = _build_mixed(name, policy)
    model.set_weights(reference.get_weights())
    from universal_models.runtime.torch.plan import GraphPlan

    kinds = {step.kind for step in GraphPlan(model).steps}
    assert {"conv", "batch_norm"} <= kinds, kinds  # the plan's own paths, not Keras' __call__
    slack = 2 * MIXED_ROUNDOFF[policy]

    def check(label, mine, theirs, exact, floor=1e-12):
        ours_error, keras_error = _relative_error(mine, exact, floor), _relative_error(theirs, exact, floor)
        assert ours_error <= 1.5 * keras_error + slack, f"{label}: plan {ours_error:.2e}, Keras {keras_error:.2e}"

    for training in (True, False):
        exact = _run(reference, images, training, _keras_runner)
        ours, theirs = _run(model, images, training, _plan_runner), _run(model, images, training, _keras_runner)
        check(f"outputs, training={training}", ours[0], theirs[0], exact[0])
        largest = max(float(np.linalg.norm(gradient)) for gradient in exact[1])
        for index, gradients in enumerate(zip(ours[1], theirs[1], exact[1])):
            check(f"gradient {index}, training={training}", *gradients, floor=1e-3 * largest)
        for variable, weights in zip(model.weights, zip(ours[2], theirs[2], exact[2])):
            check(f"{variable.path} after the call, training={training}", *weights)
    with torch.no_grad():  # the folded batch norms
        exact = to_numpy(_keras_runner(reference, to_backend(images), False))
        check("gradient-free inference", to_numpy(model(to_backend(images), training=False)),
              to_numpy(_keras_runner(model, to_backend(images), False)), exact)


@torch_only
def test_jit_compile_on_torch_trains_eagerly_with_the_same_numbers():
    """compile(jit_compile=True) works on torch: the model trains and predicts through its eager plan
    (torch.compile of Keras' step does not, see GraphModel.jit_compile), with jit_compile=False's numbers."""
    images = np.random.default_rng(9).normal(size=(4, 32, 32, 2)).astype("float32")
    labels = np.random.default_rng(10).integers(0, 3, (4, 32, 32)).astype("int32")
    losses, predictions = [], []
    for jit_compile in (True, False):
        keras.utils.set_random_seed(4)
        model, _, _ = um.get_model("testnet", 32, 32, 2, 3, base_filters=4)
        if jit_compile:
            with pytest.warns(UserWarning, match="eagerly through its plan"):
                model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=True)
            assert model.jit_compile is False
        else:
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=False)
        losses.append([float(model.train_on_batch(images, labels)) for _ in range(2)])
        predictions.append(model.predict_on_batch(images))
    assert losses[0] == losses[1]
    np.testing.assert_array_equal(predictions[0], predictions[1])


@torch_only
def test_plan_fuses_every_conv_bn_relu_block():
    from universal_models.runtime.torch.plan import GraphPlan

    model, _ = _build("unet")
    plan = GraphPlan(model)
    kinds = {step.layer.name: step for step in plan.steps}
    norms = [layer.name for layer in model.layers if isinstance(layer, BatchNormalization)]
    assert norms
    for norm in norms:
        block = norm[: -len("_bn")]
        assert kinds[norm].kind == "batch_norm" and kinds[norm].relu, norm
        assert kinds[f"{block}_relu"].kind == "alias", block
        assert kinds[f"{block}_conv"].kind == "conv" and kinds[f"{block}_conv"].fold is kinds[norm], block
    segnet = GraphPlan(_build("segnet")[0])
    kinds = {step.layer.name: step.kind for step in segnet.steps}
    for block in (1, 2, 3):  # the indices pass between pooling and unpooling in PyTorch's form
        assert kinds[f"encoder{block}_pool"] == "argmax_pool" and kinds[f"decoder{block}_unpool"] == "unpool"
    # every intermediate tensor is released exactly once, the outputs never
    released = [slot for step in plan.steps for slot in step.release]
    assert len(released) == len(set(released))
    assert not set(released) & set(plan.output_slots)
    assert set(released) | set(plan.output_slots) == set(range(plan.n_slots))


def _shared_norm_model():
    """A batch norm whose output feeds a ReLU *and* an addition: the ReLU must not be in place."""
    inputs = keras.Input((8, 8, 3))
    convolved = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
    normalised = BatchNormalization(name="bn")(convolved)
    rectified = keras.layers.Activation("relu", name="relu")(normalised)
    outputs = keras.layers.Add(name="add")([rectified, normalised])
    return GraphModel(inputs, outputs, name="shared")


def _plain_keras_twin(model):
    """The same graph and weights as a plain ``keras.Model`` (run by Keras' own runner)."""
    twin = keras.Model.from_config(model.get_config())
    twin.set_weights(model.get_weights())
    assert type(twin) is not GraphModel
    return twin


@torch_only
def test_training_moves_kernels_to_channels_last_and_matches_keras(tmp_path):
    """Kernels move into the memory layout their convolution reads at the first call, optimizer
    slots follow once the optimizer exists, and training gives Keras' numbers; a trained model
    saves and loads with the same values."""
    import torch

    keras.utils.set_random_seed(3)
    model, _, _ = um.get_model("unet", 32, 32, 2, 3, base_filters=16, depth=3)
    twin = _plain_keras_twin(model)
    images = np.random.default_rng(6).normal(size=(4, 32, 32, 2)).astype("float32")
    labels = np.random.default_rng(7).integers(0, 3, (4, 32, 32)).astype("int32")
    histories = []
    for network in (model, twin):
        # The library's loss: Keras' sparse cross-entropy fails in backward on a plain keras.Model on torch
        # from Keras 3.14 (tests/test_keras_losses.py; GraphModel routes around it).
        network.compile(optimizer=keras.optimizers.Adam(1e-3), loss="cross_entropy")
        histories.append(network.fit(images, labels, batch_size=2, epochs=3, shuffle=False, verbose=0).history["loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-5)
    for mine, reference in zip(model.get_weights(), twin.get_weights()):
        np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-5 * max(1.0, float(np.abs(reference).max())))
    kernel = model.get_layer("encoder1_1_conv").kernel
    assert kernel.value.permute(3, 2, 0, 1).is_contiguous(memory_format=torch.channels_last)
    assert not twin.get_layer("encoder1_1_conv").kernel.value.permute(3, 2, 0, 1).is_contiguous(
        memory_format=torch.channels_last)
    slots = [slot for slot in model.optimizer.variables if slot.name.startswith("encoder1_1_conv_kernel_")]
    assert len(slots) == 2 and all(slot.value.stride() == kernel.value.stride() for slot in slots)
    model.save(tmp_path / "trained.keras")
    loaded = keras.saving.load_model(tmp_path / "trained.keras", safe_mode=True)
    for mine, reference in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(mine, reference)
    # (the two kernels' storage differs until the loaded model's first call; oneDNN may sum in
    # another order for another weight layout)
    np.testing.assert_allclose(infer(loaded, images), infer(model, images), rtol=0, atol=1e-6)


@torch_only
def test_batch_norm_with_two_consumers_is_not_fused():
    import torch

    from universal_models.runtime.torch.plan import GraphPlan

    model = _shared_norm_model()
    plan = GraphPlan(model)
    kinds = {step.layer.name: step for step in plan.steps}
    assert not kinds["bn"].relu and kinds["relu"].kind != "alias"
    assert kinds["conv"].fold is kinds["bn"]  # folding stays valid: both readers get the folded output
    images = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    perturb_weights(model)
    for training in (True, False):
        ours, theirs = _run(model, images, training, _plan_runner), _run(model, images, training, _keras_runner)
        _assert_close(ours[0], theirs[0], 1e-6, f"training={training}")
        assert (ours[0] < 0).any()  # the addition saw the normalised values before the ReLU
    with torch.no_grad():
        _assert_close(to_numpy(model(images)), to_numpy(_keras_runner(model, to_backend(images), False)), 1e-6,
                      "no_grad")


@torch_only
@pytest.mark.parametrize("options", [
    {"strides": 2, "padding": "same"},  # asymmetric padding at an even size
    {"strides": 2, "padding": "valid"},
    {"dilation_rate": 2, "padding": "same", "activation": "relu"},
    {"kernel_size": 4, "padding": "same", "activation": "tanh"},  # even kernel: padded before the call
    {"groups": 2, "padding": "same", "use_bias": False},
    {"kernel_size": 1},
])
def test_direct_convolution_matches_keras(options):
    from universal_models.runtime.torch.plan import GraphPlan

    options = {"kernel_size": 3, **options}
    inputs = keras.Input((10, 9, 4))
    outputs = keras.layers.Conv2D(6, name="conv", **options)(inputs)
    model = GraphModel(inputs, outputs)
    assert GraphPlan(model).steps[0].kind == "conv"
    images = np.random.default_rng(2).normal(size=(2, 10, 9, 4)).astype("float32")
    for training in (True, False):
        ours, theirs = _run(model, images, training, _plan_runner), _run(model, images, training, _keras_runner)
        assert ours[0].shape == theirs[0].shape
        _assert_close(ours[0], theirs[0], 1e-6, "outputs")
        for mine, reference in zip(ours[1], theirs[1]):
            # the bias gradient is summed inside the convolution's backward, in another order
            _assert_close(mine, reference, 1e-4, "gradients")


class _Recorder(keras.layers.Layer):
    """Identity that keeps a weak reference to its input."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.reference = None

    def call(self, inputs):
        self.reference = weakref.ref(inputs)
        return inputs * 1.0


class _Probe(keras.layers.Layer):
    """Identity that records whether the recorder's input was still alive when it ran."""

    def __init__(self, recorder, **kwargs):
        super().__init__(**kwargs)
        self.recorder = recorder
        self.saw_alive = None

    def call(self, inputs):
        if self.recorder.reference is not None:
            gc.collect()
            self.saw_alive = self.recorder.reference() is not None
        return inputs


@torch_only
def test_intermediates_are_released_after_their_last_use():
    """Keras' runner holds every intermediate to the end of the forward pass; the plan drops each
    one after its last reader, so in inference memory is reused while the pass goes on."""
    import torch

    inputs = keras.Input((8, 8, 3))
    first = keras.layers.Conv2D(4, 3, padding="same", name="first")(inputs)
    recorder = _Recorder(name="recorder")
    tensor = keras.layers.Conv2D(4, 3, padding="same", name="second")(recorder(first))
    probe = _Probe(recorder, name="probe")
    model = GraphModel(inputs, probe(tensor))
    with torch.no_grad():
        model(np.zeros((1, 8, 8, 3), "float32"))
        assert probe.saw_alive is False
        recorder.reference = None
        _keras_runner(model, to_backend(np.zeros((1, 8, 8, 3), "float32")), False)
        assert probe.saw_alive is True  # Keras' runner, for contrast


@torch_only
def test_plan_steps_aside_where_keras_must_run():
    """Masks and stateless calls go through Keras' code, with Keras' results."""

    from universal_models.runtime.torch.plan import GraphPlan

    model, images = _build("unet")
    tensor = to_backend(images)
    plan = GraphPlan(model)
    masked = to_backend(images)
    keras.src.backend.set_keras_mask(masked, to_backend(np.ones(images.shape[:3], dtype=bool)))
    assert plan.run([masked], False) is None
    assert plan.run([tensor], False) is not None
    # stateless_call: the plan defers to Keras inside the stateless scope
    outputs, _ = model.stateless_call([v.value for v in model.trainable_variables],
                                      [v.value for v in model.non_trainable_variables], tensor, training=False)
    _assert_close(to_numpy(outputs), to_numpy(_keras_runner(model, tensor, False)), 1e-5, "stateless")


@torch_only
def test_layer_with_regulariser_is_called_by_keras():
    """A ReLU with an activity regulariser is not folded into the batch norm before it: Keras'
    ``__call__`` records its loss."""
    from universal_models.runtime.torch.plan import GraphPlan

    inputs = keras.Input((8, 8, 3))
    tensor = BatchNormalization(name="bn")(keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs))
    outputs = keras.layers.Activation("relu", activity_regularizer=keras.regularizers.L2(0.1), name="relu")(tensor)
    model = GraphModel(inputs, outputs)
    kinds = {step.layer.name: step for step in GraphPlan(model).steps}
    assert kinds["relu"].kind == "keras" and not kinds["bn"].relu
    images = np.random.default_rng(8).normal(size=(2, 8, 8, 3)).astype("float32")
    model(images, training=True)
    ours = [float(keras.ops.convert_to_numpy(loss)) for loss in model.losses]
    _keras_runner(model, keras.ops.convert_to_tensor(images), True)
    assert len(ours) == 1 and ours[0] > 0
    np.testing.assert_allclose(ours, [float(keras.ops.convert_to_numpy(loss)) for loss in model.losses], rtol=1e-5)


@torch_only
def test_unpooling_gradient_is_channels_last():
    """max_unpool2d's own backward returns NCHW memory; the layer hands back channels-last memory
    (the layout of everything else in the network), with the same values."""
    import torch

    from universal_models.layers.fast_paths import use_fast_paths
    from universal_models.layers.pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D

    images = np.random.default_rng(3).normal(size=(2, 8, 8, 5)).astype("float32")
    pooled, indices = MaxPoolingWithArgmax2D()(images)
    gradients = []
    for fast in (True, False):
        values = pooled.detach().clone().requires_grad_(True)
        with use_fast_paths(fast):
            unpooled = MaxUnpooling2D()([values, indices])
        weights = to_backend(np.linspace(-1, 1, unpooled.numel(), dtype="float32").reshape(tuple(unpooled.shape)))
        (gradient,) = torch.autograd.grad((unpooled * weights).sum(), [values])
        gradients.append(gradient)
    assert gradients[0].is_contiguous()  # NHWC, i.e. channels-last memory
    np.testing.assert_array_equal(to_numpy(gradients[0]), to_numpy(gradients[1]))


# -- every backend -------------------------------------------------------------------
@pytest.mark.backend_independent
def test_every_functional_model_is_a_graph_model_and_in_the_table():
    """Every registered model but the (subclassed) Ladder is a GraphModel, and test_plan_matches_keras_runner
    covers each of them."""
    names = {info.name for info in um.list_models() if info.kind != "ladder"}
    assert set(SMALL) == names
    for name in ("unet", "lstm_shallow"):
        assert isinstance(_build(name)[0], GraphModel)


def test_graph_model_saves_loads_and_equals_a_functional_model(tmp_path):
    """A GraphModel gives a keras.Model's outputs and survives a safe save/load as itself."""
    inputs = keras.Input((8, 8, 2))
    outputs = keras.layers.Conv2D(3, 1, name="head")(conv_bn_act(inputs, 4, name="block"))
    ours = GraphModel(inputs, outputs, name="graph")
    plain = keras.Model(inputs, outputs)
    perturb_weights(ours)
    images = np.random.default_rng(4).normal(size=(2, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(infer(ours, images), infer(plain, images), rtol=1e-5, atol=1e-5)
    ours.save(tmp_path / "graph.keras")
    loaded = keras.saving.load_model(tmp_path / "graph.keras", safe_mode=True)
    assert type(loaded) is GraphModel and loaded.name == "graph"
    np.testing.assert_allclose(infer(loaded, images), infer(ours, images), rtol=1e-6, atol=1e-6)
