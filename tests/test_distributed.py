"""Data-parallel training on two (emulated) JAX devices gives the losses of one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import keras

jax_only = pytest.mark.skipif(keras.config.backend() != "jax", reason="keras.distribution is used on JAX")

# Trains the same small U-Net (same seed, same data, same batches) on one device, then
# data-parallel on two; prints both loss histories as JSON.
SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import keras
    import universal_models as um
    from universal_models.distributed import data_parallel
    from tests.helpers import threshold_batch

    images, labels = threshold_batch(8, 32, 32, 1, 3)

    def train():
        keras.utils.set_random_seed(3)
        model, _, _ = um.get_model("unet", 32, 32, 1, 3, base_filters=4, depth=2)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
        history = model.fit(images, labels, batch_size=4, epochs=3, shuffle=False, verbose=0)
        return history.history["loss"]

    single = train()
    distribution = data_parallel(batch_size=4)
    parallel = train()
    print(json.dumps({"devices": len(distribution.device_mesh.devices.flatten()),
                      "single": single, "parallel": parallel}))
    """
)


@jax_only
def test_two_devices_match_one():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    environment = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": root,
                   "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=environment, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["devices"] == 2
    # Same global batches and batch-norm statistics over the whole batch: only the order of
    # float32 sums differs between one device and two.
    assert report["single"] == pytest.approx(report["parallel"], rel=1e-4), report


def test_data_parallel_checks_backend_and_batch_size():
    from universal_models.distributed import data_parallel

    if keras.config.backend() != "jax":
        with pytest.raises(ValueError, match="KERAS_BACKEND=jax"):
            data_parallel()
        return
    devices = keras.distribution.list_devices()
    with pytest.raises(ValueError, match="cannot be split evenly"):
        data_parallel(devices * 3, batch_size=3 * len(devices) + 1)
    assert keras.distribution.distribution() is None  # nothing was set by the failed call
