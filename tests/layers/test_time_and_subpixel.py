"""FoldTime/UnfoldTime, DepthToSpace and the ICNR initializer."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tests.conftest import backend_name
from universal_models.layers import ICNR, DepthToSpace, FoldTime, UnfoldTime
from universal_models.layers.depth_to_space import subpixel_upsampling


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def test_fold_and_unfold_time_round_trip_with_unknown_time():
    inputs = keras.Input((None, 6, 5, 3))
    folded = FoldTime()(inputs)
    assert folded.shape == (None, 6, 5, 3)
    features = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer="ones", use_bias=False)(folded)
    outputs = UnfoldTime()([features, inputs])
    assert outputs.shape == (None, None, 6, 5, 4)
    model = keras.Model(inputs, outputs)
    for frames in (1, 4):
        sequences = np.random.default_rng(frames).random((2, frames, 6, 5, 3)).astype("float32")
        result = _numpy(model(sequences))
        assert result.shape == (2, frames, 6, 5, 4)
        # Each frame is convolved on its own, exactly as frame-by-frame application.
        single = _numpy(model.layers[2](sequences[1, frames - 1][None]))
        np.testing.assert_allclose(result[1, frames - 1], single[0], rtol=1e-5, atol=1e-5)


def test_fold_time_static_shapes_and_order():
    sequences = np.arange(2 * 3 * 1 * 1 * 1, dtype="float32").reshape(2, 3, 1, 1, 1)
    folded = _numpy(FoldTime()(sequences))
    np.testing.assert_array_equal(folded[:, 0, 0, 0], [0, 1, 2, 3, 4, 5])  # item b * time + t
    assert FoldTime().compute_output_shape((2, 3, 4, 4, 1)) == (6, 4, 4, 1)
    with pytest.raises(ValueError, match="at least 3 axes"):
        FoldTime()(np.zeros((2, 3), "float32"))


def _depth_to_space_reference(array, size):
    batch, height, width, depth = array.shape
    channels = depth // size**2
    output = np.zeros((batch, height * size, width * size, channels), array.dtype)
    for i in range(size):
        for j in range(size):
            output[:, i::size, j::size, :] = array[..., (i * size + j) * channels : (i * size + j + 1) * channels]
    return output


@pytest.mark.parametrize("size", [2, 3])
def test_depth_to_space_layout(size):
    array = np.random.default_rng(0).random((2, 3, 4, 2 * size**2)).astype("float32")
    np.testing.assert_array_equal(_numpy(DepthToSpace(size)(array)), _depth_to_space_reference(array, size))
    sequence = np.stack([array, array + 1], axis=1)  # 5-D sequences work too
    assert _numpy(DepthToSpace(size)(sequence)).shape == (2, 2, 3 * size, 4 * size, 2)


@pytest.mark.skipif(backend_name() != "tensorflow", reason="compares with tf.nn.depth_to_space")
def test_depth_to_space_matches_tensorflow():
    import tensorflow as tf

    array = np.random.default_rng(1).random((2, 5, 3, 12)).astype("float32")
    np.testing.assert_array_equal(_numpy(DepthToSpace(2)(array)), tf.nn.depth_to_space(array, 2).numpy())


def test_depth_to_space_errors():
    with pytest.raises(ValueError, match="block_size must be an integer >= 2"):
        DepthToSpace(1)
    with pytest.raises(ValueError, match="multiple of 4"):
        DepthToSpace(2)(np.zeros((1, 4, 4, 6), "float32"))


def test_icnr_repeats_one_kernel_for_every_subpixel():
    kernel = _numpy(ICNR(2)((3, 3, 5, 4 * 6)))
    for copy in range(4):
        np.testing.assert_array_equal(kernel[..., copy * 6 : (copy + 1) * 6], kernel[..., :6])
    assert np.std(kernel[..., :6]) > 0  # the base kernel is random (he_normal)
    with pytest.raises(ValueError, match="multiple of 4"):
        ICNR(2)((3, 3, 5, 6))


def _subpixel_model(kernel_initializer):
    inputs = keras.Input((8, 8, 3))
    tensor = keras.layers.Conv2D(4 * 5, 3, padding="same", kernel_initializer=kernel_initializer)(inputs)
    return keras.Model(inputs, DepthToSpace(2)(tensor))


def _max_subpixel_spread(output):
    """Largest difference between the 4 sub-pixels of any 2 x 2 block."""
    blocks = output.reshape(output.shape[0], output.shape[1] // 2, 2, output.shape[2] // 2, 2, -1)
    return float((blocks.max(axis=(2, 4)) - blocks.min(axis=(2, 4))).max())


def test_icnr_gives_no_checkerboard_at_initialisation():
    """Constant input: with ICNR every 2 x 2 block of the upsampled output is
    constant (no checkerboard); with a plain random init it is not."""
    constant = np.full((1, 8, 8, 3), 0.7, "float32")
    assert _max_subpixel_spread(_numpy(_subpixel_model(ICNR(2))(constant))) < 1e-6
    assert _max_subpixel_spread(_numpy(_subpixel_model("he_normal")(constant))) > 1e-2


def test_subpixel_block_and_saving(tmp_path):
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, subpixel_upsampling(inputs, 4, name="up"))
    assert model.output_shape == (None, 16, 16, 4)
    images = np.random.default_rng(2).random((2, 8, 8, 3)).astype("float32")
    path = tmp_path / "subpixel.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(_numpy(model(images)), _numpy(loaded(images)))
    restored = ICNR.from_config(ICNR(3, "glorot_uniform").get_config())
    assert restored.scale == 3 and isinstance(restored.initializer, keras.initializers.GlorotUniform)


def test_blur_removes_the_subpixel_grid_whatever_the_kernels_become():
    """A trained sub-pixel convolution need not keep ICNR's equal sub-pixel kernels; with
    different ones a constant input comes out as a 2 x 2 pattern. The blur that follows
    depth-to-space averages every pixel with its right and lower neighbours, so inside the
    image the pattern cancels (the 2 x 2 box filter has a zero at the grid frequency)."""
    constant = np.full((1, 8, 8, 3), 0.7, "float32")
    outputs = {}
    for blur in (False, True):
        inputs = keras.Input((8, 8, 3))
        model = keras.Model(inputs, subpixel_upsampling(inputs, 5, name="up", batch_norm=False, activation=None,
                                                        blur=blur))
        conv = model.get_layer("up_conv")
        kernel = np.random.default_rng(3).normal(size=conv.kernel.shape).astype("float32")  # 4 different kernels
        conv.kernel.assign(kernel)
        outputs[blur] = _numpy(model(constant))
    assert _max_subpixel_spread(outputs[False]) > 1e-2  # the grid
    interior = outputs[True][:, 2:-3, 2:-3]  # away from the edges (zero padding of the 3 x 3 convolution)
    assert float((interior.max(axis=(1, 2)) - interior.min(axis=(1, 2))).max()) < 1e-5  # constant per channel
    assert model.get_layer("up_blur").get_config()["pool_size"] == (2, 2)
