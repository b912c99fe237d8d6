"""Loading saved models with errors that say what is wrong with the file.

:func:`load_model` is ``keras.saving.load_model`` with the library's layers,
losses and metrics registered, ``safe_mode=True`` by default, and a clear
message for the ways a file goes wrong: it does not exist, it is not a
``.keras`` archive (an ``.h5``/``.onnx``/image file, or a truncated
download), or it holds code (a ``Lambda`` layer, a custom object) that safe
mode refuses to run.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

_KERAS_MEMBERS = ("config.json", "metadata.json")


def check_model_file(path: str | os.PathLike) -> Path:
    """Check that ``path`` is a complete ``.keras`` archive; return it as a ``Path``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: a folder, another format, or a damaged or truncated archive.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a model file; give the .keras file inside it "
                         "(a run folder of `umodels train` holds best.keras and last.keras).")
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}; check the path (models are saved as .keras files).")
    if path.suffix in (".h5", ".hdf5"):
        raise ValueError(f"{path} is a legacy HDF5 file; universal-models reads Keras 3 .keras files. Load it with "
                         "keras.saving.load_model in the Keras that wrote it and save it again as .keras.")
    if path.suffix == ".onnx":
        raise ValueError(f"{path} is an ONNX graph, not a Keras model; run it with "
                         "universal_models.inference.export.OnnxPredictor (or `umodels predict`).")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a Keras model file (a .keras file is a zip archive; this one is not, or it "
                         "is truncated). Give a file written by model.save(...) or `umodels train`/`export`.")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path} is a damaged .keras archive ({error}); save the model again.") from error
    if damaged is not None:
        raise ValueError(f"{path} is a damaged .keras archive (member {damaged} fails its checksum); "
                         "save the model again.")
    missing = [name for name in _KERAS_MEMBERS if name not in names]
    if missing:
        raise ValueError(f"{path} is a zip archive but not a Keras model (no {', '.join(missing)}); give a file "
                         "written by model.save(...) or `umodels train`/`export`.")
    return path


def load_model(path: str | os.PathLike, *, compile: bool = True, safe_mode: bool = True):
    """Load a ``.keras`` model saved with this library (or plain Keras).

    Args:
        path: the ``.keras`` file.
        compile: restore the optimizer, loss and metrics too (``False`` for
            inference only).
        safe_mode: refuse files that would run arbitrary code when loaded
            (``Lambda`` layers, unregistered custom objects). Keep it on for
            files you did not write yourself.

    Returns:
        The ``keras.Model``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a Keras model file, a damaged one, one that needs code
            safe mode refuses, or one that names classes this installation
            does not know.

    Example:
        >>> model = load_model("runs/latest/best.keras", compile=False)  # doctest: +SKIP
    """
    import keras

    import universal_models  # noqa: F401  (registers the library's layers, losses and metrics)

    path = check_model_file(path)
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=safe_mode)
    except Exception as error:  # Keras raises ValueError, TypeError, KeyError ... for a bad file
        chain, cause = [], error
        while cause is not None and len(chain) < 10:
            chain.append(str(cause))
            cause = cause.__cause__ or cause.__context__
        text = "\n".join(chain)
        if "safe_mode" in text or "unsafe" in text.lower():
            raise ValueError(
                f"{path} contains code that safe mode refuses to run when loading (for example a Lambda layer "
                "or a custom function). Only if you trust the file's author, load it with "
                "load_model(path, safe_mode=False); better, rebuild the model without such layers."
            ) from error
        unknown = re.search(r"Could not locate (?:class|function) '([^']+)'", text)
        if unknown:
            raise ValueError(
                f"{path} uses {unknown.group(1)!r}, which this installation does not know. Import the module "
                "that defines it (registered with keras.saving.register_keras_serializable) before loading, "
                "or update universal-models if the file was written by a newer version."
            ) from error
        first = chain[0].splitlines()[0] if chain[0] else type(error).__name__
        raise ValueError(f"cannot load the model {path}: {first}") from error
