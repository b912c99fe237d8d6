"""Data-parallel training on two (emulated) JAX devices gives the losses of one device.

`umodels train --distributed` goes through `universal_models.training.distributed.data_parallel`
(Keras' `keras.distribution.DataParallel`); same global batches and batch-norm statistics over
the whole batch, so only the order of float32 sums differs between one device and two.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import keras
import pytest

from tests.helpers import with_python_path

jax_only = pytest.mark.skipif(keras.config.backend() != "jax", reason="keras.distribution is used on JAX")

def test_data_parallel_checks_backend_and_batch_size():
    from universal_models.training.distributed import data_parallel

    if keras.config.backend() != "jax":
        with pytest.raises(ValueError, match="KERAS_BACKEND=jax"):
            data_parallel()
        return
    devices = keras.distribution.list_devices()
    with pytest.raises(ValueError, match="cannot be split evenly"):
        data_parallel(devices * 3, batch_size=3 * len(devices) + 1)
    assert keras.distribution.distribution() is None  # nothing was set by the failed call


# `umodels train` on one device, then with --distributed on two; prints both runs' per-epoch losses.
# TestNet: batch norm in every block (statistics over the whole global batch), the smallest program to compile.
CLI_SCRIPT = textwrap.dedent(
    """
    import csv, json, sys
    from universal_models.cli import main

    run = ["train", "--model", "testnet", "--option", "base_filters=4", "--data", "shapes",
           "--n-samples", "12", "--image-size", "32", "--patch-size", "32", "--batch-size", "4", "--val-split", "4",
           "--steps-per-epoch", "2", "--epochs", "2", "--no-augment", "--seed", "3", "--verbose", "0"]
    losses = {}
    for name, extra in (("single", []), ("parallel", ["--distributed"])):
        folder = sys.argv[1] + "/" + name
        assert main(run + extra + ["--output", folder]) == 0
        losses[name] = [float(row["loss"]) for row in csv.DictReader(open(folder + "/log.csv"))]
        losses[name + "_config"] = json.load(open(folder + "/config.json"))["distributed"]
    print(json.dumps(losses))
    """
)


@jax_only
def test_umodels_train_distributed_matches_one_device(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": with_python_path(root),
                   # two emulated CPU devices, also on a machine with a GPU
                   "JAX_PLATFORMS": "cpu",
                   # the test runner's flags (scripts/test.sh) are kept; XLA reads the last of a repeated flag
                   "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, "-c", CLI_SCRIPT, str(tmp_path)], cwd=root, env=environment,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["single_config"] is False and report["parallel_config"] is True
    assert report["single"] == pytest.approx(report["parallel"], rel=1e-4), report


def test_umodels_train_distributed_needs_jax(tmp_path, capsys):
    from universal_models.cli import main

    if keras.config.backend() == "jax":
        pytest.skip("on JAX --distributed works (test above)")
    code = main(["train", "--model", "testnet", "--data", "shapes", "--distributed", "--output", str(tmp_path)])
    assert code == 2
    assert "KERAS_BACKEND=jax" in capsys.readouterr().err
