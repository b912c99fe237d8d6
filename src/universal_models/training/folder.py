"""The run folder of ``umodels train``: which files are umodels', atomic writes, one process at a time.

A run folder holds the files listed in :data:`RUN_FILES` (and, while a run is
alive, :data:`LOCK_FILE`). ``--overwrite`` removes exactly these files and
nothing else, so a user's own files in the folder are never touched. Every
file is written atomically (:func:`atomic_write`: a temporary file in the same
folder, flushed to disk, renamed over the old one), so a killed run leaves
either the previous complete file or the new one. :class:`RunLock` makes sure
only one process uses a run folder at a time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

#: what umodels writes in a run folder; ``--overwrite`` removes these and no other file
RUN_FILES = ("config.json", "last.keras", "best.keras", "log.csv", "metrics.json", "curves.png",
             "predictions.png")
#: the lock of a run folder in use (``{"pid": ..., "host": ..., "started": ...}``)
LOCK_FILE = "umodels.lock"


def fsync_directory(folder: Path) -> None:
    """Flush a folder's entries (a rename in it) to disk, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover  (platforms without directory handles)
        return
    try:
        os.fsync(descriptor)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(descriptor)


def temporary_path(path: Path) -> Path:
    """The temporary name :func:`atomic_write` uses for ``path`` (hidden, same folder and suffix)."""
    return path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Write ``path`` atomically: ``write(temporary)`` writes a temporary file in the same folder,
    which is flushed to disk and renamed over ``path``.

    Whatever happens (an exception, a kill), ``path`` is the previous complete file or the new
    one; the temporary file is removed on an exception (a killed run's is removed by ``--resume``).

    Example:
        >>> atomic_write("run/metrics.json", lambda temporary: temporary.write_text("{}"))  # doctest: +SKIP
    """
    path = Path(path)
    temporary = temporary_path(path)
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        fsync_directory(path.parent)
    finally:
        if temporary.exists():
            temporary.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write` of a UTF-8 text file."""
    return atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def stale_temporary_files(folder: Path) -> list[Path]:
    """Half-written temporary files of umodels' own files that a killed run left in ``folder``."""
    stems = {Path(name).stem for name in RUN_FILES}
    return [path for path in folder.glob(".*.tmp*") if path.name[1:].split(".tmp")[0] in stems]


def run_files(folder: Path) -> list[str]:
    """The umodels files present in ``folder`` (of :data:`RUN_FILES`)."""
    return [name for name in RUN_FILES if (folder / name).exists()]


def remove_run_files(folder: Path) -> list[str]:
    """Remove umodels' own files (:data:`RUN_FILES` and their temporary files) from ``folder``; nothing
    else."""
    removed = run_files(folder)
    for name in removed:
        (folder / name).unlink()
    for path in stale_temporary_files(folder):
        path.unlink()
    return removed


def check_writable_folder(folder: Path, what: str = "--output") -> None:
    """Refuse, before any work, an output folder that cannot be made or written.

    ``folder`` may not exist yet: its nearest existing ancestor must then be a folder this
    process can write in.

    Raises:
        NotADirectoryError, PermissionError: naming the path and what to do.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{what} {folder} is a file, not a folder; give a folder "
                                                "path "
                                                "(or remove the file)")
    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"{what} {folder} cannot be made: {existing} is a file, "
                                                "not a "
                                                "folder; choose an --output outside it")
    if not os.access(existing, os.W_OK | os.X_OK):
        target = "is" if existing == folder else f"would be made in {existing}, which is"
        raise PermissionError(errno.EACCES, f"{what} {folder} {target} not writable; make it writable "
                                            f"(chmod u+w {existing}) or choose another {what}")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class RunLock:
    """One process per run folder: ``umodels.lock`` made with ``O_CREAT | O_EXCL``, holding pid and host.

    A lock left by a process that no longer runs on this host (a run killed with SIGKILL) is
    taken over; a live one, or one from another host, is an error naming the lock file. The
    lock is removed when the ``with`` block ends, however it ends (an exception, Ctrl-C).

    Example:
        >>> with RunLock(Path("runs/x")):  # doctest: +SKIP
        ...     train_in_the_folder()
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self.owner = {"pid": os.getpid(), "host": socket.gethostname()}
        self.held = False

    def _create(self) -> bool:
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({**self.owner, "started": time.strftime("%Y-%m-%d %H:%M:%S")}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # being written, or unreadable: treat as held

    def acquire(self) -> RunLock:
        for _ in range(20):
            if self._create():
                self.held = True
                return self
            holder = self._holder()
            if holder is None:  # released in between: try again
                continue
            stale = (holder.get("host") == self.owner["host"] and isinstance(holder.get("pid"), int)
                     and not _process_alive(holder["pid"]))
            if not stale:
                where = (f"process {holder.get('pid')} on {holder.get('host')}" if holder
                         else "another process")
                raise FileExistsError(
                    errno.EEXIST,
                    f"the run folder {self.path.parent} is in use by {where} (lock file {self.path}); "
                    "wait for it to end, or, if "
                    f"no umodels process uses the folder any more, delete {self.path}")
            # Take the stale lock over: move it aside (one process wins the rename), check that what was moved
            # is the stale lock that was read, else put it back.
            aside = self.path.with_name(f".{LOCK_FILE}.stale{os.getpid()}")
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                continue
            try:
                moved = json.loads(aside.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                moved = {}
            if moved != holder:
                with contextlib.suppress(OSError):
                    os.rename(aside, self.path)
                continue
            aside.unlink()
        raise FileExistsError(errno.EEXIST, f"could not take the lock {self.path}; delete it if no umodels "
                                            "process uses the folder")

    def release(self) -> None:
        if self.held:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[RunLock]:
    """``with locked(folder):`` -- :class:`RunLock` as a function."""
    with RunLock(folder) as lock:
        yield lock
