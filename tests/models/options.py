"""The small options each registered model is tested with: the one table every test reads.

Small enough to keep the suite fast on three backends, large enough for the learning tests of
``tests/models/base.py`` to learn. ``tests/test_graph.py`` checks that every GraphModel in the
registry has an entry (the Ladder, a subclassed model, has tests of its own).
"""

from __future__ import annotations

SMALL = {
    "testnet": {"base_filters": 8},
    "unet": {"base_filters": 8},
    "unet_shallow": {"base_filters": 8},
    "segnet": {"base_filters": 16},
    "segnet_shallow": {"base_filters": 16},
    "fcn8": {"base_filters": 4, "fc_filters": 32, "dropout": 0.0},
    "fcn16": {"base_filters": 4, "fc_filters": 32, "dropout": 0.0},
    "fcn32": {"base_filters": 4, "fc_filters": 32, "dropout": 0.0},
    "lstm_unet": {"base_filters": 4, "depth": 2},
    "lstm_shallow": {"filters": 8},
    "lstm_full": {"base_filters": 4, "depth": 2},
    "lstm_next_frame": {"base_filters": 8, "depth": 2},
}

#: the recurrent models' entries
RECURRENT = {name: options for name, options in SMALL.items() if name.startswith("lstm")}
