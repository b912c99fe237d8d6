"""``benchmarks/gpu.py`` in its smoke mode (tiny models and images; any device): every variant runs and
reports sane figures. The figures themselves are measured on a GPU only."""

from __future__ import annotations

import math

import keras
import pytest


def _gpu_benchmark():
    from benchmarks import gpu

    return gpu


@pytest.mark.skipif(keras.config.backend() != "torch", reason="the interleaved comparison runs on torch")
def test_gpu_benchmark_smoke_runs_every_torch_variant(capsys):
    rows = _gpu_benchmark().main(["--smoke", "--models", "unet16", "--jax-models"])
    variants = {(row["variant"], row["precision"]) for row in rows}
    assert variants == {(variant, precision) for precision in ("float32", "bfloat16")
                        for variant in ("ours", "keras_runner", "pytorch_nchw", "pytorch_channels_last")}
    for row in rows:
        for task in ("train", "infer"):
            assert row[f"{task}_images_per_s"] > 0 and row[f"{task}_tflops"] > 0, row
    output = capsys.readouterr().out
    assert "| unet16 | torch ours | float32 |" in output and "GFLOP per image forward" in output


@pytest.mark.skipif(keras.config.backend() != "jax", reason="the JAX rows come from a JAX process")
def test_gpu_benchmark_jax_worker_smoke():
    gpu = _gpu_benchmark()
    rows = gpu.jax_worker(gpu.parse_arguments(["--smoke", "--jax-models", "testnet", "--precisions", "float32"]))
    assert [(row["backend"], row["model"], row["precision"]) for row in rows] == [("jax", "testnet", "float32")]
    assert rows[0]["train_images_per_s"] > 0 and rows[0]["infer_images_per_s"] > 0
    assert math.isnan(rows[0]["train_peak_gib"]) or rows[0]["train_peak_gib"] > 0
