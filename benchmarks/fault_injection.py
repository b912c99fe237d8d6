"""Fault injection: kill `umodels train` with SIGKILL at random moments; the run folder must survive.

Each kill hits a tiny testnet run on generated shapes, once one more epoch is on disk: either a
random 0-0.6 s later (during training steps, validation or the next writes) or the moment the
next temporary checkpoint file appears (in the middle of writing last.keras or best.keras). After every
kill the folder must hold a last.keras (and a best.keras, where one was written) that passes its
zip checksums and loads with its optimizer, and no file but umodels' own and the stale lock; the
next attempt is `umodels train --resume --output DIR` (taking over the dead process's lock). A run
folder that reaches its last epoch is resumed once more without a kill: it must end with exit 0,
every epoch in last.keras and metrics.json written. Then a new folder starts.

    KERAS_BACKEND=torch python benchmarks/fault_injection.py --kills 24

prints one line per kill and a summary line (the figure in docs/reliability.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

RUN = [
    "train",
    "--model",
    "testnet",
    "--option",
    "base_filters=4",
    "--data",
    "shapes",
    "--n-samples",
    "16",
    "--image-size",
    "32",
    "--patch-size",
    "32",
    "--batch-size",
    "4",
    "--val-split",
    "4",
    "--steps-per-epoch",
    "3",
    "--seed",
    "11",
    "--verbose",
    "0",
    "--loss",
    "cross_entropy",
]


def _environment() -> dict:
    path = os.pathsep.join(
        [str(ROOT / "src")] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])
    )
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def _resume(command: list[str], folder: Path) -> subprocess.CompletedProcess:
    """``umodels train --resume`` of the run in ``folder``, to its end (no kill)."""
    return subprocess.run(command + ["train", "--resume", "--output", str(folder)], env=_environment(),
                          capture_output=True, text=True, timeout=600)


def _epoch(folder: Path) -> int:
    from universal_models.training import read_checkpoint_state

    try:
        return int((read_checkpoint_state(folder / "last.keras") or {}).get("epoch", 0))
    except (ValueError, FileNotFoundError):
        return 0 if not (folder / "last.keras").exists() else -1


def _intact(folder: Path) -> str | None:
    """``None`` if the folder holds loadable checkpoints, else what is wrong."""
    import universal_models as um
    from universal_models.training.folder import LOCK_FILE, RUN_FILES

    if not (folder / "last.keras").exists():
        return "no last.keras"
    for name in ("last.keras", "best.keras"):
        path = folder / name
        if path.exists():
            try:
                if zipfile.ZipFile(path).testzip() is not None:
                    return f"{name} fails its checksums"
                um.load_model(path)
            except Exception as error:  # noqa: BLE001  (any failure to load is what this counts)
                return f"{name} does not load: {error}"
    others = [
        path.name
        for path in folder.iterdir()
        if path.name not in RUN_FILES and path.name != LOCK_FILE and not path.name.startswith(".")
    ]
    return f"unexpected files {others}" if others else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=4, help="epochs of each run")
    parser.add_argument("--seed", type=int, help="seed of the kill moments (default: random, printed)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    command = [sys.executable, "-m", "universal_models.cli"]
    work = Path(tempfile.mkdtemp(prefix="umodels-faults-"))
    started = time.monotonic()
    kills = intact = runs_completed = 0
    failures: list[str] = []
    folder, resume = None, False
    while kills < args.kills:
        if folder is None or _epoch(folder) >= args.epochs:
            if folder is not None and not (folder / "metrics.json").exists():
                # a run at its last epoch, resumed once more without a kill: it must end and be evaluated
                done = _resume(command, folder)
                if done.returncode != 0 or not (folder / "metrics.json").exists():
                    failures.append(f"{folder.name}: final resume failed: {done.stderr.strip()[-300:]}")
                else:
                    runs_completed += 1
            folder, resume = work / f"run{kills:03d}", False
        before = _epoch(folder)
        arguments = (
            RUN + ["--epochs", str(args.epochs), "--output", str(folder)] + (["--resume"] if resume else [])
        )
        process = subprocess.Popen(
            command + arguments,
            env=_environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        during_write = rng.random() < 0.5
        deadline = time.monotonic() + 300
        progressed = False  # every attempt first waits for one more epoch on disk, so the run moves on
        while process.poll() is None and time.monotonic() < deadline:
            progressed = progressed or _epoch(folder) > before
            if (
                progressed
                and during_write
                and (any(folder.glob(".last.tmp*")) or any(folder.glob(".best.tmp*")))
            ):
                break  # the next checkpoint is being written: kill now
            if progressed and not during_write:
                time.sleep(rng.uniform(0.0, 0.6))
                break
            time.sleep(0.005)
        if process.poll() == 0 and (folder / "metrics.json").exists():  # finished before the kill came
            runs_completed += 1
            folder = None
            continue
        if process.poll() is not None:
            failures.append(
                f"{folder.name}: the run ended before the kill (exit {process.returncode}): "
                f"{process.stderr.read().strip()[-300:]}"
            )
            resume = True
            continue
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        problem = _intact(folder)
        intact += problem is None
        if problem:
            failures.append(f"{folder.name} kill {kills}: {problem}")
        print(
            f"kill {kills:2d}: {'during a checkpoint write' if during_write else 'after a checkpoint':25s} "
            f"epoch on disk {_epoch(folder)} of {args.epochs}: {problem or 'intact'}",
            flush=True,
        )
        resume = True
    while _epoch(folder) < args.epochs or not (folder / "metrics.json").exists():  # finish the last run
        done = _resume(command, folder)
        if done.returncode != 0:
            failures.append(f"{folder.name}: resume failed: {done.stderr.strip()[-300:]}")
            break
    else:
        runs_completed += 1
    minutes = (time.monotonic() - started) / 60
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{kills} kills, {intact} left the run folder intact (loadable last.keras and best.keras); "
        f"{runs_completed} runs resumed to their last epoch and evaluated; {len(failures)} failures; "
        f"seed {seed}; {minutes:.1f} min on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load {load:.1f}"
    )
    for failure in failures:
        print("FAILURE:", failure)
    return 0 if not failures and intact == kills else 1


if __name__ == "__main__":
    sys.exit(main())
