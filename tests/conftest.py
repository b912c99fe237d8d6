"""Shared fixtures. The backend comes from KERAS_BACKEND (CI runs each backend in
its own pytest process); without it, universal_models picks one on import.

Keras (and with it the backend) is imported in the processes that run tests, in
``pytest_configure``, never in pytest-xdist's controller process: there it would
only cost about 10 s of imports before the workers start.
"""

from __future__ import annotations

import collections
import importlib.metadata
import json
import os
import time
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

keras = None  # set by pytest_configure in the processes that run tests


def _is_xdist_controller(config) -> bool:
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", None))


# UMODELS_TEST_TIMELINE=FILE appends one line per test: backend, worker, start and end (Unix seconds),
# XLA compilations and the seconds they took (JAX; 0 elsewhere), test id. It shows how the parallel
# workers share each suite and where JAX's time goes (scripts/timeline.py summarises the file).
_TIMELINE = os.environ.get("UMODELS_TEST_TIMELINE")
_compiles = [0, 0.0]  # count, seconds


def _count_compile(event, duration, **_):
    if event == "/jax/core/compile/backend_compile_duration":
        _compiles[0] += 1
        _compiles[1] += duration


def pytest_configure(config):
    global keras
    if _is_xdist_controller(config):
        return
    import keras as keras_module

    import universal_models  # noqa: F401  (chooses the backend before keras is imported)

    keras = keras_module
    _float32_exactly()
    if _TIMELINE and keras.config.backend() == "jax":
        import jax.monitoring

        jax.monitoring.register_event_duration_secs_listener(_count_compile)


def _float32_exactly() -> None:
    """On a GPU, float32 convolutions and matrix products in float32, not TF32.

    PyTorch runs cuDNN convolutions in TF32 by default (10-bit mantissa on Ampere and later) and JAX
    runs float32 products at its "default" precision there; the tests compare float32 results to
    1e-5 (the plan against Keras' runner, losses against float64 references), which TF32 does not
    hold. Mixed-precision tests have tolerances of their own. No effect on a CPU.
    """
    backend = keras.config.backend()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.backends.cudnn.allow_tf32 = False
            torch.backends.cuda.matmul.allow_tf32 = False
    elif backend == "jax":
        import jax

        if jax.default_backend() != "cpu":
            jax.config.update("jax_default_matmul_precision", "highest")


def tensor_device() -> str:
    """Where the tests' tensors live: ``cpu``, ``cuda`` (torch), ``gpu`` (JAX) ..."""
    backend = keras.config.backend()
    if backend == "torch":
        from keras.src.backend.torch.core import get_device

        return str(get_device())
    if backend == "jax":
        import jax

        return jax.default_backend()
    import tensorflow as tf

    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def pytest_report_header(config):
    version = importlib.metadata.version("keras")
    if keras is None:  # the xdist controller
        return f"keras {version}, backend {os.environ.get('KERAS_BACKEND', 'chosen on import')}"
    return f"keras {version}, backend {keras.config.backend()}, device {tensor_device()}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start, _compiles[:] = time.time(), [0, 0.0]  # where the test runs (an xdist worker), setup included
    yield
    if _TIMELINE:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(_TIMELINE, "a") as handle:
            handle.write(f"{keras.config.backend()}\t{worker}\t{start:.3f}\t{time.time():.3f}\t"
                         f"{_compiles[0]}\t{_compiles[1]:.3f}\t{item.nodeid}\n")


# Longest scopes first. Under pytest-xdist's --dist loadscope a test module (or class) runs on one
# worker, and a worker takes the next scope when it is nearly done; with the long scopes queued
# first, the last ones to start are short and the two workers end close together (in the order
# xdist uses by default, most tests first, a 30 s module could start last and leave the other
# worker idle). scripts/test.sh passes --no-loadscope-reorder so that xdist keeps this order.
# tests/scope_seconds.json holds each scope's seconds per backend, written from a timeline by
# scripts/timeline.py --write-scope-seconds; a stale or missing entry only costs balance.
_SCOPE_SECONDS = Path(__file__).with_name("scope_seconds.json")


def scope_of(nodeid: str) -> str:
    """The unit pytest-xdist's loadscope scheduling keeps on one worker: module, or class."""
    return nodeid.rsplit("::", 1)[0]


def pytest_collection_modifyitems(config, items):
    try:
        seconds = json.loads(_SCOPE_SECONDS.read_text()).get(keras.config.backend(), {})
    except (OSError, ValueError):
        return
    scopes = [scope_of(item.nodeid) for item in items]
    first_index: dict[str, int] = {}
    for index, scope in enumerate(scopes):
        first_index.setdefault(scope, index)
    counts = collections.Counter(scopes)
    estimate = {scope: seconds.get(scope, 0.5 * counts[scope]) for scope in first_index}  # new: 0.5 s a test
    order = sorted(range(len(items)), key=lambda index: (-estimate[scopes[index]], first_index[scopes[index]]))
    items[:] = [items[index] for index in order]  # each scope stays contiguous, in its own order


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


_TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _device_guard(request):
    """On the torch backend every test runs under :class:`tests.device_guard.DeviceGuard`, judging the
    library's code and the tests' own: no tensor on an implicit device, no backend tensor read as numpy
    without ``keras.ops.convert_to_numpy``. That is what breaks on a GPU, where Keras keeps tensors on
    the GPU, and what a CPU-only run would not show otherwise. ``@pytest.mark.host_tensors`` exempts a
    test that is about host tensors on purpose; ``UMODELS_DEVICE_GUARD=0`` switches the guard off (to
    measure what it costs, or to debug)."""
    if (keras.config.backend() != "torch" or request.node.get_closest_marker("host_tensors")
            or os.environ.get("UMODELS_DEVICE_GUARD") == "0"):
        yield None
        return
    import universal_models
    from tests.device_guard import DeviceGuard

    guard = DeviceGuard(roots=[Path(universal_models.__file__).resolve().parent, _TESTS])
    with guard:
        yield guard
    guard.check()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; skips the test when it is not there (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present on the project's machines)")
    return SHARED_DATA


def backend_name() -> str:
    import keras as keras_module  # also when this file is imported as a module (tests.conftest)

    return keras_module.config.backend()
