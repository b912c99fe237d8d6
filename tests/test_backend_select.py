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


#: What Keras writes to a missing keras.json, written out here independently of the library's constant.
_KERAS_WRITES = {"floatx": "float32", "epsilon": 1e-07, "backend": "tensorflow",
                 "image_data_format": "channels_last"}


def _missing_backends():
    return [name for name in ("jax", "tensorflow", "torch") if importlib.util.find_spec(name) is None]


def _environment(tmp_path, backend=None):
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    env["KERAS_HOME"] = str(tmp_path / "keras_home")
    if backend is not None:
        env["KERAS_BACKEND"] = backend
    return env


def _python(code, env):
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def _run(tmp_path, config=None, backend=None, text=None):
    env = _environment(tmp_path, backend)
    if config is not None or text is not None:
        os.makedirs(env["KERAS_HOME"], exist_ok=True)
        with open(os.path.join(env["KERAS_HOME"], "keras.json"), "w") as handle:
            handle.write(json.dumps(config) if text is None else text)
    result = _python(_PROBE, env)
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
    missing = _missing_backends()
    if not missing:
        pytest.skip("every backend is installed here")
    (ours, _), stderr, _ = _run(tmp_path, config={"backend": missing[0]})
    assert ours == _first_installed()
    assert "not installed" in stderr


def test_environment_variable_wins(tmp_path):
    backend = _first_installed()
    (ours, _), _, _ = _run(tmp_path, config={"backend": "tensorflow"}, backend=backend)
    assert ours == backend


def test_keras_writes_the_default_the_library_recognises(tmp_path):
    """The installed Keras, imported first (with KERAS_BACKEND set, as scripts/demo.sh does), writes
    exactly the file the library treats as no choice: "tensorflow" whatever KERAS_BACKEND says."""
    env = _environment(tmp_path, backend=_first_installed())
    _python("import keras", env)
    with open(os.path.join(env["KERAS_HOME"], "keras.json")) as handle:
        written = json.load(handle)
    assert written == _KERAS_WRITES
    from universal_models._backend_select import KERAS_DEFAULT_CONFIG, is_keras_default_config

    assert KERAS_DEFAULT_CONFIG == _KERAS_WRITES
    assert is_keras_default_config(written)


def test_keras_default_file_is_no_choice_no_warning_and_left_alone(tmp_path):
    text = json.dumps(_KERAS_WRITES, indent=4)  # byte for byte what Keras writes
    (ours, keras_says), stderr, home = _run(tmp_path, text=text)
    assert ours == keras_says == _first_installed()
    assert "Warning" not in stderr and "not installed" not in stderr, stderr
    with open(os.path.join(home, "keras.json")) as handle:
        assert handle.read() == text


@pytest.mark.parametrize("edit", [{"epsilon": 1e-08}, {"floatx": "float64"}, {"nnx_enabled": False}],
                         ids=["epsilon", "floatx", "extra-entry"])
def test_an_edited_keras_json_naming_tensorflow_is_honoured(tmp_path, edit):
    """Any change to Keras' default makes the file the user's: tensorflow is used when installed,
    and its absence is warned about."""
    config = {**_KERAS_WRITES, **edit}
    env = _environment(tmp_path)
    os.makedirs(env["KERAS_HOME"])
    with open(os.path.join(env["KERAS_HOME"], "keras.json"), "w") as handle:
        json.dump(config, handle)
    probe = "import universal_models._backend_select as s; print(s.select_backend())"
    result = _python(probe, env)
    if "tensorflow" in _missing_backends():
        assert result.stdout.split() == [_first_installed()]
        assert "asks for the Keras backend 'tensorflow', which is not installed" in result.stderr
    else:
        assert result.stdout.split() == ["tensorflow"]
        assert "not installed" not in result.stderr


def test_fresh_machine_first_umodels_list_prints_no_warning(tmp_path):
    """A fresh machine where some program imported Keras first (so Keras wrote its default)."""
    env = _environment(tmp_path, backend=_first_installed())
    _python("import keras", env)
    env.pop("KERAS_BACKEND")
    result = _python("from universal_models.cli import main; main(['list'])", env)
    assert "unet" in result.stdout
    # (TensorFlow logs its CPU features to stderr on import; no Python warning may appear)
    assert "Warning" not in result.stderr and "keras.json" not in result.stderr, result.stderr


def test_a_file_without_a_backend_is_not_overwritten(tmp_path):
    text = json.dumps({"floatx": "float32", "image_data_format": "channels_last"})
    (ours, _), stderr, home = _run(tmp_path, text=text)
    assert ours == _first_installed()
    assert "not installed" not in stderr
    with open(os.path.join(home, "keras.json")) as handle:
        assert handle.read() == text
