"""Read MNIST digits from the original IDX files (gzip-compressed or not).

No download happens here: pass the folder that holds the files, for example
``../shared/data/mnist`` on the project's machines, or the files from
http://yann.lecun.com/exdb/mnist/ fetched by you.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or plain) into a numpy array.

    Raises:
        ValueError: the file is not an IDX file (bad magic number or size).

    Example:
        >>> images = read_idx("t10k-images-idx3-ubyte.gz")  # doctest: +SKIP
        >>> images.shape
        (10000, 28, 28)
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"cannot read IDX file {path}: {error}") from error
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number); expected MNIST-style IDX data")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    n_dims = data[3]
    header = 4 + 4 * n_dims
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} bytes) but the file has {len(data)}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(folder: str | Path, split: str = "t10k") -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images ``(n, 28, 28) uint8`` and labels ``(n,) uint8`` from ``folder``.

    Args:
        folder: folder with ``{split}-images-idx3-ubyte[.gz]`` and
            ``{split}-labels-idx1-ubyte[.gz]``.
        split: ``"t10k"`` (test set, 10,000 digits) or ``"train"`` (60,000).

    Raises:
        FileNotFoundError: the files are not in ``folder`` (the message lists
            the names looked for).

    Example:
        >>> images, labels = load_mnist("../shared/data/mnist")  # doctest: +SKIP
    """
    folder = Path(folder)
    found = {}
    for kind, stem in (("images", f"{split}-images-idx3-ubyte"), ("labels", f"{split}-labels-idx1-ubyte")):
        candidates = [folder / f"{stem}.gz", folder / stem]
        existing = [path for path in candidates if path.is_file()]
        if not existing:
            raise FileNotFoundError(
                f"MNIST {kind} not found: looked for {candidates[0].name} or {candidates[1].name} in {folder}. "
                "universal_models never downloads data; put the IDX files there."
            )
        found[kind] = read_idx(existing[0])
    images, labels = found["images"], found["labels"]
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"MNIST files in {folder} do not match: images {images.shape}, labels {labels.shape}")
    return images, labels
