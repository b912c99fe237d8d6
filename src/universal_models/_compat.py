"""Old module paths that keep working after the package was reorganised (2026-12).

Each old path is the same module object as its new one (``import universal_models.graph`` gives
``universal_models.runtime.graph``), so imports, ``monkeypatch`` and ``mock.patch`` of the old
names keep working. ``universal_models.training`` and ``universal_models.inference`` became
packages that re-export the names the modules had. The changelog is in ``DEVELOPING.md``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

#: old module -> new module
MOVED = {
    "universal_models.graph": "universal_models.runtime.graph",
    "universal_models._torch_graph": "universal_models.runtime.torch.plan",
    "universal_models.layers.memory_format": "universal_models.runtime.torch.memory_format",
    "universal_models.allocator": "universal_models.runtime.allocator",
    "universal_models.stateful": "universal_models.inference.stateful",
    "universal_models.export": "universal_models.inference.export",
    "universal_models.saving": "universal_models.inference.loading",
    "universal_models.evaluation": "universal_models.inference.evaluation",
    "universal_models.preparation": "universal_models.training.preparation",
    "universal_models.distributed": "universal_models.training.distributed",
    "universal_models.plotting": "universal_models.training.plotting",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands back the module now at the new one."""

    def find_spec(self, name, path=None, target=None):
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):
        # the module was executed under its new name; the import system now files it under the old
        # one too (sys.modules and the parent package's attribute)
        pass


def install() -> None:
    """Put the finder in front of the import system (once)."""
    if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedModules())
