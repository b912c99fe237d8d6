"""Next-frame prediction on Moving MNIST: 10 frames in, 10 frames out.

Trains recurrent models of universal_models for a fixed wall-clock budget on
Moving MNIST sequences made from the first 8,000 digits of the MNIST test set
(fresh sequences every step, fixed seeds), then predicts 10 future frames
autoregressively (:func:`universal_models.rollout`) for test sequences made from
the last 2,000 digits, and reports per-frame MSE (squared error summed over the
64 x 64 pixels, averaged over frames and sequences: the PredRNN/SimVP
convention) and SSIM (Wang et al. 2004) next to three trivial baselines.

    nice -n 10 python benchmarks/next_frame.py train --minutes 18
    python benchmarks/next_frame.py timing        # folded time axis vs keras TimeDistributed
    python benchmarks/next_frame.py check-ssim    # on the TensorFlow backend: ours vs tf.image.ssim

Results (table rows and sample images) go to ``benchmarks/results/next_frame``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import keras  # noqa: E402

import universal_models as um  # noqa: E402  (chooses the backend)
from universal_models.data import load_mnist, moving_mnist  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "next_frame"
CONTEXT, FUTURE = 10, 10


# -- metrics -------------------------------------------------------------------------
def frame_mse(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Squared error summed over each frame's pixels, averaged over frames and sequences."""
    error = (prediction.astype(np.float64) - truth.astype(np.float64)) ** 2
    return float(error.reshape(error.shape[0] * error.shape[1], -1).sum(axis=1).mean())


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    offsets = np.arange(size) - (size - 1) / 2
    window = np.exp(-(offsets**2) / (2 * sigma**2))
    return window / window.sum()


