"""Random inputs under every form of the convention, and the loss <-> reference pairs (tests and benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np

from universal_models import losses as L

from . import reference as R


@dataclass(frozen=True)
class Configuration:
    """One way of calling a loss: output kind, target form and options."""

    channels: int
    from_logits: bool = False
    per_image: bool = False
    ignore_index: int | None = None
    weighted: bool = False
    sequence: bool = False
    form: str = "labels"  # "labels" (no channel axis), "labels1" (trailing 1), "onehot"
    absent_class: bool = False  # labels never take the last class

    def describe(self) -> str:
        kind = "binary" if self.channels == 1 else f"{self.channels} classes"
        flags = [name for name in ("from_logits", "per_image", "weighted", "sequence", "absent_class")
                 if getattr(self, name)]
        ignore = [] if self.ignore_index is None else [f"ignore={self.ignore_index}"]
        return ", ".join([kind, self.form] + flags + ignore)


#: A covering set: every option in both states, both output kinds, all target forms.
CONFIGURATIONS = [
    Configuration(3),
    Configuration(3, from_logits=True, per_image=True, ignore_index=255, weighted=True, form="labels1"),
    Configuration(3, from_logits=True, weighted=True, sequence=True, form="onehot"),
    Configuration(3, per_image=True, sequence=True),
    Configuration(3, from_logits=True, ignore_index=0, form="onehot"),
    Configuration(3, per_image=True, absent_class=True, weighted=True),
    Configuration(4, from_logits=True, ignore_index=255, weighted=True),
    Configuration(1),
    Configuration(1, from_logits=True, per_image=True, ignore_index=255, weighted=True, form="labels1"),
    Configuration(1, from_logits=True, sequence=True, form="onehot"),
    Configuration(1, per_image=True, ignore_index=255, sequence=True),
]


def configurations_for_backend() -> list[Configuration]:
    """All configurations, or on jax a subset that still has every option in both states.

    Eager jax compiles every operation for every new shape (seconds per loss and configuration on
    a busy machine); the full matrix runs on jax in ``python -m tests.losses.reference_table``.
    """
    if keras.config.backend() != "jax":
        return CONFIGURATIONS
    return [CONFIGURATIONS[index] for index in (1, 2, 4, 5, 8, 9, 10)]


@dataclass
class Case:
    configuration: Configuration
    y_true: np.ndarray
    y_pred: np.ndarray
    options: dict = field(default_factory=dict)  # ignore_index, class_weights, per_image, from_logits

    def reference_inputs(self) -> R.Prepared:
        return R.prepare(self.y_true, self.y_pred, self.configuration.from_logits, self.configuration.ignore_index)


def make_case(configuration: Configuration, seed: int = 0, height: int = 5, width: int = 6) -> Case:
    """Random logits (N(0, 2)) or their probabilities, and random labels in the requested form."""
    rng = np.random.default_rng(seed)
    channels = configuration.channels
    leading = (2, 2) if configuration.sequence else (3,)
    logits = rng.normal(0.0, 2.0, leading + (height, width, channels)).astype("float32")
    classes = max(channels, 2) - (1 if configuration.absent_class else 0)
    labels = rng.integers(0, classes, leading + (height, width))
    if configuration.ignore_index is not None and configuration.form != "onehot":
        labels = np.where(rng.random(labels.shape) < 0.2, configuration.ignore_index, labels)
    if configuration.form == "onehot":
        y_true = labels[..., None].astype("float32") if channels == 1 else np.eye(channels, dtype="float32")[labels]
    elif configuration.form == "labels1":
        y_true = labels[..., None]
    else:
        y_true = labels
    if configuration.from_logits:
        y_pred = logits
    else:
        y_pred = (R.sigmoid(logits) if channels == 1 else R.softmax(logits)).astype("float32")
    options = {"from_logits": configuration.from_logits, "per_image": configuration.per_image,
               "ignore_index": configuration.ignore_index}
    if configuration.weighted:
        options["class_weights"] = list(rng.uniform(0.2, 3.0, max(channels, 2)).round(2))
    return Case(configuration, y_true, y_pred, options)


@dataclass(frozen=True)
class LossPair:
    """A library loss, its options, and the reference that should give the same number."""

    name: str
    cls: type
    options: dict
    reference: object  # (prepared, weights=..., per_image=...) -> float
    binary_only: bool = False

    def library_value(self, case: Case) -> float:
        return float(self.cls(**self.options, **case.options)(case.y_true, case.y_pred))

    def reference_value(self, case: Case) -> float:
        return self.reference(case.reference_inputs(), case.options.get("class_weights"),
                              case.configuration.per_image)


def _pair(name, cls, options, function, binary_only=False, **reference_options):
    def reference(prepared, weights, per_image):
        if function in (R.lovasz_hinge,):
            return function(prepared, per_image=per_image, **reference_options)
        return function(prepared, weights=weights, per_image=per_image, **reference_options)

    return LossPair(name, cls, options, reference, binary_only)


def _sum_pair(name, cls, options, first, second):
    def reference(prepared, weights, per_image):
        return first(prepared, weights, per_image) + second(prepared, weights, per_image)

    return LossPair(name, cls, options, reference)


_CE = _pair("cross_entropy", L.CrossEntropyLoss, {}, R.cross_entropy).reference

LOSS_PAIRS = [
    _pair("cross_entropy", L.CrossEntropyLoss, {}, R.cross_entropy),
    _pair("focal", L.FocalLoss, {"gamma": 2.0, "alpha": 0.25}, R.focal, gamma=2.0, alpha=0.25),
    _pair("focal_gamma_half", L.FocalLoss, {"gamma": 0.5}, R.focal, gamma=0.5),
    _pair("dice", L.DiceLoss, {}, R.dice),
    _pair("dice_common", L.DiceLoss, {"squared": False, "smooth": 1.0}, R.dice, squared=False, smooth=1.0),
    _pair("dice_inverse_square", L.DiceLoss, {"weighting": "inverse_square"}, R.dice, weighting="inverse_square"),
    _pair("generalized_dice", L.GeneralizedDiceLoss, {}, R.generalized_dice),
    _sum_pair("bce_dice", L.BCEDiceLoss, {}, _CE, _pair("d", L.DiceLoss, {}, R.dice).reference),
    _sum_pair("ce_dice", L.CEDiceLoss, {}, _CE, _pair("g", L.GeneralizedDiceLoss, {}, R.generalized_dice).reference),
    _pair("tversky", L.TverskyLoss, {"alpha": 0.3, "beta": 0.7}, R.tversky, alpha=0.3, beta=0.7),
    _pair("focal_tversky", L.FocalTverskyLoss, {}, R.tversky, alpha=0.3, beta=0.7, gamma=4 / 3),
    _pair("fbeta", L.FBetaLoss, {"beta": 2.0}, R.fbeta, beta=2.0),
    _pair("lovasz_softmax", L.LovaszLoss, {}, R.lovasz_softmax),
    _pair("lovasz_hinge", L.LovaszLoss, {"variant": "hinge"}, R.lovasz_hinge, binary_only=True),
    _pair("hausdorff_dt", L.HausdorffDTLoss, {}, R.hausdorff_dt),
    _pair("hausdorff_dt_alpha1", L.HausdorffDTLoss, {"alpha": 1.0}, R.hausdorff_dt, alpha=1.0),
]


def applicable(pair: LossPair, configuration: Configuration) -> bool:
    return configuration.channels == 1 or not pair.binary_only


#: One instance of every loss (and both Lovász variants); options chosen to exercise the risky paths.
LOSS_FACTORIES = {
    "cross_entropy": lambda **options: L.CrossEntropyLoss(**options),
    "focal": lambda **options: L.FocalLoss(alpha=0.25, **options),
    "focal_gamma_half": lambda **options: L.FocalLoss(gamma=0.5, **options),
    "dice": lambda **options: L.DiceLoss(**options),
    "dice_inverse_square": lambda **options: L.DiceLoss(weighting="inverse_square", smooth=0.0, **options),
    "generalized_dice": lambda **options: L.GeneralizedDiceLoss(smooth=0.0, **options),
    "bce_dice": lambda **options: L.BCEDiceLoss(**options),
    "ce_dice": lambda **options: L.CEDiceLoss(**options),
    "tversky": lambda **options: L.TverskyLoss(smooth=0.0, **options),
    "focal_tversky": lambda **options: L.FocalTverskyLoss(**options),
    "fbeta": lambda **options: L.FBetaLoss(**options),
    "lovasz": lambda **options: L.LovaszLoss(**options),
    "lovasz_hinge": lambda **options: L.LovaszLoss(variant="hinge", **options),
    "hausdorff_dt": lambda **options: L.HausdorffDTLoss(**options),
}
BINARY_ONLY = {"lovasz_hinge"}
#: losses whose value is at most 1
BOUNDED = {"dice", "dice_inverse_square", "generalized_dice", "tversky", "focal_tversky", "fbeta", "lovasz"}
