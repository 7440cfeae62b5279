"""--export: the saved .keras model loads with plain keras.saving.load_model and computes the output."""

from __future__ import annotations

import os

import numpy as np
import pytest
from reference import correlate

from convfilter.engine.model import keras_module
from convfilter.errors import ConvFilterError
from convfilter.export import check_model_path, export_stack
from convfilter.ops.spec import Conv2DSpec, PoolSpec

RNG = np.random.default_rng(3)
IMAGE = RNG.uniform(0, 255, (17, 22)).astype(np.float32)


def load(path):
    return keras_module().saving.load_model(path)


def predict(model, image):
    return np.asarray(model(image[np.newaxis, ..., np.newaxis]))[0, ..., 0]


@pytest.mark.parametrize(
    "stride, padding, dilation, bias",
    [((1, 1), "valid", (1, 1), 0.0), ((2, 1), "same", (1, 1), 2.5), ((1, 1), "same", (2, 3), 0.0)],
)
def test_loaded_model_holds_the_kernel_and_computes_the_output(tmp_path, stride, padding, dilation, bias):
    k = RNG.normal(size=(3, 4))
    path = tmp_path / "model.keras"
    export_stack(
        str(path), [Conv2DSpec(k, stride=stride, padding=padding, dilation=dilation, bias=bias)], IMAGE.shape
    )
    model = load(path)
    conv = model.get_layer("conv")
    weights = conv.get_weights()
    np.testing.assert_array_equal(weights[0][..., 0, 0], k.astype(np.float32))
    assert conv.strides == stride and conv.padding == padding and conv.dilation_rate == dilation
    if bias:
        assert weights[1].tolist() == [bias]
    else:
        assert not conv.use_bias
    expected = correlate(IMAGE, k, stride, padding, dilation, bias)
    np.testing.assert_allclose(predict(model, IMAGE), expected, rtol=1e-5, atol=1e-3)
    # Input shape left open: the model filters any size.
    other = RNG.uniform(0, 255, (9, 31)).astype(np.float32)
    np.testing.assert_allclose(
        predict(model, other), correlate(other, k, stride, padding, dilation, bias), rtol=1e-5, atol=1e-3
    )


def test_stride_with_dilation_exports_pad_conv_subsample(tmp_path):
    k = RNG.normal(size=(3, 3))
    path = tmp_path / "sd.keras"
    export_stack(str(path), [Conv2DSpec(k, stride=(2, 2), padding="same", dilation=(2, 2))], IMAGE.shape)
    model = load(path)
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "ZeroPadding2D",
        "Conv2D",
        "MaxPooling2D",
    ]
    assert model.input_shape == (None, 17, 22, 1)
    np.testing.assert_array_equal(model.get_layer("conv").get_weights()[0][..., 0, 0], k.astype(np.float32))
    np.testing.assert_allclose(
        predict(model, IMAGE), correlate(IMAGE, k, (2, 2), "same", (2, 2)), rtol=1e-5, atol=1e-3
    )


def test_chain_model_exports_every_stage(tmp_path):
    k = RNG.normal(size=(2, 2))
    path = tmp_path / "chain.keras"
    export_stack(str(path), [Conv2DSpec(k, name="random"), PoolSpec("max", 2)], IMAGE.shape)
    model = load(path)
    assert [layer.name for layer in model.layers] == ["image", "stage1_random", "stage2_max_pool"]
    conv = correlate(IMAGE, k)
    h, w = conv.shape[0] // 2, conv.shape[1] // 2
    expected = conv[: 2 * h, : 2 * w].reshape(h, 2, w, 2).max(axis=(1, 3))
    np.testing.assert_allclose(predict(model, IMAGE), expected, rtol=1e-5, atol=1e-3)


def test_export_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"old")
    export_stack(str(path), [Conv2DSpec([[1.0]])], (4, 4))
    assert path.read_bytes()[:2] == b"PK"  # a .keras file is a zip archive
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]


def test_model_path_must_be_keras_and_writable(tmp_path):
    with pytest.raises(ConvFilterError) as info:
        check_model_path(str(tmp_path / "model.h5"))
    assert (
        str(info.value)
        == f"{tmp_path / 'model.h5'}: a model is saved in Keras's native format; use .keras, not '.h5'"
    )
    with pytest.raises(ConvFilterError) as info:
        check_model_path(str(tmp_path / "missing" / "m.keras"))
    assert (
        str(info.value)
        == f"{tmp_path / 'missing' / 'm.keras'}: directory {tmp_path / 'missing'} does not exist"
    )
