"""Semi-supervised MNIST with 100 labels: supervised baseline, Gamma-model, full Ladder network.

The setting of Rasmus et al. (2015, tables 1 and 2), scaled to the 10,000 MNIST
digits in ``../shared/data/mnist``:

- test set: the last 2,000 digits (never trained on);
- unlabelled set: the first 8,000 digits (the paper used 60,000);
- labelled set: 100 of those 8,000, 10 per class, drawn with a fixed seed
  (the same for every run).

Three methods train the same encoder with the same noise (0.3 on the input and
on every layer), optimiser (Adam, learning rate 0.002, kept for the first two
thirds of the epochs and then decreased linearly to 0, as in the paper) and
number of parameter updates:

- ``supervised``: ``variant="supervised"``, the 100 labelled digits only
  (batches of 100), the paper's "BN, Gaussian noise" baseline;
- ``gamma``: the Gamma-model (top layer decoded), batches of the 100
  labelled + 100 unlabelled digits;
- ``full``: the full Ladder network, same batches.

Every method runs once per seed (weights, noise, batch order); the test error
is reported as mean and standard deviation over the seeds, with the CPU time
of each run. Run (about 70 minutes of CPU with the defaults, one core per process)::

    nice -n 10 python benchmarks/ladder_mnist.py

or one process per seed, then the table of all three::

    for seed in 0 1 2; do
        nice -n 10 python benchmarks/ladder_mnist.py --seeds $seed --json ladder_$seed.json &
    done; wait
    python benchmarks/ladder_mnist.py --merge ladder_0.json ladder_1.json ladder_2.json

and see ``python benchmarks/ladder_mnist.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("supervised", "gamma", "full")
LEARNING_RATE = 0.002


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mnist",
                        help="folder with the MNIST t10k IDX files (default: ../shared/data/mnist)")
    parser.add_argument("--encoder", choices=("dense", "conv"), default="dense",
                        help="dense: the paper's 784-1000-500-250-250-250-10; conv: see --filters")
    parser.add_argument("--filters", type=int, nargs="+", default=[32, 64, 128],
                        help="channels of the conv stages (encoder=conv)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30, help="passes over the 8,000 unlabelled digits")
    parser.add_argument("--batch-size", type=int, default=100, help="labelled and unlabelled digits per batch")
    parser.add_argument("--label-seed", type=int, default=0, help="seed that picks the 100 labelled digits")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads of the backend (1 is fastest on a shared 2-core machine)")
    parser.add_argument("--joint-statistics", action="store_true",
                        help="ablation: normalise labelled and unlabelled samples together (separate_statistics=False)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--merge", type=Path, nargs="+", default=None,
                        help="print the table of the results in these JSON files (written by --json) and stop")
    parser.add_argument("--verbose", action="store_true", help="print the test error after every epoch")
    return parser.parse_args(argv)


def set_threads(threads: int) -> None:
    """Limit the backend's intra-op threads (must run before the backend is imported)."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = str(threads)
    os.environ.setdefault("XLA_FLAGS", f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'}")
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))


def split_mnist(folder: Path, label_seed: int, n_per_class: int = 10):
    """``(x_labeled, y_labeled, x_unlabeled, x_test, y_test)``, images scaled to [0, 1]."""
    from universal_models.data import load_mnist

    images, labels = load_mnist(folder)
    images = images.astype("float32")[..., None] / 255.0
    labels = labels.astype("int32")
    x_pool, y_pool = images[:8000], labels[:8000]
    x_test, y_test = images[-2000:], labels[-2000:]
    rng = np.random.default_rng(label_seed)
    chosen = np.concatenate([
        rng.choice(np.flatnonzero(y_pool == digit), n_per_class, replace=False) for digit in range(10)
    ])
    return x_pool[chosen], y_pool[chosen], x_pool, x_test, y_test


def learning_rate(epoch: int, epochs: int) -> float:
    """0.002 for the first two thirds of the epochs, then linearly down to 0 (Rasmus et al. 2015)."""
    decay_start = int(round(epochs * 2 / 3))
    if epoch < decay_start:
        return LEARNING_RATE
    return LEARNING_RATE * (epochs - epoch) / (epochs - decay_start)


