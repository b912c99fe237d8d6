"""Time to build a model in a fresh process: host-side initializers against Keras' own.

The library's models draw their random initial weights with NumPy
(:mod:`universal_models.layers.initializers`). This script builds each model
once per fresh Python process, as a user's script or a test worker does, with
those initializers and, for comparison, with the same models drawing through
Keras' initializers (``keras.random``; the initializers' ``__call__`` is
replaced by Keras' in that process only). On the JAX backend every
``jax.random`` draw of a new shape is compiled by XLA, which is what the host
initializers avoid.

    KERAS_BACKEND=jax python benchmarks/build_time.py
    KERAS_BACKEND=jax python benchmarks/build_time.py --models unet segnet lstm_unet --runs 3

Prints a Markdown table: median seconds over ``--runs`` fresh processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402  (no Keras import: the models are built in the children)

#: name -> (registry name, options, (height, width, channels, classes))
MODELS = {
    "unet16": ("unet", {"base_filters": 16}, (128, 128, 3, 2)),
    "unet": ("unet", {}, (128, 128, 3, 2)),
    "segnet": ("segnet", {}, (128, 128, 3, 2)),
    "fcn8": ("fcn8", {"fc_filters": 1024}, (128, 128, 3, 2)),
    "lstm_unet": ("lstm_unet", {}, (64, 64, 1, 2)),
    "lstm_next_frame": ("lstm_next_frame", {}, (64, 64, 1, 1)),
    "ladder": ("ladder", {"encoder": "dense"}, (28, 28, 1, 10)),  # the paper's MNIST network
    "ladder_conv": ("ladder", {}, (32, 32, 1, 10)),
}

_CHILD = """
import json, sys, time
sys.path.insert(0, {src!r})
import universal_models as um
import keras
if {keras_initializers!r}:
    from universal_models.layers import initializers
    initializers.HostVarianceScaling.__call__ = keras.initializers.VarianceScaling.__call__
    initializers.HostOrthogonal.__call__ = keras.initializers.Orthogonal.__call__
name, options, size = {model!r}
start = time.perf_counter()
um.get_model(name, *size, **options)
print(json.dumps(time.perf_counter() - start))
"""


def build_seconds(key: str, keras_initializers: bool) -> float:
    """Seconds to build model ``key`` in a fresh process."""
    return common.fresh_process_json(
        _CHILD.format(src=os.path.join(ROOT, "src"), keras_initializers=keras_initializers, model=MODELS[key]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["unet16", "unet", "segnet", "lstm_unet"], choices=MODELS)
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per model and initializer")
    args = parser.parse_args(argv)
    print(common.machine_line())
    rows = []
    for key in args.models:
        times = {flag: [] for flag in (False, True)}
        for _ in range(args.runs):  # alternate, so both see the same machine
            for flag in (False, True):
                times[flag].append(build_seconds(key, flag))
        host, keras_sampled = (statistics.median(times[flag]) for flag in (False, True))
        rows.append([key, f"{host:.2f}", f"{keras_sampled:.2f}", f"{keras_sampled / host:.1f}"])
        print(f"# {key}: {times}", file=sys.stderr, flush=True)
    print(common.markdown_table(["model", "build s, host initializers", "build s, Keras initializers",
                                 "Keras / host"], rows))


if __name__ == "__main__":
    main()
