"""The eager runner of :class:`universal_models.runtime.graph.GraphModel` on the PyTorch backend.

A :class:`GraphPlan` is made once per model from its Keras graph: the layer
calls in Keras' order, which tensors each call releases (its inputs that no
later call reads and that are not model outputs), and, per call, the cheapest
way to run it that gives Keras' result:

- ``conv``: a ``keras.layers.Conv2D`` (channels-last; float32, or float16/bfloat16 under a mixed
  policy, its float32 kernel and bias cast to that dtype as Keras' autocast casts them) calls
  ``torch.nn.functional.conv2d`` on the channels-last view, the call Keras'
  torch backend makes, with the bias added by the convolution itself and the
  kernel stored in the layout oneDNN reads (moved there at the first call;
  the optimizer's slots of that kernel follow, see :func:`_kernel_in` and
  :func:`align_optimizer_slots`); when its only consumer is one of the library's
  :class:`~universal_models.layers.normalization.BatchNormalization` layers
  running in inference and no gradient is recorded (``predict``,
  ``evaluate``, ``torch.no_grad``), the batch norm is folded into the
  convolution's kernel and bias (and a ReLU that follows is applied in place).
- ``batch_norm``: the library's batch norm through its fused kernel (half-precision
  inputs under a mixed policy, float32 statistics and arithmetic, as in Keras' layer); a
  ReLU that is its only consumer is applied in place on its output.
- ``alias``: that ReLU, already applied.
- ``argmax_pool`` / ``unpool``: SegNet's pooling with indices and the
  unpooling layers that read those indices, and nothing else does: the
  indices pass between them in PyTorch's own form (plane-wide), without the
  conversion to the layers' window-local form and back.
- ``direct``: any other layer, through its ``call`` with the training flag,
  without Keras' ``Layer.__call__`` bookkeeping (masks, name scopes, input
  specs), none of which does anything for built layers without masks or
  regularisers; what it does that matters is done here: floating inputs cast
  to the layer's input dtype, and under mixed precision the call made inside
  the autocast scope ``Layer.__call__`` would open (:func:`_autocast_for`).
- ``keras``: everything else (nested models, masking layers, activity
  regularisers, inputs the plan cannot prepare as Keras would), through
  ``Layer.__call__`` exactly as Keras' own runner calls it.

A run returns ``None`` (and :class:`GraphModel` falls back to Keras' runner)
when an input is not a torch tensor or carries a Keras mask, inside a
stateless or symbolic scope, or under a distribution. Mixed-precision models
(``mixed_bfloat16``, ``mixed_float16``) run through the plan, with the results
of Keras' runner to that precision (``tests/test_graph.py``). Every tensor the
plan makes takes the device of the tensors it meets (``tests/device_guard.py``).
"""

from __future__ import annotations

import weakref
from typing import Any

import keras
import torch
import torch.nn.functional as functional
from keras.src import backend as keras_backend
from keras.src.backend.common.stateless_scope import in_stateless_scope
from keras.src.backend.common.symbolic_scope import in_symbolic_scope
from keras.src.backend.torch.core import TORCH_DTYPES

from ...layers.activation import Activation
from ...layers.normalization import BatchNormalization
from ...layers.normalization import fast_path_applies as batch_norm_fast_path_applies
from ...layers.pooling import MaxPoolingWithArgmax2D, MaxUnpooling2D
from ...layers.pooling import fast_path_applies as pooling_fast_path_applies
from .kernels import batch_norm, batch_norm_inference_affine, max_pool_plane, max_unpool_plane
from .memory_format import relayout


def _is_plain_relu(layer) -> bool:
    """A layer whose call is exactly ``relu(inputs)`` (Keras' ``Activation("relu")``, ours, or a plain ``ReLU``)."""
    if isinstance(layer, keras.layers.Activation) and type(layer).call in (keras.layers.Activation.call,
                                                                            Activation.call):
        return layer.activation is keras.activations.relu
    if type(layer) is keras.layers.ReLU:
        return layer.max_value is None and not layer.negative_slope and not layer.threshold
    return False


def _can_skip_layer_call(layer) -> bool:
    """Whether ``layer.call`` gives what ``layer.__call__`` would (checked once per plan)."""
    if isinstance(layer, (keras.Model, keras.layers.Masking, keras.layers.Embedding)):
        return False
    if not isinstance(layer, keras.layers.Layer) or not layer.built:
        return False
    if layer.activity_regularizer is not None:
        return False
    if getattr(layer, "_remat_mode", None) is not None or getattr(layer, "quantization_mode", None) is not None:
        return False
    return True