def _filter_valid(images: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of ``(n, h, w)`` images with a 1-D window."""
    size = len(window)
    rows = sum(window[k] * images[:, k : images.shape[1] - size + 1 + k, :] for k in range(size))
    return sum(window[k] * rows[:, :, k : rows.shape[2] - size + 1 + k] for k in range(size))


def ssim(prediction: np.ndarray, truth: np.ndarray, data_range: float = 1.0) -> np.ndarray:
    """Structural similarity per image (Wang, Bovik, Sheikh and Simoncelli 2004).

    11 x 11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, statistics
    over 'valid' windows only (the conventions of the paper's code and of
    ``tf.image.ssim``). Takes ``(..., h, w)`` or ``(..., h, w, 1)`` arrays and
    returns the SSIM of each image, shape ``(...)``.
    """
    if prediction.shape[-1] == 1:
        prediction, truth = prediction[..., 0], truth[..., 0]
    leading = prediction.shape[:-2]
    x = prediction.reshape(-1, *prediction.shape[-2:]).astype(np.float64)
    y = truth.reshape(-1, *truth.shape[-2:]).astype(np.float64)
    window = _gaussian_window()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mean_x, mean_y = _filter_valid(x, window), _filter_valid(y, window)
    var_x = _filter_valid(x * x, window) - mean_x**2
    var_y = _filter_valid(y * y, window) - mean_y**2
    covariance = _filter_valid(x * y, window) - mean_x * mean_y
    numerator = (2 * mean_x * mean_y + c1) * (2 * covariance + c2)
    denominator = (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    return (numerator / denominator).mean(axis=(1, 2)).reshape(leading)


def grid_peak(frames: np.ndarray, periods=(2, 4, 8)) -> float | None:
    """How much a periodic grid stands out in the frames' spectrum (1: not at all).

    Sub-pixel (depth-to-space) and transposed-convolution upsampling by 2, 4 or
    8 can leave a pattern of that period, which puts power at the frequencies
    ``(a * h / p, b * w / p)``. For each such frequency (DC excluded), the
    power spectrum averaged over all frames is divided by the mean of its 8
    neighbours; returned is the largest ratio. Natural images and blurred
    predictions have smooth spectra (about 1; true Moving MNIST frames 0.8-1.3),
    a checkerboard gives a peak. ``None`` for all-zero frames.
    """
    frames = frames[..., 0] if frames.shape[-1] == 1 else frames
    frames = frames.reshape(-1, *frames.shape[-2:]).astype(np.float64)
    centred = frames - frames.mean(axis=(1, 2), keepdims=True)
    spectrum = (np.abs(np.fft.fft2(centred)) ** 2).mean(axis=0)
    if not spectrum.any():
        return None
    height, width = spectrum.shape
    ratios = []
    for period in periods:
        for a in range(period):
            for b in range(period):
                if a == b == 0:
                    continue
                y, x = a * height // period, b * width // period
                neighbours = [spectrum[(y + dy) % height, (x + dx) % width]
                              for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
                ratios.append(spectrum[y, x] / max(np.mean(neighbours), 1e-30))
    return float(max(ratios))


def scores(prediction: np.ndarray, truth: np.ndarray) -> dict:
    return {
        "mse": frame_mse(prediction, truth),
        "ssim": float(ssim(prediction, truth).mean()),
        "mse_per_frame": [frame_mse(prediction[:, [t]], truth[:, [t]]) for t in range(truth.shape[1])],
        "grid_peak": grid_peak(prediction),
    }


# -- data ----------------------------------------------------------------------------
def load_splits(mnist_folder: Path, n_test: int, seed: int):
    digits = load_mnist(mnist_folder)[0]
    train_digits, test_digits = digits[:8000], digits[8000:]
    test = moving_mnist(test_digits, n_test, CONTEXT + FUTURE, seed=seed + 1_000_000)
    return train_digits, test


def baselines(test: np.ndarray) -> dict:
    context, truth = test[:, :CONTEXT], test[:, CONTEXT:]
    return {
        "true frames": scores(truth, truth),
        "all-zeros frame": scores(np.zeros_like(truth), truth),
        "mean of context frames": scores(np.repeat(context.mean(axis=1, keepdims=True), FUTURE, axis=1), truth),
        "copy last frame": scores(np.repeat(context[:, -1:], FUTURE, axis=1), truth),
    }


# -- training --------------------------------------------------------------------------
MODEL_OPTIONS = {
    "lstm_next_frame": {"base_filters": 16, "depth": 3},
    "lstm_unet": {"base_filters": 8, "depth": 3},
}


def train(name: str, train_digits: np.ndarray, *, minutes: float, batch_size: int, learning_rate: float,
          window: int, seed: int, log, wall_limit_minutes: float | None = None,
          feedback: float = 0.0) -> tuple[keras.Model, dict]:
    """Next-frame training for ``minutes`` of CPU time of this process.

    The budget is CPU time (``time.process_time``, all threads), not wall time,
    so that it means the same on a shared, busy machine; ``wall_limit_minutes``
    (if given) stops training earlier when that much wall time has passed.

    Fresh sequences of ``window`` frames every step (the bouncing motion is
    stationary, so short windows are samples of the same process), input frames
    ``0 .. window - 2``, targets ``1 .. window - 1``; binary
    cross-entropy on the sigmoid output; Adam, learning rate divided by 10 for
    the last fifth of the budget.

    ``feedback > 0`` adds scheduled sampling (Bengio et al. 2015) with whole
    rollouts: for a share of the batches that grows linearly from 0 to
    ``feedback`` over the first half of the budget, the input frames after
    the first ``CONTEXT`` are replaced by the model's own rollout from those
    context frames (:func:`universal_models.rollout` on a stateful twin with
    the current weights), so that the model learns to continue from its own,
    imperfect predictions, as it must at test time. The targets stay the true
    frames; no gradient flows through the fed-back frames.
    """
    keras.utils.set_random_seed(seed)
    model, _, _ = um.get_model(name, 64, 64, 1, 1, **MODEL_OPTIONS[name])
    optimizer = keras.optimizers.Adam(learning_rate)
    model.compile(optimizer=optimizer, loss="binary_crossentropy")
    budget, start, wall_start, step, losses = minutes * 60.0, time.process_time(), time.perf_counter(), 0, []
    lowered = False
    wall_limit = float("inf") if wall_limit_minutes is None else wall_limit_minutes * 60.0
    fed_back = feedback > 0 and window > CONTEXT + 1
    streamer = um.to_stateful(model, batchsize=batch_size, timesteps=None) if fed_back else None
    rng, fed_back_steps = np.random.default_rng(seed), 0
    while (elapsed := time.process_time() - start) < budget and time.perf_counter() - wall_start < wall_limit:
        if not lowered and elapsed > 0.8 * budget:
            optimizer.learning_rate.assign(learning_rate / 10)
            lowered = True
        sequences = moving_mnist(train_digits, batch_size, window, seed=seed * 10_000_000 + step)
        inputs = sequences[:, :-1]
        if fed_back and rng.random() < feedback * min(1.0, elapsed / (0.5 * budget)):
            streamer.set_weights(model.get_weights())
            future = um.rollout(streamer, sequences[:, :CONTEXT], window - 1 - CONTEXT)
            inputs = np.concatenate([sequences[:, :CONTEXT], future], axis=1)
            fed_back_steps += 1
        loss = model.train_on_batch(inputs, sequences[:, 1:])
        losses.append(float(np.asarray(loss)))
        step += 1
        if step % 10 == 0:
            log(f"{name} step {step} {elapsed / 60:.1f} CPU min loss {np.mean(losses[-10:]):.4f}")
    info = {
        "steps": step,
        "sequences_seen": step * batch_size,
        "cpu_minutes": (time.process_time() - start) / 60,
        "wall_minutes": (time.perf_counter() - wall_start) / 60,
        "final_loss": float(np.mean(losses[-10:])),
        "parameters": model.count_params(),
        "options": MODEL_OPTIONS[name],
        "window": window,
        "feedback": feedback,
        "fed_back_steps": fed_back_steps,
    }
    return model, info


def predict_future(model: keras.Model, test: np.ndarray, batch_size: int) -> np.ndarray:
    parts = [um.rollout(model, test[i : i + batch_size, :CONTEXT], FUTURE) for i in range(0, len(test), batch_size)]
    return np.concatenate(parts)


def save_samples(path: Path, test: np.ndarray, prediction: np.ndarray, n_sequences: int = 3) -> None:
    """PNG: for each sequence three rows, context | truth | prediction (white separators)."""
    from PIL import Image

    size, gap = test.shape[2], 2
    rows = []
    for index in range(n_sequences):
        context = test[index, :CONTEXT, ..., 0]
        truth = test[index, CONTEXT:, ..., 0]
        predicted = prediction[index, ..., 0]
        for frames in (context, truth, predicted):
            row = np.ones((size, FUTURE * (size + gap) - gap))
            for t, frame in enumerate(frames):
                row[:, t * (size + gap) : t * (size + gap) + size] = frame
            rows.append(row)
        rows.append(np.ones((3 * gap, rows[-1].shape[1])) * 0.5)
    image = np.concatenate(rows[:-1])
    Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, keras {keras.__version__}, backend {keras.config.backend()}"


def command_train(arguments) -> None:
    results_folder = arguments.results
    results_folder.mkdir(parents=True, exist_ok=True)
    log_path = results_folder / "train.log"

    def log(message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        print(line, flush=True)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    train_digits, test = load_splits(arguments.mnist, arguments.test_sequences, arguments.seed)
    log(f"machine: {machine()}; load {os.getloadavg()}")
    results = {"machine": machine(), "budget_minutes": arguments.minutes, "batch_size": arguments.batch_size,
               "test_sequences": len(test), "rows": {}}
    for name, row in baselines(test).items():
        results["rows"][name] = row
        log(f"{name}: MSE {row['mse']:.1f} SSIM {row['ssim']:.3f}")
    for name in arguments.models:
        model, info = train(name, train_digits, minutes=arguments.minutes, batch_size=arguments.batch_size,
                            learning_rate=arguments.learning_rate, window=arguments.window, seed=arguments.seed,
                            log=log, wall_limit_minutes=arguments.wall_limit_minutes, feedback=arguments.feedback)
        label = f"{name}_no_blur" if arguments.no_blur and name == "lstm_next_frame" else name
        model.save(results_folder / f"{label}.keras")
        prediction = predict_future(model, test, 50)
        row = {**scores(prediction, test[:, CONTEXT:]), **info}
        results["rows"][label] = row
        save_samples(results_folder / f"{label}_rollout.png", test, prediction)
        log(f"{label}: MSE {row['mse']:.1f} SSIM {row['ssim']:.3f} after {info['steps']} steps")
        with open(results_folder / f"training_{label}.json", "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    print(markdown(results))


TRAINING_FIELDS = ("steps", "sequences_seen", "cpu_minutes", "wall_minutes", "final_loss", "parameters", "options",
                   "window", "feedback", "fed_back_steps")


def command_score(arguments) -> None:
    """Score saved models (``LABEL=PATH``) on the test sequences, next to the baselines, with the
    training record of each label taken from the ``--merge`` JSON files of their training runs."""
    results_folder = arguments.results
    results_folder.mkdir(parents=True, exist_ok=True)
    _, test = load_splits(arguments.mnist, arguments.test_sequences, arguments.seed)
    training, batch_size = {}, arguments.batch_size
    for path in arguments.merge:
        earlier = json.loads(Path(path).read_text(encoding="utf-8"))
        batch_size = earlier.get("batch_size", batch_size)
        training.update({name: row for name, row in earlier["rows"].items() if "steps" in row})
    results = {"machine": machine(), "batch_size": batch_size, "test_sequences": len(test),
               "rows": dict(baselines(test))}
    for item in arguments.model_files:
        label, _, path = item.partition("=")
        model = um.load_model(path)
        prediction = predict_future(model, test, 50)
        record = training.get(label, {})
        results["rows"][label] = {**{key: record[key] for key in TRAINING_FIELDS if key in record},
                                  **scores(prediction, test[:, CONTEXT:])}
        save_samples(results_folder / f"{label}_rollout.png", test, prediction)
    (results_folder / "results.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    table = markdown(results)
    (results_folder / "results.md").write_text(table + "\n", encoding="utf-8")
    print(table)


def markdown(results: dict) -> str:
    lines = ["| prediction | MSE per frame | SSIM | grid peak | training |", "| --- | ---: | ---: | ---: | --- |"]
    for name, row in results["rows"].items():
        training = "-"
        if "steps" in row:
            training = (f"{row['steps']} steps x {results['batch_size']} sequences, {row['cpu_minutes']:.0f} CPU min, "
                        f"{row['parameters'] / 1e6:.2f} M parameters")
        peak = "-" if row.get("grid_peak") is None else f"{row['grid_peak']:.2f}"
        lines.append(f"| {name} | {row['mse']:.1f} | {row['ssim']:.3f} | {peak} | {training} |")
    return "\n".join(lines)


# -- folded time axis vs keras.layers.TimeDistributed -----------------------------------------
def command_timing(arguments) -> None:
    """Median time of a train step and of inference: a Conv-BN-ReLU x 3 encoder on
    (batch, time, 64, 64, 1) sequences, as FoldTime/UnfoldTime vs TimeDistributed."""
    from keras import layers

    from universal_models.layers import FoldTime, UnfoldTime

    batch, frames, size = arguments.batch_size, 20, 64
    data = np.random.default_rng(0).random((batch, frames, size, size, 1)).astype("float32")

    def build(folded: bool) -> keras.Model:
        inputs = keras.Input((frames, size, size, 1))
        tensor = FoldTime()(inputs) if folded else inputs
        for filters in (16, 32, 32):
            for layer in (layers.Conv2D(filters, 3, padding="same", use_bias=False),
                          layers.BatchNormalization(), layers.Activation("relu")):
                tensor = layer(tensor) if folded else layers.TimeDistributed(layer)(tensor)
        if folded:
            tensor = UnfoldTime()([tensor, inputs])
        model = keras.Model(inputs, tensor)
        model.compile(optimizer="adam", loss="mse")
        return model

    models = {"FoldTime": build(True), "TimeDistributed": build(False)}
    assert models["FoldTime"].count_params() == models["TimeDistributed"].count_params()
    targets = np.zeros((batch, frames, size, size, 32), "float32")
    runners = {}
    for name, model in models.items():
        runners[f"{name} train step"] = lambda model=model: model.train_on_batch(data, targets)
        runners[f"{name} inference"] = lambda model=model: model.predict_on_batch(data)
    for function in runners.values():
        function()
    times = {name: [] for name in runners}
    for round_index in range(arguments.runs):
        order = list(runners)
        order = order[round_index % len(order):] + order[: round_index % len(order)]
        for name in order:
            start = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"{machine()}; load {os.getloadavg()}; batch {batch} x {frames} frames of {size}x{size}, "
          f"median of {arguments.runs}")
    for name, value in medians.items():
        print(f"{name}: {value * 1000:.0f} ms")
    for kind in ("train step", "inference"):
        ratio = medians[f"TimeDistributed {kind}"] / medians[f"FoldTime {kind}"]
        print(f"{kind}: TimeDistributed / FoldTime = {ratio:.2f}")


def command_check_ssim(arguments) -> None:
    """Compare :func:`ssim` with ``tf.image.ssim`` (needs TensorFlow) and SSIM(x, x) = 1."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    clean = moving_mnist(load_mnist(arguments.mnist)[0][:100], 4, 2, seed=0)[:, 0]
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1).astype("float32")
    ours = ssim(noisy, clean)
    reference = tf.image.ssim(tf.constant(noisy), tf.constant(clean), max_val=1.0).numpy()
    print("ours          ", np.round(ours, 6))
    print("tf.image.ssim ", np.round(reference, 6))
    print("max difference", float(np.abs(ours - reference).max()), "; SSIM(x, x) =", ssim(clean, clean))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "score", "timing", "check-ssim"])
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the table, models and images")
    parser.add_argument("--models", nargs="+", default=["lstm_next_frame", "lstm_unet"])
    parser.add_argument("--minutes", type=float, default=15.0, help="training budget per model, CPU minutes")
    parser.add_argument("--wall-limit-minutes", type=float, default=None,
                        help="also stop training after this much wall time (busy machines)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--window", type=int, default=CONTEXT + FUTURE, help="frames per training sequence")
    parser.add_argument("--feedback", type=float, default=0.0,
                        help="scheduled sampling: largest share of batches trained on the model's own rollout")
    parser.add_argument("--test-sequences", type=int, default=1000)
    parser.add_argument("--no-blur", action="store_true",
                        help="lstm_next_frame without the blur after depth-to-space (saved as lstm_next_frame_no_blur)")
    parser.add_argument("--model-files", nargs="+", default=[], metavar="LABEL=PATH", help="score: saved models")
    parser.add_argument("--merge", nargs="+", default=[], help="score: training-run JSON files (steps, CPU time)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=5, help="timing rounds")
    arguments = parser.parse_args(argv)
    if arguments.no_blur:
        MODEL_OPTIONS["lstm_next_frame"] = {**MODEL_OPTIONS["lstm_next_frame"], "subpixel_blur": False}
    commands = {"train": command_train, "score": command_score, "timing": command_timing,
                "check-ssim": command_check_ssim}
    commands[arguments.command](arguments)


if __name__ == "__main__":
    main()
