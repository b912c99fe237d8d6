"""Ladder networks for semi-supervised classification (Rasmus et al. 2015).

``get_model("ladder", ...)`` builds a :class:`LadderNetwork`; train it with
plain ``model.fit`` on labels where ``-1`` marks an unlabelled sample, for
example on the batches of :class:`SemiSupervisedDataset`.
"""

from .dataset import SemiSupervisedDataset
from .loss import UNLABELED, LabeledCrossEntropy
from .network import LadderNetwork, build_ladder, default_denoising_costs

__all__ = [
    "UNLABELED",
    "LabeledCrossEntropy",
    "LadderNetwork",
    "SemiSupervisedDataset",
    "build_ladder",
    "default_denoising_costs",
]