#: compute dtypes the direct convolution runs in (float32 weights, cast per call as Keras' autocast does)
_CONV_DTYPES = ("float32", "bfloat16", "float16")


def _is_torch_conv(layer) -> bool:
    return (type(layer) is keras.layers.Conv2D and layer.data_format == "channels_last"
            and layer.compute_dtype in _CONV_DTYPES and layer.variable_dtype == "float32"
            and _can_skip_layer_call(layer) and layer.padding in ("valid", "same"))


#: :func:`_autocast_for`: the layer runs in the scope around it
_KEEP = object()


def _autocast_for(layer, outer) -> Any:
    """The autocast dtype (``None``: none) that Keras' ``Layer.__call__`` runs ``layer.call`` under, given
    the autocast scope ``outer`` around the call (``None`` if there is none); :data:`_KEEP` where it
    keeps ``outer``. Variables read inside are cast to it (``KerasVariable.value``)."""
    if outer is not None:
        if not layer.autocast or not keras_backend.is_float_dtype(layer.compute_dtype):
            return None
        return _KEEP if outer.dtype == layer.compute_dtype else layer.compute_dtype
    return layer.compute_dtype if layer.compute_dtype != layer.variable_dtype else _KEEP


def _raw_value(variable):
    """A variable's own tensor, in its own dtype whatever autocast scope is active (the fast paths cast)."""
    if keras_backend.get_autocast_scope() is None:
        return variable.value
    with keras_backend.AutocastScope(None):
        return variable.value


def _is_plain(layer, cls) -> bool:
    """An instance of ``cls`` (or a subclass that keeps its ``call``) that the plan may call directly."""
    return isinstance(layer, cls) and type(layer).call is cls.call and _can_skip_layer_call(layer)


