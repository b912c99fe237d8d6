"""All model families; importing this module registers every model."""

from . import (
    ladder,  # noqa: F401
    recurrent,  # noqa: F401
    segmentation,  # noqa: F401
)
