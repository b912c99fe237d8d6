"""The library's functional models, with a lean eager runner on the PyTorch backend.

Every model built by :func:`universal_models.get_model` (except the subclassed
Ladder network) is a :class:`GraphModel`: a Keras functional model, built from
the same ``keras.Input`` and layers, saved and loaded like any other
(``keras.saving.load_model(path, safe_mode=True)`` once ``universal_models``
is imported), and identical to ``keras.Model(inputs, outputs)`` on JAX and
TensorFlow, where Keras traces the training and prediction steps into one
compiled program.

On PyTorch, Keras runs eagerly, one layer call after the other, and its
functional runner costs time that a hand-written PyTorch module does not pay
(``benchmarks/README.md``, "What made the difference"): about 0.3 ms of Python per
layer call (argument conversion, masks, name scopes, the ``keras.ops``
dispatch), every intermediate tensor held until the whole forward pass ends
(so each layer writes to memory that is no longer in the cache), and batch
norm and ReLU as two passes over memory where PyTorch users write one
in-place ReLU. :class:`GraphModel` runs the same graph through a plan made
once per model (:mod:`universal_models.runtime.torch.plan`): each intermediate is
released after its last use, layers are called without Keras' per-call
bookkeeping when nothing it does applies (built, no masks; under mixed precision
with the casts and autocast scopes Keras would apply), 2-D convolutions call PyTorch directly with their kernels stored
in the layout PyTorch's channels-last convolution reads (Keras' own layout
would be transposed at every call and every gradient), a batch norm followed by
its only consumer, a ReLU, applies the ReLU in place, and in gradient-free inference a
batch norm that follows a convolution is folded into that convolution's
weights. The outputs, gradients and moving statistics are those of Keras'
runner to float32 rounding, and to half-precision rounding under ``mixed_bfloat16`` /
``mixed_float16`` (``tests/test_graph.py``); ``use_fast_paths(False)``
or ``UNIVERSAL_MODELS_FAST_PATHS=0`` switches the plan off.
"""

from __future__ import annotations

import keras

from ..layers.fast_paths import fast_paths_enabled


@keras.saving.register_keras_serializable(package="universal_models")
class GraphModel(keras.Model):
    """A Keras functional model with a faster eager forward pass on PyTorch.

    Built exactly like ``keras.Model(inputs, outputs, name=...)``; see the
    module docstring for what changes on the torch backend (nothing changes
    on JAX and TensorFlow).

    Example:
        >>> inputs = keras.Input((32, 32, 3))
        >>> outputs = keras.layers.Conv2D(2, 3, padding="same")(inputs)
        >>> model = GraphModel(inputs, outputs, name="tiny")
        >>> tuple(model(np.zeros((1, 32, 32, 3), "float32")).shape)
        (1, 32, 32, 2)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._torch_plan = None

    @property
    def jit_compile(self):
        """As ``keras.Model.jit_compile``; on torch, ``True`` is refused for the eager plan (with a warning).

        Keras' ``jit_compile=True`` on torch wraps the whole training step in ``torch.compile``. With
        Keras 3.13 and torch 2.13, every layer call breaks the traced graph (Keras' ``tree`` utilities),
        each convolution's frame is recompiled until torch turns its shapes symbolic, and inductor then
        fails on the channels-last strides ("cannot determine truth value of Relational"), through
        Keras' own runner as through the plan. With symbolic shapes switched off it runs, but a
        16-filter TestNet's first step took 490 s and later steps were 4.7 times slower than eager ones
        (``benchmarks/README.md``, "torch.compile"). So ``compile(jit_compile=True)`` on torch says so
        in a warning and the model trains and predicts through its eager plan: same numbers, no
        compile time. (``compile`` itself is Keras': a model that overrides it is not compiled again
        when loaded.) On JAX and TensorFlow ``jit_compile`` is Keras' own (XLA).
        """
        return keras.Model.jit_compile.fget(self)

    @jit_compile.setter
    def jit_compile(self, value):
        if value is True and keras.config.backend() == "torch":
            import warnings

            warnings.warn(
                "jit_compile=True: on the torch backend this GraphModel trains and predicts eagerly through its "
                "plan; torch.compile of Keras' training step fails or is slower here (see GraphModel.jit_compile).",
                UserWarning, stacklevel=2)
            value = False
        keras.Model.jit_compile.fset(self, value)

    def call(self, inputs, training=None, mask=None, **kwargs):
        if mask is None and not kwargs and keras.config.backend() == "torch" and fast_paths_enabled():
            from .torch import plan as _torch_graph

            plan = getattr(self, "_torch_plan", None)
            if plan is None:
                plan = self._torch_plan = _torch_graph.GraphPlan(self)
            outputs = plan.run(self._standardize_inputs(inputs), training)
            if outputs is not None:
                outputs = keras.tree.pack_sequence_as(self._outputs_struct, outputs)
                if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
                    return outputs[0]
                return outputs
        return super().call(inputs, training=training, mask=mask, **kwargs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' ``compute_loss``; on torch, outputs go to the loss in a layout every Keras loss can
        run backward on (see :func:`universal_models.runtime.torch.plan.outputs_for_loss`: Keras 3.14 and
        later fail in ``sparse_categorical_crossentropy``'s backward on ``(batch, height, width,
        classes)`` outputs otherwise)."""
        if keras.config.backend() == "torch" and y_pred is not None:
            from .torch import plan as _torch_graph

            y_pred = _torch_graph.outputs_for_loss(y_pred)
        return super().compute_loss(x, y, y_pred, sample_weight, training=training)