def run(method: str, seed: int, data, arguments) -> dict:
    import keras

    import universal_models as um
    from universal_models.models.ladder import SemiSupervisedDataset

    x_labeled, y_labeled, x_unlabeled, x_test, y_test = data
    keras.utils.set_random_seed(seed)
    options = {"encoder": arguments.encoder, "variant": method, "seed": seed,
               "separate_statistics": not arguments.joint_statistics}
    if arguments.encoder == "conv":
        options["filters"] = tuple(arguments.filters)
    model, _, _ = um.get_model("ladder", 28, 28, 1, 10, **options)
    model.compile()
    steps_per_epoch = len(x_unlabeled) // arguments.batch_size
    if method == "supervised":
        # The labelled digits alone, as many updates as the ladders make.
        repeats = -(-steps_per_epoch * arguments.batch_size // len(x_labeled))
        x_train = np.tile(x_labeled, (repeats, 1, 1, 1))[: steps_per_epoch * arguments.batch_size]
        y_train = np.tile(y_labeled, repeats)[: steps_per_epoch * arguments.batch_size]
        fit_data = {"x": x_train, "y": y_train, "batch_size": arguments.batch_size, "shuffle": True}
    else:
        fit_data = {"x": SemiSupervisedDataset(x_labeled, y_labeled, x_unlabeled,
                                               batch_size=arguments.batch_size, seed=seed)}
    errors = []

    def test_error() -> float:
        predictions = model.predict(x_test, batch_size=500, verbose=0)
        return float(np.mean(np.argmax(predictions, axis=-1) != y_test) * 100)

    class Report(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if arguments.verbose:
                errors.append(test_error())
                costs = ", ".join(f"{key} {value:.3f}" for key, value in (logs or {}).items())
                print(f"  {method} seed {seed} epoch {epoch + 1}: test error {errors[-1]:.2f} %, {costs}",
                      flush=True)

    schedule = keras.callbacks.LearningRateScheduler(lambda epoch: learning_rate(epoch, arguments.epochs))
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    history = model.fit(**fit_data, epochs=arguments.epochs, verbose=0, callbacks=[schedule, Report()])
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    error = test_error()
    result = {
        "method": method, "seed": seed, "test_error": error, "cpu_seconds": cpu, "wall_seconds": wall,
        "updates": arguments.epochs * steps_per_epoch, "final_logs": {k: v[-1] for k, v in history.history.items()},
        "errors_per_epoch": errors,
    }
    print(json.dumps(result), flush=True)
    keras.backend.clear_session()
    return result


def summary_table(results: list[dict], methods) -> str:
    from common import markdown_table

    names = {"supervised": "(a) supervised only, 100 labels", "gamma": "(b) Gamma-model", "full": "(c) full Ladder"}
    rows = []
    for method in methods:
        runs = [result for result in results if result["method"] == method]
        errors = [run["test_error"] for run in runs]
        spread = statistics.stdev(errors) if len(errors) > 1 else 0.0
        rows.append([
            names[method], f"{statistics.mean(errors):.2f} ± {spread:.2f}",
            ", ".join(f"{error:.2f}" for error in errors),
            f"{statistics.mean(run['cpu_seconds'] for run in runs) / 60:.1f}",
            f"{statistics.mean(run['wall_seconds'] for run in runs) / 60:.1f}",
        ])
    header = ["method", "test error % (mean ± std)", "per seed", "CPU min / run", "wall min / run"]
    return markdown_table(header, rows)


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    if arguments.merge:
        results = [result for path in arguments.merge for result in json.loads(path.read_text())["results"]]
        methods = [method for method in METHODS if any(result["method"] == method for result in results)]
        print(summary_table(results, methods))
        print(f"Total CPU time of the training runs: {sum(r['cpu_seconds'] for r in results) / 60:.1f} min")
        return 0
    set_threads(arguments.threads)
    import keras
    from common import machine_line

    if keras.config.backend() == "torch":
        import torch

        torch.set_num_threads(arguments.threads)
    print(machine_line(), flush=True)
    print(f"Command: {' '.join(sys.argv)}", flush=True)
    data = split_mnist(arguments.data, arguments.label_seed)
    print(f"labelled {len(data[0])}, unlabelled {len(data[2])}, test {len(data[3])}", flush=True)
    # Seed by seed, so that a first complete comparison comes early.
    results = [run(method, seed, data, arguments) for seed in arguments.seeds for method in reversed(arguments.methods)]
    total_cpu = sum(result["cpu_seconds"] for result in results)
    print(summary_table(results, arguments.methods))
    print(f"Total CPU time of the training runs: {total_cpu / 60:.1f} min", flush=True)
    if arguments.json:
        arguments.json.write_text(json.dumps({"arguments": vars(arguments) | {"data": str(arguments.data),
                                                                               "json": str(arguments.json)},
                                              "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
