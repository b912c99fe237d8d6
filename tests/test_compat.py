"""Old module paths keep working after the package was reorganised (src/universal_models/_compat.py)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

import universal_models  # noqa: F401  (installs the finder)
from tests.helpers import with_python_path
from universal_models._compat import MOVED

pytestmark = pytest.mark.backend_independent


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_new_module(old):
    assert importlib.import_module(old) is importlib.import_module(MOVED[old])


def test_old_paths_in_a_fresh_process():
    # the spellings users have in their code, each in a process that imported nothing before
    code = "\n".join([
        "from universal_models.graph import GraphModel",
        "from universal_models import _torch_graph",
        "import universal_models.stateful as stateful",
        "from universal_models.export import export_onnx",
        "from universal_models.saving import load_model",
        "from universal_models.training import TrainConfig, train",
        "from universal_models.inference import predict_images",
        "import universal_models.runtime.graph as graph, universal_models.inference.stateful as new_stateful",
        "assert GraphModel is graph.GraphModel and stateful is new_stateful",
        "assert _torch_graph.__name__ == 'universal_models.runtime.torch.plan'",
        "assert train.__module__ == 'universal_models.training.run'",
        "print('ok')",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": with_python_path()})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_as_an_attribute_of_the_package(old):
    # ``um.allocator.keep_freed_memory``: attributes as they were when the package imported these itself
    import universal_models as um

    parent, _, child = old.rpartition(".")
    if parent != "universal_models":
        pytest.skip("only the package's own submodules were reached this way")
    assert getattr(um, child) is importlib.import_module(MOVED[old])


def test_monkeypatch_through_an_old_path_reaches_the_code(monkeypatch):
    import universal_models.evaluation as old
    import universal_models.inference.evaluation as new

    monkeypatch.setattr(old, "scores_from_confusion", lambda *args, **kwargs: "patched")
    assert new.scores_from_confusion() == "patched"


def test_training_package_lists_its_names():
    import universal_models.training as training

    for name in training.__all__:
        module = importlib.import_module(f"universal_models.training.{training._NAMES[name]}")
        assert getattr(training, name) is getattr(module, name)
    with pytest.raises(AttributeError, match="no attribute"):
        training.not_a_name  # noqa: B018


def test_a_file_saved_before_the_move_loads(tmp_path):
    # a .keras file written before the move names the old modules in its config
    import zipfile

    import keras
    import numpy as np

    import universal_models as um
    from tests.helpers import infer

    model, _, _ = um.get_model("unet", 16, 16, 1, 2, base_filters=4, depth=2)
    path = tmp_path / "new.keras"
    model.save(path)
    old = tmp_path / "old.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(old, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                text = data.decode()
                assert "universal_models.runtime.graph" in text
                for old_name, new_name in MOVED.items():
                    text = text.replace(f'"{new_name}"', f'"{old_name}"')
                data = text.encode()
            target.writestr(item, data)
    loaded = keras.saving.load_model(old, safe_mode=True)
    assert type(loaded) is type(model)
    images = np.random.default_rng(0).random((1, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(infer(loaded, images), infer(model, images), rtol=1e-5, atol=1e-6)
