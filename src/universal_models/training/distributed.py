"""Data-parallel training on several devices with Keras' distribution API (JAX backend).

Keras 3 spreads a model over devices with ``keras.distribution``; on the JAX
backend :class:`keras.distribution.DataParallel` keeps a copy of the weights on
every device, splits each batch between them and averages the gradients, so
``model.fit`` trains as on one device with the same global batch (batch-norm
statistics, too, are those of the whole batch). :func:`data_parallel` sets it
up for every visible device; call it *before* building the model.

Several GPUs on one machine::

    KERAS_BACKEND=jax umodels train --distributed ...        # or, in Python:
    from universal_models.training.distributed import data_parallel
    data_parallel()                   # all visible devices (CUDA_VISIBLE_DEVICES limits them)
    model, _, _ = universal_models.get_model("unet", 256, 256, 1, 2)
    model.compile(...); model.fit(images, labels, batch_size=32)   # 32 split over the devices

Several hosts: start the same script on every host, each first calling
:func:`initialize_hosts` (``keras.distribution.initialize``) with the address
of host 0, the number of processes and its own index (or set
``KERAS_DISTRIBUTION_COORDINATOR_ADDRESS``, ``KERAS_DISTRIBUTION_NUM_PROCESSES``
and ``KERAS_DISTRIBUTION_PROCESS_ID`` and call it without arguments); then
:func:`data_parallel` sees the devices of all hosts, and each host feeds its
own share of every global batch.

On a CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` makes JAX show
N devices, which is how the tests check that two devices give the losses of
one (``tests/test_distributed.py``).
"""

from __future__ import annotations

from collections.abc import Sequence


def _require_jax() -> None:
    import keras

    if keras.config.backend() != "jax":
        raise ValueError(
            f"multi-device training uses keras.distribution, which this library supports on the JAX backend; "
            f"the active backend is {keras.config.backend()!r}. Run with KERAS_BACKEND=jax "
            "(pip install 'universal-models[jax]'; for GPUs, jax[cuda12])."
        )


def initialize_hosts(coordinator_address: str | None = None, num_processes: int | None = None,
                     process_id: int | None = None) -> None:
    """Join a multi-host JAX cluster (``keras.distribution.initialize``); call first, on every host.

    Args:
        coordinator_address: ``"host:port"`` of process 0, reachable from every host.
        num_processes: number of processes (usually one per host).
        process_id: this process's index, ``0 .. num_processes - 1``.

    With no arguments the ``KERAS_DISTRIBUTION_*`` environment variables are used.

    Raises:
        ValueError: the backend is not JAX.

    Example:
        >>> initialize_hosts("10.0.0.1:1234", num_processes=2, process_id=0)  # doctest: +SKIP
    """
    _require_jax()
    import keras

    keras.distribution.initialize(coordinator_address, num_processes, process_id)


def data_parallel(devices: Sequence[str] | None = None, *, batch_size: int | None = None):
    """Make Keras train data-parallel on ``devices`` (default: every visible device).

    Sets the global Keras distribution (``keras.distribution.set_distribution``),
    so build, compile and fit the model *after* this call.

    Args:
        devices: device names such as ``["gpu:0", "gpu:1"]``; default
            ``keras.distribution.list_devices()``.
        batch_size: the global batch size you will train with, to check now that
            the devices divide it evenly.

    Returns:
        The ``keras.distribution.DataParallel`` in force.

    Raises:
        ValueError: the backend is not JAX, no devices, or ``batch_size`` is not a
            multiple of the device count.

    Example:
        >>> distribution = data_parallel(batch_size=16)   # doctest: +SKIP
        >>> len(distribution.device_mesh.devices)           # doctest: +SKIP
        2
    """
    _require_jax()
    import keras

    devices = list(devices) if devices is not None else keras.distribution.list_devices()
    if not devices:
        raise ValueError("no devices to train on: keras.distribution.list_devices() is empty.")
    if batch_size is not None and batch_size % len(devices):
        raise ValueError(
            f"batch_size {batch_size} cannot be split evenly over {len(devices)} devices; use a multiple of "
            f"{len(devices)} (for example {len(devices) * max(1, batch_size // len(devices))})."
        )
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)
    return distribution