def _same_padding(length: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras' "same" padding (before, after) along one axis, as its torch backend computes it."""
    effective = (kernel - 1) * dilation + 1
    if stride == 1:
        total = effective - 1
    else:
        total = max(0, (-(-length // stride) - 1) * stride + effective - length)
    return total // 2, total - total // 2


class _PlaneIndices:
    """Max-pooling indices in PyTorch's plane-wide form, passed from an ``argmax_pool`` step to ``unpool``."""

    __slots__ = ("tensor",)

    def __init__(self, tensor):
        self.tensor = tensor


class _Step:
    """One layer call of the plan."""

    __slots__ = ("node", "layer", "kind", "inputs", "single", "outputs", "release", "input_dtype", "cast_inputs",
                 "relu", "fold", "training_arg", "context_arg")

    def __init__(self, node, slots: dict[int, int]):
        self.node = node
        self.layer = node.operation
        self.kind = "direct" if _can_skip_layer_call(self.layer) else "keras"
        self.inputs = [slots[id(tensor)] for tensor in node.input_tensors]
        # One positional tensor and nothing else (Keras records ``mask=None`` for layers that take a mask).
        arguments = node.arguments
        self.single = (len(arguments.args) == 1 and isinstance(arguments.args[0], keras.KerasTensor)
                       and all(value is None for value in arguments.kwargs.values()))
        self.outputs = [slots[id(tensor)] for tensor in node.outputs]
        self.release: list[int] = []
        self.input_dtype = TORCH_DTYPES.get(getattr(self.layer, "input_dtype", None))
        # Keras casts floating inputs to ``input_dtype`` (the compute dtype) before ``call``
        self.cast_inputs = bool(getattr(self.layer, "autocast", False) and getattr(self.layer, "_convert_input_args",
                                                                                    False))
        self.relu = False  # batch_norm / conv: apply a ReLU in place
        self.fold: _Step | None = None  # conv: the batch-norm step to fold in inference
        self.training_arg = bool(getattr(self.layer, "_call_has_training_arg", False))
        self.context_arg = "training" in getattr(self.layer, "_call_context_args", ())

    # -- arguments ---------------------------------------------------------------
    def arguments(self, values: list) -> tuple[tuple, dict]:
        if self.single:
            return (values[self.inputs[0]],), {}
        lookup = {id(tensor): values[slot] for tensor, slot in zip(self.node.input_tensors, self.inputs)}
        return self.node.arguments.fill_in(lookup)

    def prepare(self, args: tuple, kwargs: dict) -> tuple | None:
        """``args`` as ``Layer.__call__`` hands them to ``call``: floating tensors cast to the layer's input
        dtype (under mixed precision, its compute dtype); ``None`` where only Keras' ``__call__`` can say
        (keyword tensors, non-tensors, a cast Keras would not make)."""
        if any(value is not None for value in kwargs.values()):
            return None
        nested = len(args) == 1 and isinstance(args[0], (list, tuple))
        values = args[0] if nested else args
        cast = None
        for index, value in enumerate(values):
            if not isinstance(value, torch.Tensor):
                return None
            if value.is_floating_point() and value.dtype is not self.input_dtype:
                if not self.cast_inputs or self.input_dtype is None:
                    return None
                cast = cast or list(values)
                cast[index] = value.to(self.input_dtype)
        if cast is None:
            return args
        return (type(args[0])(cast),) if nested else tuple(cast)

    # -- execution ---------------------------------------------------------------
    def call_keras(self, args: tuple, kwargs: dict, training) -> Any:
        if training is not None and self.context_arg:
            kwargs = {**kwargs, "training": training}
        return self.layer(*args, **kwargs)

    def call_direct(self, args: tuple, kwargs: dict, training) -> Any:
        if training is not None and self.training_arg:
            kwargs = {**kwargs, "training": training}
        return self.layer.call(*args, **kwargs)


class GraphPlan:
    """An execution plan for one :class:`~universal_models.runtime.graph.GraphModel` (see the module docstring)."""

    def __init__(self, model: keras.Model):
        self._model = weakref.ref(model)
        self._aligned_optimizer = None
        nodes = []
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.operation is not None and not node.is_input:
                    nodes.append(node)
        slots: dict[int, int] = {}

        def slot(tensor) -> int:
            return slots.setdefault(id(tensor), len(slots))

        self.input_slots = [slot(tensor) for tensor in model.inputs]
        for node in nodes:
            for tensor in list(node.input_tensors) + list(node.outputs):
                slot(tensor)
        self.output_slots = [slot(tensor) for tensor in model.outputs]
        self.n_slots = len(slots)
        self.steps = [_Step(node, slots) for node in nodes]
        # mixed precision: some layer computes in another dtype than it stores its variables in
        self.mixed = any(step.layer.compute_dtype != step.layer.variable_dtype for step in self.steps
                         if isinstance(step.layer, keras.layers.Layer))
        self.usable = self._check_order()
        self._plan_releases()
        self._plan_fusions()

    def _check_order(self) -> bool:
        """Every step's inputs exist when it runs (Keras' runner would skip a step otherwise)."""
        available = set(self.input_slots)
        for step in self.steps:
            if any(slot not in available for slot in step.inputs):
                return False
            available.update(step.outputs)
        return all(slot in available for slot in self.output_slots)

    def _plan_releases(self) -> None:
        last_use: dict[int, int] = {}
        self.consumers: dict[int, list[int]] = {}
        for index, step in enumerate(self.steps):
            for slot in step.inputs:
                last_use[slot] = index
                self.consumers.setdefault(slot, []).append(index)
        keep = set(self.output_slots)
        for slot, index in last_use.items():
            if slot not in keep:
                self.steps[index].release.append(slot)

    def _only_consumer(self, slot: int) -> _Step | None:
        """The step that is the single consumer of ``slot`` (read once, not a model output)."""
        consumers = self.consumers.get(slot, [])
        if len(consumers) != 1 or slot in self.output_slots:
            return None
        step = self.steps[consumers[0]]
        return step if step.inputs == [slot] and step.single else None

    def _plan_fusions(self) -> None:
        for step in self.steps:
            if step.kind != "direct" or len(step.outputs) != 1:
                continue
            if _is_torch_conv(step.layer) and step.single:
                step.kind = "conv"
            elif _is_plain(step.layer, BatchNormalization) and step.single:
                step.kind = "batch_norm"
        for step in self.steps:
            if step.kind in ("conv", "batch_norm"):
                consumer = self._only_consumer(step.outputs[0])
                if step.kind == "conv" and step.layer.activation is keras.activations.relu:
                    step.relu = True  # the convolution's own activation, applied in place
                elif (consumer is not None and consumer.kind == "direct" and _is_plain_relu(consumer.layer)
                        and (step.kind == "batch_norm" or step.layer.activation is keras.activations.linear)):
                    step.relu = True
                    consumer.kind = "alias"
        for step in self.steps:
            if step.kind != "conv" or step.relu or step.layer.activation is not keras.activations.linear:
                continue
            consumer = self._only_consumer(step.outputs[0])
            if consumer is not None and consumer.kind == "batch_norm":
                step.fold = consumer
        for step in self.steps:
            if step.kind != "direct" or not step.single or not _is_plain(step.layer, MaxPoolingWithArgmax2D):
                continue
            indices = step.outputs[1]
            readers = [self.steps[index] for index in self.consumers.get(indices, [])]
            if indices in self.output_slots or not readers:
                continue
            if all(reader.kind == "direct" and _is_plain(reader.layer, MaxUnpooling2D)
                   and reader.inputs == [reader.inputs[0], indices] and reader.inputs[0] != indices
                   and reader.layer.pool_size == step.layer.pool_size for reader in readers):
                step.kind = "argmax_pool"
                for reader in readers:
                    reader.kind = "unpool"

    def _align_optimizer(self) -> None:
        """Once per optimizer, once it has made its variables, and again if kernels moved since:
        see :func:`align_optimizer_slots`."""
        model = self._model()
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None or not getattr(optimizer, "built", False):
            return
        state = (optimizer, _MOVED_KERNELS[0])
        if self._aligned_optimizer != state:
            align_optimizer_slots(model, optimizer)
            self._aligned_optimizer = state

    # -- running -----------------------------------------------------------------
    def run(self, inputs: list, training) -> list | None:
        """The model's flat outputs, or ``None`` when the plan does not apply to this call."""
        if not self.usable or in_stateless_scope() or in_symbolic_scope():
            return None
        if keras.distribution.distribution() is not None:
            return None
        outer = keras_backend.get_autocast_scope()  # GraphModel.__call__'s, under a mixed policy
        autocast = (outer,) if outer is not None or self.mixed else None
        values: list = [None] * self.n_slots
        for slot, tensor in zip(self.input_slots, inputs):
            if not isinstance(tensor, torch.Tensor) or keras_backend.get_keras_mask(tensor) is not None:
                return None
            values[slot] = tensor
        folded: set[int] = set()
        for step in self.steps:
            if step.kind == "alias" or id(step) in folded:  # a ReLU or batch norm applied by the step before
                values[step.outputs[0]] = values[step.inputs[0]]
            else:
                outputs = self._execute(step, values, training, folded, autocast)
                if len(step.outputs) == 1:
                    values[step.outputs[0]] = outputs
                else:
                    if not (isinstance(outputs, (list, tuple)) and len(outputs) == len(step.outputs)):
                        outputs = keras.tree.flatten(outputs)
                    for slot, tensor in zip(step.outputs, outputs):
                        values[slot] = tensor
            for slot in step.release:
                values[slot] = None
        if training and torch.is_grad_enabled():
            self._align_optimizer()  # after the forward pass: it chooses the kernels' storage
        return [values[slot] for slot in self.output_slots]

    def _execute(self, step: _Step, values: list, training, folded: set[int], autocast: tuple | None):
        args, kwargs = step.arguments(values)
        if step.kind == "unpool":
            unpooled, indices = args[0]
            if isinstance(indices, _PlaneIndices):
                return max_unpool_plane(unpooled, indices.tensor, step.layer.pool_size)
        prepared = step.prepare(args, kwargs) if step.kind != "keras" else None
        if prepared is None:
            outputs = step.call_keras(args, kwargs, training)
            return torch.relu(outputs) if step.relu else outputs  # a ReLU fused into this step: applied here
        if step.kind == "conv" and prepared[0].ndim == 4:
            fold = None
            if step.fold is not None and not torch.is_grad_enabled():
                norm = step.fold.layer
                if not (training and norm.trainable) and batch_norm_fast_path_applies(norm, prepared[0], None):
                    fold = norm
                    folded.add(id(step.fold))
            return _conv2d(step.layer, prepared[0], fold, relu=step.relu or (fold is not None and step.fold.relu))
        if step.kind == "batch_norm" and batch_norm_fast_path_applies(step.layer, prepared[0], None):
            return batch_norm(step.layer, prepared[0], training, relu=step.relu)
        if step.kind == "argmax_pool" and pooling_fast_path_applies(prepared[0]):
            pooled, plane_indices = max_pool_plane(prepared[0], step.layer.pool_size)
            return [pooled, _PlaneIndices(plane_indices)]
        scope = _KEEP if autocast is None else _autocast_for(step.layer, autocast[0])
        if scope is _KEEP:
            outputs = step.call_direct(prepared, kwargs, training)
        else:
            with keras_backend.AutocastScope(scope):
                outputs = step.call_direct(prepared, kwargs, training)
        return torch.relu(outputs) if step.relu else outputs  # a fused ReLU that no fast kernel took


#: how many kernels the plans have moved so far (a new move makes optimizers align their slots again)
_MOVED_KERNELS = [0]


def _kernel_in(layer: keras.layers.Conv2D, inputs):
    """The layer's kernel as PyTorch's (out, in, h, w) view, stored channels-last.

    Keras stores a kernel (h, w, in, out) in that order, which is not the layout oneDNN reads
    for a channels-last convolution, (out, h, w, in); so every call would transpose the kernel,
    and every gradient be transposed back: about 1 ms per 512 x 512 x 3 x 3 kernel, 5-10 % of a
    paper-width SegNet step. The first time the plan runs a convolution, it moves the kernel's
    storage into that layout (same shape and values; only the strides change, which Keras and
    the optimizer do not see).
    """
    kernel = layer.kernel
    parameter = _raw_value(kernel) if hasattr(kernel, "value") else kernel  # its own dtype: the caller casts
    if layer.lora_enabled or not isinstance(parameter, torch.nn.Parameter):
        return parameter.permute(3, 2, 0, 1)  # as Keras passes it
    view = parameter.permute(3, 2, 0, 1)
    if view.is_contiguous(memory_format=torch.channels_last):
        return view
    if type(inputs) is not torch.Tensor or torch.compiler.is_compiling():
        return view  # being traced (torch.export, torch.compile): leave the real weights alone
    with torch.no_grad():
        storage = torch.empty(view.shape, dtype=parameter.dtype, device=parameter.device,
                              memory_format=torch.channels_last)
        storage.copy_(view)
    parameter.data = storage.permute(2, 3, 1, 0)
    kernel._stored_channels_last = True
    _MOVED_KERNELS[0] += 1
    return parameter.permute(3, 2, 0, 1)


def align_optimizer_slots(model: keras.Model, optimizer) -> int:
    """Give each optimizer variable of a kernel whose storage the plan moved the same layout.

    Optimizers create their slots (Adam's moments, SGD's momentum) in Keras' layout; an update
    that reads a kernel, its gradient and its slots in two layouts runs several times slower
    (measured: Adam on a paper-width SegNet, 86 -> 232 ms per step). Slots are matched to their
    kernel by the name Keras gives them (``{kernel path}_{slot}``). Returns how many were moved.
    """
    kernels = {variable.path.replace("/", "_") + "_": variable for variable in model.trainable_variables
               if getattr(variable, "_stored_channels_last", False)}
    if not kernels:
        return 0
    moved = 0
    for slot in optimizer.variables:
        value = slot.value
        for prefix, kernel in kernels.items():
            if not slot.name.startswith(prefix) or tuple(value.shape) != tuple(kernel.value.shape):
                continue
            if value.stride() != kernel.value.stride():
                with torch.no_grad():
                    storage = torch.empty_strided(value.shape, kernel.value.stride(), dtype=value.dtype,
                                                  device=value.device)
                    storage.copy_(value)
                value.data = storage
                moved += 1
            break
    return moved


def _conv2d(layer: keras.layers.Conv2D, inputs, fold: BatchNormalization | None = None, relu: bool = False):
    """``layer(inputs)`` for a channels-last Conv2D, optionally followed by the batch norm ``fold`` in
    inference (folded into kernel and bias) and a ReLU (in place).

    ``inputs`` are in the layer's compute dtype; under mixed precision the float32 kernel and bias
    are cast to it, as Keras' autocast does (the fold is computed in float32, then cast)."""
    tensor = inputs.permute(0, 3, 1, 2)  # a view: NHWC memory read as channels-last NCHW
    if not tensor.is_contiguous(memory_format=torch.channels_last):
        tensor = relayout(tensor, torch.channels_last)  # e.g. a cropped or sliced input
    kernel = _kernel_in(layer, inputs)
    bias = _raw_value(layer.bias) if layer.use_bias else None
    if fold is not None:  # gradient-free: written straight into the layout oneDNN reads (no reorder copy)
        scale, shift = batch_norm_inference_affine(fold)
        kernel = torch.mul(kernel, scale.view(-1, 1, 1, 1),
                           out=torch.empty(kernel.shape, dtype=kernel.dtype, device=kernel.device,
                                           memory_format=torch.channels_last))
        bias = shift if bias is None else torch.addcmul(shift, bias, scale)
    if kernel.dtype != inputs.dtype:  # mixed precision (the cast keeps the channels-last storage)
        kernel = kernel.to(inputs.dtype)
    if bias is not None and bias.dtype != inputs.dtype:
        bias = bias.to(inputs.dtype)
    padding: Any = 0
    if layer.padding == "same":
        pads = [_same_padding(tensor.shape[2 + axis], layer.kernel_size[axis], layer.strides[axis],
                              layer.dilation_rate[axis]) for axis in range(2)]
        if all(before == after for before, after in pads):
            padding = [before for before, _ in pads]
        else:
            tensor = functional.pad(tensor, (pads[1][0], pads[1][1], pads[0][0], pads[0][1]))
    groups = tensor.shape[1] // kernel.shape[1]
    outputs = functional.conv2d(tensor, kernel, bias, layer.strides, padding, layer.dilation_rate, groups)
    if relu:
        outputs.relu_()  # on PyTorch's output itself: in place on a view would copy gradients in backward
        return outputs.permute(0, 2, 3, 1)
    outputs = outputs.permute(0, 2, 3, 1)
    if layer.activation is not keras.activations.linear:
        outputs = layer.activation(outputs)
    return outputs


# -- losses on (batch, height, width, classes) outputs -----------------------------------------------
_CLASS_AXIS_LOSS_FAILS: dict[str, bool] = {}  # device type -> whether Keras' sparse CE backward fails there


def _sparse_ce_backward_fails(device) -> bool:
    """Whether ``keras.losses.sparse_categorical_crossentropy`` fails in backward on a 4-D channels-last output.

    Keras 3.14 and later compute it on torch as ``nll_loss(log(output.movedim(-1, 1)), target)``. For a
    4-D input PyTorch takes its ``nll_loss2d`` kernel, whose backward allocates the input's gradient in
    the input's memory layout and then refuses it (``RuntimeError: grad_input must be contiguous``;
    PyTorch issue 175084, seen on torch 2.13): a ``(batch, height, width, classes)`` output moved to
    ``(batch, classes, height, width)`` is such a non-contiguous view. Earlier Keras releases compute
    it with a one-hot product and are not affected. Answered once per device type by running the call
    on a 2 x 2 x 2 x 2 tensor, so a Keras or PyTorch release that fixes it turns the workaround off.
    """
    key = torch.device(device).type
    if key not in _CLASS_AXIS_LOSS_FAILS:
        probabilities = torch.full((1, 2, 2, 2), 0.5, device=device, requires_grad=True)
        labels = torch.zeros((1, 2, 2), dtype=torch.int64, device=device)
        try:
            with torch.enable_grad():
                keras.losses.sparse_categorical_crossentropy(labels, probabilities).sum().backward()
            _CLASS_AXIS_LOSS_FAILS[key] = False
        except RuntimeError:
            _CLASS_AXIS_LOSS_FAILS[key] = True
    return _CLASS_AXIS_LOSS_FAILS[key]


def outputs_for_loss(outputs):
    """The model's outputs as the loss should read them in a training step (same values and shapes).

    Where Keras' sparse categorical cross-entropy cannot run backward on a 4-D output (see
    :func:`_sparse_ce_backward_fails`), each 4-D floating output that records a gradient is handed to
    the loss stored class-major, ``(batch, classes, height, width)`` memory read as ``(batch, height,
    width, classes)``: Keras' move of the class axis to the front is then a contiguous tensor, which
    PyTorch's kernel takes. The copy is of the output alone (batch x height x width x classes values);
    its gradient is handed back in the output's own layout. Everywhere else the outputs pass unchanged.
    """

    def fix(tensor):
        if (not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or not tensor.is_floating_point()
                or not tensor.requires_grad or tensor.movedim(-1, 1).is_contiguous()):
            return tensor
        return class_major(tensor) if _sparse_ce_backward_fails(tensor.device) else tensor

    return keras.tree.map_structure(fix, outputs)


def class_major(tensor):
    """A 4-D ``(batch, height, width, classes)`` torch tensor stored ``(batch, classes, height, width)``:
    same values and shape, a copy whose gradient comes back in ``tensor``'s own layout."""
    return relayout(tensor.movedim(-1, 1), torch.contiguous_format).movedim(1, -1)

