"""`umodels demo` over several seeds, run by GraphModel's plan or by Keras' own functional runner.

Training is chaotic over 12 epochs: float32 rounding differences between two
ways of computing the same network grow into different trajectories. This
script shows whether the plan changes training results beyond the spread
between seeds. With ``--runner keras`` every GraphModel is run by Keras'
``Functional.call`` in this process (the library before GraphModel).

    KERAS_BACKEND=torch python benchmarks/demo_seeds.py --runner plan --seeds 0 1 2
    KERAS_BACKEND=torch python benchmarks/demo_seeds.py --runner keras --seeds 0 1 2

Prints one Markdown row per seed: final full-size mean IoU and IoU per class.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "torch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import common  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runner", choices=["plan", "keras"], default="plan")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args(argv)
    from keras.src.models.functional import Functional

    from universal_models.cli import main as umodels
    from universal_models.graph import GraphModel

    if args.runner == "keras":
        GraphModel.call = lambda self, inputs, training=None, mask=None, **kwargs: Functional.call(
            self, inputs, training=training, mask=mask, **kwargs)
    rows = []
    for seed in args.seeds:
        output = os.path.join(tempfile.mkdtemp(), "demo")
        umodels(["demo", "--output", output, "--seed", str(seed)])
        with open(os.path.join(output, "metrics.json"), encoding="utf-8") as handle:
            metrics = json.load(handle)
        rows.append([args.runner, seed, f"{metrics['mean_iou']:.4f}",
                     " / ".join(f"{item['iou']:.3f}" for item in metrics["per_class"])])
    print(common.machine_line())
    print(common.markdown_table(["runner", "seed", "mean IoU", "IoU per class"], rows))


if __name__ == "__main__":
    main()
