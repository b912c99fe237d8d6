"""Ladder network (Rasmus, Berglund, Honkala, Valpola and Raiko 2015, arXiv:1507.02672)."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers, ops

from ..._validation import check_integer, check_integers, is_integer
from ...layers.initializers import HostVarianceScaling
from ...layers.ladder import GaussianCombinator, LadderBatchNormalization, batch_statistics
from ...registry import register_model
from .loss import LabeledCrossEntropy, labeled_mask

ENCODERS = ("conv", "dense")
VARIANTS = ("full", "gamma", "supervised")
OUTPUT_ACTIVATIONS = ("auto", "softmax", "linear", None)
#: Epsilon of every batch normalisation (encoder, decoder and the decoder's u).
EPSILON = 1e-5
#: The paper's learning rate (Adam), the default of :meth:`LadderNetwork.compile`.
LEARNING_RATE = 0.002


@dataclass(frozen=True)
class _Level:
    """One encoder layer: what maps h(l-1) to z_pre(l), its width, its activation."""

    kind: str  # "conv", "max_pool", "global_pool" or "dense"
    width: int  # channels or units of z(l)
    activation: str  # "relu", "linear" or "softmax"


@dataclass
class _Pass:
    """What one encoder pass leaves for the decoder (index = level, 0 = input)."""

    z: list
    mean: list
    std: list
    logits: Any
    probabilities: Any


def _encoder_levels(encoder: str, n_classes: int, filters: Sequence[int], convs_per_stage: int,
                   units: Sequence[int]) -> list[_Level]:
    """The encoder's layers 1 ... L (the input is level 0)."""
    if encoder == "dense":
        levels = [_Level("dense", width, "relu") for width in units]
    else:
        levels = []
        for stage, width in enumerate(filters):
            if stage > 0:
                levels.append(_Level("max_pool", filters[stage - 1], "linear"))
            levels.extend(_Level("conv", width, "relu") for _ in range(convs_per_stage))
        levels.append(_Level("global_pool", filters[-1], "linear"))
    levels.append(_Level("dense", n_classes, "softmax"))
    return levels


def default_denoising_costs(variant: str, encoder: str, n_levels: int) -> list[float]:
    """The lambdas (input first) used when ``denoising_costs`` is None.

    These are the authors' settings for MNIST with 100 labels
    (github.com/CuriousAI/ladder, README): full ladder 1000 for the input, 10
    for the first layer and 0.1 above; Gamma-model 0.5 (fully connected) or 1
    (convolutional) for the top layer only; 0 everywhere for the supervised
    variant.

    Args:
        variant: ``"full"``, ``"gamma"`` or ``"supervised"``.
        encoder: ``"dense"`` or ``"conv"``.
        n_levels: layers above the input (L).

    Returns:
        ``L + 1`` lambdas, the input's first.

    Example:
        >>> default_denoising_costs("full", "dense", 6)
        [1000.0, 10.0, 0.1, 0.1, 0.1, 0.1, 0.1]
    """
    if variant == "full":
        return ([1000.0, 10.0] + [0.1] * n_levels)[: n_levels + 1]
    costs = [0.0] * (n_levels + 1)
    if variant == "gamma":
        costs[-1] = 0.5 if encoder == "dense" else 1.0
    return costs


