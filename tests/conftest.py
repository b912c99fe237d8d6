"""Shared fixtures. The backend comes from KERAS_BACKEND (CI runs each backend in
its own pytest process); without it, universal_models picks one on import."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

import universal_models  # noqa: F401  (chooses the backend before keras is imported)
import keras

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend {keras.config.backend()}"


# UMODELS_TEST_TIMELINE=FILE appends one line per test: backend, worker, start and end (Unix seconds),
# XLA compilations and the seconds they took (JAX; 0 elsewhere), test id. It shows how the parallel workers share
# each suite and where JAX's time goes (scripts/timeline.py summarises the file).
_TIMELINE = os.environ.get("UMODELS_TEST_TIMELINE")
_compiles = [0, 0.0]  # count, seconds
if _TIMELINE and keras.config.backend() == "jax":
    import jax.monitoring

    def _count_compile(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            _compiles[0] += 1
            _compiles[1] += duration

    jax.monitoring.register_event_duration_secs_listener(_count_compile)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    start, _compiles[:] = time.time(), [0, 0.0]  # where the test runs (an xdist worker), setup included
    yield
    if _TIMELINE:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(_TIMELINE, "a") as handle:
            handle.write(f"{keras.config.backend()}\t{worker}\t{start:.3f}\t{time.time():.3f}\t"
                         f"{_compiles[0]}\t{_compiles[1]:.3f}\t{item.nodeid}\n")


@pytest.fixture(autouse=True)
def _seed_everything():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data``; skips the test when it is not there (a user's clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present on the project's machines)")
    return SHARED_DATA


def backend_name() -> str:
    return keras.config.backend()
