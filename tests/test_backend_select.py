"""`import universal_models` picks a backend that is installed (in a fresh process)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.backend_independent

_PROBE = "import universal_models as um, keras; print(um.backend(), keras.config.backend())"


def _first_installed():
    for name in ("torch", "jax", "tensorflow"):
        if importlib.util.find_spec(name) is not None:
            return name
    raise AssertionError("no backend installed")


def _run(tmp_path, config=None, backend=None):
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path / "keras_home")
    if config is not None:
        os.makedirs(env["KERAS_HOME"], exist_ok=True)
        with open(os.path.join(env["KERAS_HOME"], "keras.json"), "w") as handle:
            json.dump(config, handle)
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    result = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.split(), result.stderr, env["KERAS_HOME"]


def test_no_variable_no_config_picks_first_installed_and_remembers_it(tmp_path):
    (ours, keras_says), _, home = _run(tmp_path)
    assert ours == keras_says == _first_installed()
    with open(os.path.join(home, "keras.json")) as handle:
        assert json.load(handle)["backend"] == _first_installed()
    # the second import reads the file and chooses the same
    (again, _), _, _ = _run(tmp_path)
    assert again == ours


def test_config_naming_a_missing_backend_falls_back_with_a_warning(tmp_path):
    missing = [name for name in ("jax", "tensorflow", "torch") if importlib.util.find_spec(name) is None]
    if not missing:
        pytest.skip("every backend is installed here")
    (ours, _), stderr, _ = _run(tmp_path, config={"backend": missing[0]})
    assert ours == _first_installed()
    assert "not installed" in stderr


def test_environment_variable_wins(tmp_path):
    backend = _first_installed()
    (ours, _), _, _ = _run(tmp_path, config={"backend": "tensorflow"}, backend=backend)
    assert ours == backend