def _per_level(argument: str, value, n_levels: int, meaning: str) -> list[float]:
    """A number for every level 0 ... L from a single number or a sequence."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        values = [float(value)] * (n_levels + 1)
    else:
        try:
            values = [float(v) for v in value]
        except (TypeError, ValueError):
            values = None
        if values is None or len(values) != n_levels + 1:
            raise ValueError(
                f"{argument} must be a number or a sequence of {n_levels + 1} numbers ({meaning}, input "
                f"first: this network has {n_levels} layers above the input), got {value!r}."
            )
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError(f"{argument} must be finite and >= 0, got {value!r}.")
    return values


def _standardize(tensor, labeled=None):
    """Batch normalisation without parameters (statistics of the current batch)."""
    mean, std, _, _ = batch_statistics(tensor, labeled, EPSILON)
    return (tensor - mean) / std


def _denoising_weights(labeled):
    """1 for the samples the denoising cost averages over: the unlabelled ones, or all if there are none."""
    unlabeled = 1.0 - ops.cast(labeled, "float32")
    has_unlabeled = ops.cast(ops.sum(unlabeled) > 0, "float32")
    return has_unlabeled * unlabeled + (1.0 - has_unlabeled)


def _sample_mean(values, sample_weights=None):
    """Mean over samples and units, the samples weighted by ``sample_weights``."""
    if sample_weights is None:
        return ops.mean(values)
    per_sample = ops.mean(values, axis=list(range(1, len(values.shape))))
    sample_weights = ops.cast(sample_weights, per_sample.dtype)
    return ops.sum(per_sample * sample_weights) / ops.maximum(ops.sum(sample_weights), 1.0)


@keras.saving.register_keras_serializable(package="universal_models")
class LadderNetwork(keras.Model):
    """A Ladder network for semi-supervised image classification.

    Rasmus, Berglund, Honkala, Valpola and Raiko (2015), "Semi-Supervised
    Learning with Ladder Networks" (arXiv:1507.02672): an encoder classifier
    trained at the same time as a denoising decoder that, at every layer,
    reconstructs the clean encoder's activations from the corrupted encoder's
    ones (lateral connections) and the layer above (top-down). Unlabelled
    images train the decoder's denoising cost, and through it the encoder.

    **Training goes through plain** ``model.fit(x, y)``. ``call(x,
    training=True)`` (``call((x, y), training=True)`` inside ``fit``) runs
    the clean encoder, the corrupted encoder and the decoder, adds the
    weighted denoising cost with ``add_loss`` and returns the corrupted
    encoder's class probabilities, on which the compiled supervised loss is
    computed. Labels are integers with **-1 for an
    unlabelled sample** (or one-hot rows, all zero for an unlabelled sample);
    :meth:`compile` defaults to :class:`LabeledCrossEntropy`, which ignores
    them, and to Adam with the paper's learning rate 0.002. An unlabelled
    sample thus adds only the denoising cost. :class:`SemiSupervisedDataset`
    makes batches that mix a few labelled samples with many unlabelled ones.
    ``fit`` logs ``supervised_cost`` and ``reconstruction_cost`` beside
    ``loss``; ``evaluate`` reports the clean path's cross-entropy as ``loss``
    and the denoising cost of the evaluated images as ``reconstruction_cost``.

    **Inference** (``predict``, ``call(x)``): the clean encoder with the moving
    averages of the batch statistics. The output is the class probabilities,
    shape ``(batch, n_classes)`` (logits with ``output_activation=None``).

    How each detail of the paper (Algorithm 1, section 3 and appendix) is
    implemented:

    - *Encoder layers*: ``z_pre(l) = W(l) h(l-1)``, then batch normalisation,
      then ``h(l) = activation(gamma(l) * (z(l) + beta(l)))``; ``W`` has no bias
      (``beta`` is the bias). ReLU everywhere, softmax on top; pooling layers
      are linear. ``beta`` is learnt at every layer, ``gamma`` only in front of
      the softmax: before a ReLU it is redundant (the paper's note, and the
      authors' code) (:class:`LadderBatchNormalization`).
    - *Batch statistics of the current batch in both passes*: the clean and
      the corrupted encoder each normalise ``z_pre`` with the mean and standard
      deviation of their own current batch; the moving averages used at
      inference are updated from the clean pass only.
    - *Noise*: Gaussian noise ``N(0, noise_std^2)`` is added to the input and
      to every normalised ``z(l)``, after the normalisation and before
      ``beta``/``gamma`` (corrupted pass only).
    - *Supervised cost on the corrupted output*: the model returns the
      corrupted encoder's softmax in training mode; the clean one is used
      only at inference.
    - *Decoder*: ``u(L) = batchnorm(h~(L))`` (the corrupted softmax output),
      then for ``l = L ... 0``: ``z^(l) = g(z~(l), u(l))`` and
      ``u(l-1) = batchnorm(V(l) z^(l))``, ``batchnorm`` without parameters on
      the current batch. ``V`` is a learnt dense map (dense layers), a learnt
      "same" convolution from the upper layer's channels to this layer's
      (the transpose shape of the encoder's convolution), nearest-neighbour
      upsampling (max pooling, as in the authors' code) or a broadcast over
      the positions (global pooling).
    - *Combinator*: the paper's "vanilla"/"gauss" g with ten parameters
      ``a1 ... a10`` per unit (per channel in feature maps), initialised
      a2 = a7 = 1 and the others 0 (:class:`GaussianCombinator`).
    - *Reconstruction targets*: the clean pass's normalised ``z(l)`` (the raw
      input for level 0); the estimate is normalised with the clean pass's
      batch mean and standard deviation, ``z^_BN(l) = (z^(l) - mu(l)) /
      sigma(l)`` with ``sigma = sqrt(variance + epsilon)`` (not the variance).
    - *Cost*: ``sum_l lambda(l) * mean((z(l) - z^_BN(l))^2)``, the mean
      running over the samples and the layer's units (and positions): the
      squared error of a sample divided by the layer width. Levels whose
      ``lambda`` is 0 cost nothing to evaluate.
    - *Gamma-model* (``variant="gamma"``): only the top layer is decoded:
      ``z^(L) = g(z~(L), batchnorm(h~(L)))``, cost ``lambda(L)`` only.
    - ``variant="supervised"``: the same noisy encoder without a decoder (the
      paper's "MLP, BN, Gaussian noise" baseline).
    - *Labelled and unlabelled samples of a batch are kept apart*, as in the
      authors' code, which runs a labelled and an unlabelled minibatch
      through the network together: every batch statistic (both encoder
      passes, the decoder's ``u``, the normalisation of the estimates) is
      computed separately over the labelled and over the unlabelled samples,
      and the denoising cost averages over the unlabelled samples (over all
      when a batch has none). Normalising them together lets the supervised
      cost reach the unlabelled samples through the shared statistics: with
      the same 100 MNIST labels in every batch, the noisy encoder trained on
      them alone had 36 % test error instead of 17 % in a development run
      whose output was not kept, and the full ladder got worse as it trained
      (the current figures: ``benchmarks/results/ladder/table.md``). ``fit`` hands the
      labels to ``call`` for this (:meth:`train_step` turns ``x`` into
      ``(x, y)``); the moving averages follow the unlabelled samples'
      statistics (the labelled ones' when a batch has none).

    Args:
        image_shape: ``(height, width, channels)`` of the input images.
        n_classes: number of classes (>= 2).
        encoder: ``"conv"`` (convolutional) or ``"dense"`` (fully connected on
            the flattened image; it also takes flat inputs
            ``(batch, height * width * channels)``).
        filters: for ``encoder="conv"``: the channels of each stage. Each stage
            has ``convs_per_stage`` ``kernel_size`` convolutions ("same"
            padding, ReLU); 2x2 max pooling joins consecutive stages; after the
            last stage a global mean pool and a fully connected softmax layer.
        convs_per_stage: convolutions per stage.
        kernel_size: size of the convolution kernels (odd).
        units: for ``encoder="dense"``: widths of the hidden layers (the
            paper's 1000-500-250-250-250 by default), followed by the softmax
            layer.
        noise_std: standard deviation of the corruption noise: a number for
            every level, or one per level (input first, ``L + 1`` numbers).
        denoising_costs: the lambdas, one per level (input first); ``None``
            for the authors' MNIST settings (:func:`default_denoising_costs`).
            For ``variant="gamma"`` also a single number: the top layer's.
        variant: ``"full"`` (every layer decoded), ``"gamma"`` (top layer
            only) or ``"supervised"`` (no decoder).
        output_activation: ``"auto"`` or ``"softmax"`` (probabilities), or
            ``None``/``"linear"`` for logits (the decoder still reads the
            softmax).
        batch_norm_momentum: momentum of the moving averages.
        separate_statistics: keep labelled and unlabelled samples apart (see
            above). ``False`` normalises every batch as a whole and averages
            the denoising cost over all its samples (Algorithm 1 read
            literally), for comparison.
        seed: seed of the corruption noise and of the initial weights.

    Raises:
        ValueError: unknown encoder or variant, bad sizes, lists of the wrong
            length, negative noise or costs, an image size the poolings cannot
            halve, or fewer than 2 classes.

    Example:
        >>> model = LadderNetwork((28, 28, 1), 10, filters=(16, 32))
        >>> model.compile()                      # LabeledCrossEntropy, Adam(0.002)
        >>> model.fit(images, labels)            # doctest: +SKIP  (labels: -1 = unlabelled)
        >>> probabilities = model.predict(test_images)  # doctest: +SKIP
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        n_classes: int,
        *,
        encoder: str = "conv",
        filters: Sequence[int] = (32, 64, 128),
        convs_per_stage: int = 1,
        kernel_size: int = 3,
        units: Sequence[int] = (1000, 500, 250, 250, 250),
        noise_std: float | Sequence[float] = 0.3,
        denoising_costs: float | Sequence[float] | None = None,
        variant: str = "full",
        output_activation: str | None = "auto",
        batch_norm_momentum: float = 0.99,
        separate_statistics: bool = True,
        seed: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("name", "ladder")
        super().__init__(**kwargs)
        self.image_shape = check_integers("image_shape", image_shape)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (height, width, channels), got {image_shape!r}.")
        if not is_integer(n_classes) or n_classes < 2:
            raise ValueError(
                f"a Ladder network classifies into n_classes >= 2 classes (softmax output), got {n_classes!r}."
            )
        n_classes = int(n_classes)
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {ENCODERS}, got {encoder!r}.")
        if variant not in VARIANTS:
            raise ValueError(
                f"variant must be one of {VARIANTS} (full ladder, Gamma-model with only the top layer "
                f"decoded, or the noisy encoder alone), got {variant!r}."
            )
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {OUTPUT_ACTIVATIONS} (None or 'linear' for logits), "
                f"got {output_activation!r}."
            )
        self.filters = check_integers("filters", filters)
        # The dense encoder may have no hidden layer at all (units=()): softmax regression.
        self.units = check_integers("units", units) if len(tuple(units)) else ()
        convs_per_stage = check_integer("convs_per_stage", convs_per_stage)
        kernel_size = check_integer("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (centred 'same' convolutions), got {kernel_size}.")
        if not 0.0 <= float(batch_norm_momentum) < 1.0:
            raise ValueError(f"batch_norm_momentum must be in [0, 1), got {batch_norm_momentum!r}.")
        height, width, channels = self.image_shape
        n_pools = len(self.filters) - 1
        if encoder == "conv" and (height % 2**n_pools or width % 2**n_pools):
            raise ValueError(
                f"the convolutional ladder halves the resolution {n_pools} times, so input_height and "
                f"input_width must be multiples of {2**n_pools}; got {height} x {width}. Pad or crop the "
                "images, or use fewer stages in filters."
            )
        self.n_classes = n_classes
        self.encoder = encoder
        self.convs_per_stage = convs_per_stage
        self.kernel_size = kernel_size
        self.variant = variant
        self.output_activation = output_activation
        self.batch_norm_momentum = float(batch_norm_momentum)
        self.separate_statistics = bool(separate_statistics)
        self.seed = seed
        self.levels = tuple(_encoder_levels(encoder, n_classes, self.filters, convs_per_stage, self.units))
        n_levels = len(self.levels)
        self.noise_std = tuple(_per_level("noise_std", noise_std, n_levels, "the noise of each level"))
        self.denoising_costs = tuple(self._resolve_costs(denoising_costs, n_levels))
        #: Lowest level the decoder reconstructs (L for the Gamma-model).
        self.lowest_decoded_level = {"full": 0, "gamma": n_levels, "supervised": n_levels + 1}[variant]

        self.seed_generator = keras.random.SeedGenerator(seed)
        self._make_layers()
        if variant != "supervised":
            self.supervised_cost_tracker = keras.metrics.Mean(name="supervised_cost")
            self.reconstruction_cost_tracker = keras.metrics.Mean(name="reconstruction_cost")
        self.build((None,) + self.image_shape)

    # -- construction --------------------------------------------------------
    def _resolve_costs(self, denoising_costs, n_levels: int) -> list[float]:
        if denoising_costs is None:
            return default_denoising_costs(self.variant, self.encoder, n_levels)
        if self.variant == "gamma" and isinstance(denoising_costs, (int, float)) and not isinstance(
            denoising_costs, bool
        ):
            denoising_costs = [0.0] * n_levels + [float(denoising_costs)]
        costs = _per_level("denoising_costs", denoising_costs, n_levels, "lambda of each level")
        lowest = {"full": 0, "gamma": n_levels, "supervised": n_levels + 1}[self.variant]
        if any(costs[:lowest]):
            raise ValueError(
                f"variant={self.variant!r} decodes only levels >= {lowest}, but denoising_costs gives weight to "
                f"lower levels: {costs}. Use variant='full' to reconstruct every layer."
            )
        return costs

    def _initializer(self, offset: int, distribution: str):
        seed = None if self.seed is None else self.seed + offset
        # The authors' initialisation: weights with variance 1 / fan_in. Drawn on the host like every
        # model's weights (on JAX, Keras' initializer compiles one XLA program per kernel shape).
        return HostVarianceScaling(1.0, "fan_in", distribution, seed=seed)

    def _make_layers(self):
        encoder_transforms, encoder_norms = [], []
        for level, spec in enumerate(self.levels, start=1):
            name = f"encoder{level}"
            if spec.kind == "conv":
                transform = layers.Conv2D(
                    spec.width, self.kernel_size, padding="same", use_bias=False,
                    kernel_initializer=self._initializer(level, "uniform"), name=f"{name}_conv",
                )
            elif spec.kind == "max_pool":
                transform = layers.MaxPooling2D(2, name=f"{name}_pool")
            elif spec.kind == "global_pool":
                transform = layers.GlobalAveragePooling2D(name=f"{name}_global_pool")
            else:
                transform = layers.Dense(
                    spec.width, use_bias=False, kernel_initializer=self._initializer(level, "untruncated_normal"),
                    name=f"{name}_dense",
                )
            encoder_transforms.append(transform)
            encoder_norms.append(
                LadderBatchNormalization(
                    center=True, scale=spec.activation == "softmax", momentum=self.batch_norm_momentum,
                    epsilon=EPSILON, name=f"{name}_bn",
                )
            )
        self.encoder_transforms = encoder_transforms
        self.encoder_norms = encoder_norms
        n_levels = len(self.levels)
        self.combinators = [
            GaussianCombinator(name=f"decoder{level}_combinator")
            for level in range(self.lowest_decoded_level, n_levels + 1)
        ]
        # V(l + 1) maps the estimate of level l + 1 to the shape of level l.
        self.decoder_transforms = [self._make_decoder_transform(level) for level in range(n_levels)
                                   if self.variant == "full"]

    def _make_decoder_transform(self, level: int):
        above = self.levels[level]  # the encoder layer that maps level -> level + 1
        width = self._level_width(level)
        name = f"decoder{level}"
        if above.kind == "dense":
            return layers.Dense(
                width, use_bias=False, kernel_initializer=self._initializer(100 + level, "untruncated_normal"),
                name=f"{name}_dense",
            )
        if above.kind == "conv":
            return layers.Conv2D(
                width, self.kernel_size, padding="same", use_bias=False,
                kernel_initializer=self._initializer(100 + level, "uniform"), name=f"{name}_conv",
            )
        if above.kind == "max_pool":
            return layers.UpSampling2D(2, name=f"{name}_upsample")
        height, width_pixels = self._level_spatial_size(level)
        return layers.UpSampling2D((height, width_pixels), name=f"{name}_broadcast")

    def _level_width(self, level: int) -> int:
        if level == 0:
            height, width, channels = self.image_shape
            return height * width * channels if self.encoder == "dense" else channels
        return self.levels[level - 1].width

    def _level_spatial_size(self, level: int) -> tuple[int, int]:
        height, width, _ = self.image_shape
        halvings = sum(spec.kind == "max_pool" for spec in self.levels[:level])
        return height // 2**halvings, width // 2**halvings

    def _input_level_shape(self) -> tuple:
        if self.encoder == "dense":
            return (None, math.prod(self.image_shape))
        return (None,) + self.image_shape

    def build(self, input_shape=None):
        if self.encoder_norms[0].built:
            return
        shape = self._input_level_shape()
        shapes = [shape]
        for transform, norm in zip(self.encoder_transforms, self.encoder_norms):
            transform.build(shape)
            shape = tuple(transform.compute_output_shape(shape))
            norm.build(shape)
            shapes.append(shape)
        for level, combinator in zip(range(self.lowest_decoded_level, len(shapes)), self.combinators):
            combinator.build([shapes[level], shapes[level]])
        for level, transform in enumerate(self.decoder_transforms):
            above = shapes[level + 1]
            if self.levels[level].kind == "global_pool":
                above = (None, 1, 1, above[-1])
            transform.build(above)

    # -- the three paths ------------------------------------------------------
    def _prepare_input(self, inputs):
        inputs = ops.cast(inputs, self.compute_dtype)
        sample_shape = tuple(inputs.shape[1:])
        flat_size = math.prod(self.image_shape)
        if sample_shape == self.image_shape:
            return ops.reshape(inputs, (-1, flat_size)) if self.encoder == "dense" else inputs
        if self.encoder == "dense" and sample_shape == (flat_size,):
            return inputs
        accepted = f"(batch, {', '.join(map(str, self.image_shape))})"
        if self.encoder == "dense":
            accepted += f" or flat (batch, {flat_size})"
        raise ValueError(
            f"{self.name} was built for images {accepted}, got input of shape {tuple(inputs.shape)}. "
            "Build the model with the size of your images (the decoder reconstructs every layer, so the "
            "size is fixed)."
        )

    def _noise(self, tensor, level: int):
        return keras.random.normal(
            ops.shape(tensor), stddev=self.noise_std[level], dtype=tensor.dtype, seed=self.seed_generator
        )

    def _split_inputs(self, inputs):
        """Images, or ``(images, labels)`` -> (input level, labelled mask or None)."""
        if isinstance(inputs, (tuple, list)):
            if len(inputs) != 2:
                raise ValueError(
                    f"{self.name} takes images, or (images, labels) to normalise labelled and unlabelled "
                    f"samples separately; got a sequence of {len(inputs)} inputs."
                )
            images, labels = inputs
            labeled = labeled_mask(labels, self.n_classes) if self.separate_statistics else None
            return self._prepare_input(images), labeled
        return self._prepare_input(inputs), None

    def _encode(self, x, *, corrupted: bool, training: bool, update_statistics: bool, labeled=None) -> _Pass:
        """One encoder pass: clean or corrupted, batch or moving statistics."""
        z = x + self._noise(x, 0) if corrupted and self.noise_std[0] > 0 else x
        h = z
        zs, means, stds = [z], [None], [None]
        for level, (spec, transform, norm) in enumerate(
            zip(self.levels, self.encoder_transforms, self.encoder_norms), start=1
        ):
            z, mean, std = norm(transform(h), training=training, update_statistics=update_statistics, labeled=labeled)
            if corrupted and self.noise_std[level] > 0:
                z = z + self._noise(z, level)
            pre_activation = norm.shift_and_scale(z)
            if spec.activation == "relu":
                h = ops.relu(pre_activation)
            elif spec.activation == "softmax":
                h = ops.softmax(pre_activation, axis=-1)
            else:
                h = pre_activation
            zs.append(z)
            means.append(mean)
            stds.append(std)
        return _Pass(zs, means, stds, logits=pre_activation, probabilities=h)

    def _weighted_costs(self, clean: _Pass, corrupted: _Pass, labeled=None) -> dict[int, Any]:
        """Decoder pass and the weighted denoising cost of every level with lambda > 0."""
        top = len(self.levels)
        costs = {}
        estimate = None
        sample_weights = None if labeled is None else _denoising_weights(labeled)
        for level in range(top, self.lowest_decoded_level - 1, -1):
            if level == top:
                vertical = corrupted.probabilities
            else:
                if self.levels[level].kind == "global_pool":
                    estimate = ops.reshape(estimate, (-1, 1, 1, estimate.shape[-1]))
                vertical = self.decoder_transforms[level](estimate)
            combinator = self.combinators[level - self.lowest_decoded_level]
            estimate = combinator([corrupted.z[level], _standardize(vertical, labeled)])
            weight = self.denoising_costs[level]
            if weight > 0:
                normalized = estimate if level == 0 else (estimate - clean.mean[level]) / clean.std[level]
                costs[level] = weight * _sample_mean(ops.square(normalized - clean.z[level]), sample_weights)
        return costs

    def _output(self, encoded: _Pass):
        if self.output_activation in (None, "linear"):
            return encoded.logits
        return encoded.probabilities

    def _both_passes(self, x, labeled, update_statistics: bool) -> tuple[_Pass, _Pass]:
        clean = self._encode(x, corrupted=False, training=True, update_statistics=update_statistics, labeled=labeled)
        corrupted = self._encode(x, corrupted=True, training=True, update_statistics=False, labeled=labeled)
        return clean, corrupted

    def call(self, inputs, training=False):
        """Class probabilities of ``inputs``: images, or ``(images, labels)``.

        With labels (``fit`` passes them), the labelled and the unlabelled
        samples of a training batch are batch-normalised separately. In
        training mode the output is the corrupted encoder's and the denoising
        cost is added with ``add_loss``; otherwise the clean encoder's with the
        moving statistics.
        """
        x, labeled = self._split_inputs(inputs)
        if not training:
            return self._output(self._encode(x, corrupted=False, training=False, update_statistics=False))
        clean, corrupted = self._both_passes(x, labeled, update_statistics=True)
        if self.variant != "supervised":
            costs = list(self._weighted_costs(clean, corrupted, labeled).values())
            self.add_loss(sum(costs[1:], costs[0]) if costs else ops.zeros((), dtype=x.dtype))
        return self._output(corrupted)

    def reconstruction_costs(self, inputs) -> dict[int, Any]:
        """The weighted denoising cost of each level on a batch: images, or ``(images, labels)``.

        Runs both encoders with the batch's statistics and fresh noise, and
        the decoder, as a training step does, but leaves the moving averages
        alone. Returns ``{level: lambda(level) * cost}`` for the levels with
        ``lambda > 0`` (0 = input); their sum is what ``fit`` adds to the
        supervised cost. Empty for ``variant="supervised"``.

        Example:
            >>> costs = model.reconstruction_costs(images[:100])  # doctest: +SKIP
            >>> {level: float(cost) for level, cost in costs.items()}  # doctest: +SKIP
        """
        if self.variant == "supervised":
            return {}
        x, labeled = self._split_inputs(inputs)
        clean, corrupted = self._both_passes(x, labeled, update_statistics=False)
        return self._weighted_costs(clean, corrupted, labeled)

    # -- training ------------------------------------------------------------
    def compile(self, optimizer: Any = "auto", loss: Any = "auto", **kwargs):
        """``keras.Model.compile`` with the Ladder network's defaults.

        Args:
            optimizer: ``"auto"`` for Adam with the paper's learning rate 0.002,
                or any Keras optimizer.
            loss: ``"auto"`` for :class:`LabeledCrossEntropy` (label -1 =
                unlabelled), or any Keras loss (it receives the corrupted
                encoder's output in training).
            **kwargs: as for ``keras.Model.compile`` (metrics, ...).
        """
        if isinstance(optimizer, str) and optimizer == "auto":
            optimizer = keras.optimizers.Adam(learning_rate=LEARNING_RATE)
        if isinstance(loss, str) and loss == "auto":
            loss = LabeledCrossEntropy(from_logits=self.output_activation in (None, "linear"))
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        """Recompile a loaded model (``compile`` is overridden, so Keras leaves this to us)."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)  # so that the saved optimizer state can load

    def fit(self, x=None, y=None, *args, **kwargs):
        """``keras.Model.fit``; labels are required, ``-1`` for each unlabelled sample."""
        if y is None and hasattr(x, "shape"):
            raise ValueError(
                f"{self.name}.fit needs labels y beside the images: an integer class per sample, -1 for an "
                "unlabelled one (for images without any label: y=numpy.full(len(x), -1))."
            )
        if self.built and self.optimizer is not None and not self.optimizer.built:
            # Adam's moments now: on TensorFlow, creating them inside the first traced
            # step makes it trace the step twice (see universal_models.training.preparation).
            self.optimizer.build(self.trainable_variables)
        return super().fit(x, y, *args, **kwargs)

    def train_step(self, *args):
        """Keras' training step (any backend), with the labels also handed to ``call``.

        ``call`` needs to know which samples are labelled to normalise them
        apart from the unlabelled ones, so ``x`` becomes ``(x, y)``.
        """
        *state, data = args
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is not None and not isinstance(x, (tuple, list)):
            data = keras.utils.pack_x_y_sample_weight((x, y), y, sample_weight)
        return super().train_step(*state, data)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Keras' total loss; also records its supervised and denoising parts."""
        total = super().compute_loss(x, y, y_pred, sample_weight, training=training)
        if self.variant == "supervised":
            return total
        if training:
            added = [ops.cast(loss, "float32") for loss in self.losses]
            reconstruction = sum(added[1:], added[0]) if added else ops.zeros(())
            supervised = ops.cast(total, "float32") - reconstruction
        else:
            costs = [ops.cast(cost, "float32") for cost in self.reconstruction_costs(x).values()]
            reconstruction = sum(costs[1:], costs[0]) if costs else ops.zeros(())
            supervised = total
        self.supervised_cost_tracker.update_state(supervised)
        self.reconstruction_cost_tracker.update_state(reconstruction)
        return total

    def get_config(self):
        return {
            **super().get_config(),
            "name": self.name,
            "image_shape": self.image_shape,
            "n_classes": self.n_classes,
            "encoder": self.encoder,
            "filters": self.filters,
            "convs_per_stage": self.convs_per_stage,
            "kernel_size": self.kernel_size,
            "units": self.units,
            "noise_std": self.noise_std,
            "denoising_costs": self.denoising_costs,
            "variant": self.variant,
            "output_activation": self.output_activation,
            "batch_norm_momentum": self.batch_norm_momentum,
            "separate_statistics": self.separate_statistics,
            "seed": self.seed,
        }


def build_ladder(input_height: int, input_width: int, input_channels: int, n_classes: int,
                 **options: Any) -> tuple[LadderNetwork, int, int]:
    """A :class:`LadderNetwork` for ``(input_height, input_width, input_channels)`` images.

    The model classifies whole images: its output is the class probabilities
    ``(batch, n_classes)`` (output size 1 x 1, so this returns
    ``(model, 1, 1)``). Train it with ``model.compile()`` and
    ``model.fit(x, y)`` where ``y`` holds integer labels and ``-1`` for the
    unlabelled samples; see :class:`LadderNetwork` for the options and for
    how the paper's algorithm is implemented.

    Args:
        input_height, input_width: image size (must be known; for
            ``encoder="conv"`` a multiple of ``2 ** (len(filters) - 1)``).
        input_channels: image channels.
        n_classes: classes (>= 2).
        encoder, filters, convs_per_stage, kernel_size, units, noise_std,
        denoising_costs, variant, output_activation, batch_norm_momentum,
        seed: see :class:`LadderNetwork`.

    Returns:
        ``(model, 1, 1)``.

    Raises:
        ValueError: unknown image size (``None``), or any invalid option
            (see :class:`LadderNetwork`).

    Example:
        >>> model, _, _ = build_ladder(28, 28, 1, 10, encoder="dense")
        >>> model.compile()
    """
    if input_height is None or input_width is None:
        raise ValueError(
            "the Ladder network needs a fixed image size (its decoder reconstructs every layer); got "
            f"input_height={input_height!r}, input_width={input_width!r}."
        )
    return LadderNetwork((input_height, input_width, input_channels), n_classes, **options), 1, 1


# The registry reads a builder's keyword-only parameters as its options: show it
# LadderNetwork's, so that both stay one list.
_signature = inspect.signature(build_ladder)
build_ladder.__signature__ = _signature.replace(parameters=[
    *(p for p in _signature.parameters.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD),
    *(p for p in inspect.signature(LadderNetwork.__init__).parameters.values()
      if p.kind is inspect.Parameter.KEYWORD_ONLY),
])
register_model(
    "ladder", "ladder",
    "Ladder network (Rasmus et al. 2015): semi-supervised classifier, conv or dense; label -1 = unlabelled.",
)(build_ladder)
