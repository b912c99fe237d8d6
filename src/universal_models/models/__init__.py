"""All model families; importing this module registers every model."""

from . import segmentation  # noqa: F401
from . import recurrent  # noqa: F401
from . import ladder  # noqa: F401
