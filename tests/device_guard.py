"""A CPU-only check that the library puts no tensor on an implicit device (torch backend).

On a GPU machine Keras' torch backend keeps every variable and every tensor it makes on the GPU
(``keras.src.backend.torch.core.get_device()``, ``"cuda"`` there). A tensor that our code makes
without naming a device lands on the CPU instead, and the first operation that meets a GPU
tensor fails ("Expected all tensors to be on the same device"); a backend tensor handed to
numpy (``np.asarray(tensor)``, ``tensor.numpy()``) fails there too ("can't convert cuda tensor
to numpy"). On a CPU-only machine, as in CI, both work, so nothing shows the bug.

:class:`DeviceGuard` is a ``torch.overrides.TorchFunctionMode`` that sees every torch call made
while it is active and refuses, when the caller is one of the watched source files (the
library's, and the tests' own):

- a tensor factory (``torch.empty``, ``zeros``, ``ones``, ``full``, ``arange``, ``linspace``,
  ``tensor``, ``as_tensor`` of non-tensor data, ``rand`` ...) without an explicit ``device=``
  (the ``*_like`` factories take their input's device and are allowed);
- ``torch.from_numpy`` (always a CPU tensor);
- a host conversion of a tensor: ``Tensor.numpy()``, ``Tensor.cpu()``, ``np.asarray(tensor)`` /
  ``np.array(tensor)`` (``Tensor.__array__``); read values through
  ``keras.ops.convert_to_numpy``, which moves them to the host first.

Calls made by Keras and PyTorch themselves are not judged (their frames are not watched): Keras
passes ``device=`` everywhere. The guard raises :class:`ImplicitDeviceError` at the call and
also records it, so a test fails even where the library catches the error and goes on.
``tests/conftest.py`` runs every torch test under it; ``tests/test_device.py`` exercises every
model and command under it on purpose and shows that the guard catches what it should.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch.overrides import TorchFunctionMode

#: Factories that take ``device=`` and otherwise make their tensor on torch's default device (the CPU).
_FACTORIES = {
    torch.empty, torch.empty_strided, torch.zeros, torch.ones, torch.full, torch.arange, torch.linspace,
    torch.logspace, torch.eye, torch.rand, torch.randn, torch.randint, torch.randperm, torch.scalar_tensor,
    torch.tril_indices, torch.triu_indices,
}
#: Factories from data: refused without ``device=`` unless the data is a tensor already (its device is kept).
_FROM_DATA = {torch.tensor, torch.as_tensor, torch.asarray}
#: Always a host tensor or a host copy (``torch.from_numpy`` takes no tensor, so no mode sees it: the guard
#: wraps it while it is active).
_HOST = {torch.Tensor.numpy: "Tensor.numpy()",
         torch.Tensor.cpu: "Tensor.cpu()", torch.Tensor.__array__: "np.asarray/np.array of a tensor"}

_TORCH_ROOT = Path(torch.__file__).resolve().parent
#: torch's dispatch shims between a Python-level call (``Tensor.__array__``) and the mode: the caller is above them
_SHIMS = {str(_TORCH_ROOT / "overrides.py"), str(_TORCH_ROOT / "_tensor.py"), str(Path(__file__).resolve())}


class ImplicitDeviceError(AssertionError):
    """A tensor made on an implicit device, or a backend tensor read as numpy without moving it to the host."""


def _name(func) -> str:
    return f"torch.{getattr(func, '__name__', func)}"


class DeviceGuard(TorchFunctionMode):
    """Refuse implicit-device tensors and host conversions made by code in ``roots`` (see the module docstring).

    Args:
        roots: folders (or files) whose code is judged; default: the ``universal_models`` package.

    Example:
        >>> with DeviceGuard() as guard:
        ...     model.predict(images)
        >>> guard.violations
        []
    """

    def __init__(self, roots=None):
        super().__init__()
        if roots is None:
            import universal_models

            roots = [Path(universal_models.__file__).parent]
        self.roots = tuple(str(Path(root).resolve()) for root in roots)
        self.violations: list[str] = []

    def __enter__(self):
        self._from_numpy = torch.from_numpy
        guard = self

        def from_numpy(array):
            guard._judge("torch.from_numpy (always a CPU tensor)")
            return guard._from_numpy(array)

        torch.from_numpy = from_numpy
        return super().__enter__()

    def __exit__(self, *exc_info):
        torch.from_numpy = self._from_numpy
        return super().__exit__(*exc_info)

    def _watched_caller(self):
        """The code that made the call (above torch's dispatch shims), if it is watched: ``(file, line, function)``.

        Only the direct caller counts: a factory inside torch's or Keras' own Python code (the ONNX exporter,
        Keras' ops) is theirs to place, even when our code called into them.
        """
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename in _SHIMS:
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename.startswith(self.roots):
            return frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name
        return None

    def _problem(self, func, args, kwargs) -> str | None:
        if func in _FACTORIES:
            if kwargs.get("device") is None and kwargs.get("out") is None:
                return f"{_name(func)} without device="
        elif func in _FROM_DATA:
            if kwargs.get("device") is None and not (args and isinstance(args[0], torch.Tensor)):
                return f"{_name(func)} of host data without device="
        elif func in _HOST:
            return _HOST[func]
        return None

    def _judge(self, problem: str) -> None:
        caller = self._watched_caller()
        if caller is not None:
            filename, line, function = caller
            if "device=" in problem:
                consequence = ("on a GPU that tensor is made on the CPU while the model's tensors are on the GPU; "
                               "pass device= (the device of the tensors it meets) or use a *_like factory")
            else:
                consequence = ("on a GPU a backend tensor is on the GPU and this fails or hides a copy; read values "
                               "with keras.ops.convert_to_numpy and make tensors with keras.ops.convert_to_tensor")
            message = f"{filename}:{line} ({function}) calls {problem}: {consequence}."
            self.violations.append(message)
            raise ImplicitDeviceError(message)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _FACTORIES or func in _FROM_DATA or func in _HOST:
            problem = self._problem(func, args, kwargs)
            if problem:
                self._judge(problem)
        return func(*args, **kwargs)

    def check(self) -> None:
        """Raise :class:`ImplicitDeviceError` listing every violation seen (also those something caught)."""
        if self.violations:
            unique = list(dict.fromkeys(self.violations))
            raise ImplicitDeviceError(f"{len(unique)} implicit-device call(s):\n" + "\n".join(unique))
