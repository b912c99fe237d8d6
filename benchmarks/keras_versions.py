"""Which Keras releases to support: speed against plain PyTorch, and Keras' sparse cross-entropy on torch.

For each virtual environment given (each with torch 2.13.0, one Keras release and this library
installed with ``pip install -e . --no-deps``), runs ``benchmarks/torch_reference.py`` in that
environment (U-Net, 16 base filters, 128 x 128 x 3, batch 16 by default, one step per timed run:
ours against the same network in plain PyTorch, interleaved in one process; categorical
cross-entropy on one-hot labels, the same loss on every release) and checks whether
``loss="sparse_categorical_crossentropy"`` trains a segmentation model on the torch backend, for
one of the library's models and for a plain ``keras.Model`` of the same layers (Keras 3.14 and
later fail in backward there; the library's models route around it: ``GraphModel.compute_loss``).
Prints a Markdown table.

    python benchmarks/keras_versions.py /work/venvs/keras3.10.0 .venv-torch /work/venvs/keras3.14.1 ...

An environment per release::

    python3 -m venv /work/venvs/keras3.14.1
    /work/venvs/keras3.14.1/bin/pip install torch==2.13.0 keras==3.14.1 numpy pillow tifffile matplotlib
    /work/venvs/keras3.14.1/bin/pip install -e . --no-deps
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

# Trains a tiny segmentation model for one step with integer labels and sparse CE: the library's
# model (argv[1] == "ours") or a plain keras.Model of the same layers.
SPARSE_CE_CHECK = """
import sys, numpy as np, keras, universal_models as um
model, _, _ = um.get_model("testnet", 16, 16, 1, 3, base_filters=4)
if sys.argv[1] == "plain":
    model = keras.Model(model.inputs, model.outputs)
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
labels = np.random.default_rng(0).integers(0, 3, (2, 16, 16))
model.fit(np.zeros((2, 16, 16, 1), "float32"), labels, epochs=1, verbose=0)
print("ok", keras.__version__)
"""


def _python(venv: str) -> str:
    return os.path.join(venv, "bin", "python")


def sparse_ce_works(venv: str, model: str) -> str:
    """"works", or the last line of the error the environment's Keras raises (``model``: "ours" or "plain")."""
    environment = {**os.environ, "KERAS_BACKEND": "torch"}
    result = subprocess.run([_python(venv), "-c", SPARSE_CE_CHECK, model], env=environment, capture_output=True,
                            text=True, timeout=600)
    if result.returncode == 0:
        return "works"
    lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line.split(":")[0]]
    return "fails: " + (errors[-1] if errors else lines[-1])[:200]


def speed(venv: str, runs: int, extra: list[str]) -> list[dict]:
    environment = {**os.environ, "KERAS_BACKEND": "torch"}
    command = [_python(venv), os.path.join(ROOT, "benchmarks", "torch_reference.py"), "--json", "--runs", str(runs),
               "--loss", "categorical_crossentropy", "--steps", "1", *extra]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=7200)
    if result.returncode != 0:
        raise RuntimeError(f"{venv}: torch_reference.py failed:\n{result.stderr[-2000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def keras_version(venv: str) -> str:
    return subprocess.run([_python(venv), "-c", "import importlib.metadata as m; print(m.version('keras'))"],
                          capture_output=True, text=True, check=True).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("venvs", nargs="+", help="virtual environments, one Keras release each")
    parser.add_argument("--runs", type=int, default=3, help="interleaved runs per environment (median)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="go through all environments this many times (alternating, against drifting load)")
    parser.add_argument("--models", nargs="+", default=["unet16"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None, help="torch threads in each environment")
    args = parser.parse_args(argv)
    extra = ["--models", *args.models, "--batch", str(args.batch)]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    print(f"Load average before the run: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} cores.")
    results: dict[str, list[dict]] = {venv: [] for venv in args.venvs}
    for _ in range(args.rounds):
        for venv in args.venvs:
            results[venv] += speed(venv, args.runs, extra)
    rows = []
    for venv in args.venvs:
        sparse = f"ours: {sparse_ce_works(venv, 'ours')}; plain keras.Model: {sparse_ce_works(venv, 'plain')}"
        for key in args.models:
            mine = [r for r in results[venv] if r["model"] == key]
            train = ", ".join(f"{r['train_ratio']:.2f}" for r in mine)
            infer = ", ".join(f"{r['infer_ratio']:.2f}" for r in mine)
            rows.append([keras_version(venv), key, train, infer,
                         f"{sum(r['train_ours'] for r in mine) / len(mine):.1f}",
                         f"{sum(r['train_ref'] for r in mine) / len(mine):.1f}", sparse])
    print(common.markdown_table(["Keras", "model", "train ratio ours/torch (per round)", "infer ratio (per round)",
                                 "train img/s ours", "train img/s torch", "sparse CE on torch"], rows))


if __name__ == "__main__":
    main()
