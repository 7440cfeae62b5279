"""Stacks of stages in one Keras model (what `chain` runs): equal to running the stages one by one."""

from __future__ import annotations

import numpy as np
import pytest
from reference import correlate
from reference_pool import pool

from convfilter.engine.conv import filter_array
from convfilter.engine.stack import build_stack
from convfilter.engine.stack import run_stack as run_chain
from convfilter.errors import ImageTooSmallError
from convfilter.ops.kernels import KERNELS
from convfilter.ops.spec import ChainSpec, Conv2DSpec, PoolSpec


def run_stack(image, stages):
    """Every stage's output for one 2-D image, the chain checked first as the runner checks it."""
    chain = ChainSpec(tuple(stages))
    chain.shapes(image.shape)
    return [values[0] for values in run_chain(np.asarray(image)[np.newaxis], chain)]


def stack_shapes(stages, shape):
    return ChainSpec(tuple(stages)).shapes(shape)


def stack_is_averaging(stages):
    return ChainSpec(tuple(stages)).averaging


RNG = np.random.default_rng(7)
IMAGE = RNG.uniform(0, 255, (23, 29))


def sobel_x():
    return KERNELS["sobel-x"].build()


@pytest.mark.parametrize(
    "kind, size, stride, padding",
    [
        ("max", 2, None, "valid"),
        ("avg", 2, None, "valid"),
        ("max", 3, (2, 1), "same"),
        ("avg", 3, None, "same"),
    ],
)
def test_pool_stage_matches_numpy_reference(kind, size, stride, padding):
    (out,) = run_stack(IMAGE, [PoolSpec(kind, size, stride=stride, padding=padding)])
    np.testing.assert_allclose(out, pool(IMAGE, kind, size, stride, padding), rtol=1e-6, atol=1e-4)


def test_pool_stride_defaults_to_pool_size_as_in_keras():
    assert PoolSpec("max", 3).stride == (3, 3)
    (out,) = run_stack(IMAGE, [PoolSpec("max", 3)])
    assert out.shape == (23 // 3, 29 // 3)


def test_chain_equals_stage_by_stage_with_float_intermediates():
    gaussian = KERNELS["gaussian"].grid(size=5, sigma=1.0)
    stages = [
        Conv2DSpec(gaussian, name="gaussian"),
        Conv2DSpec(sobel_x(), padding="same", name="sobel-x"),
        PoolSpec("max", 2),
    ]
    outputs = run_stack(IMAGE, stages)
    # One by one, float all the way: filter_array (the library's single-layer path) and NumPy pooling.
    first = filter_array(IMAGE, gaussian)
    second = filter_array(first, sobel_x(), padding="same")
    third = pool(second, "max", 2)
    for got, expected in zip(outputs, [first, second, third], strict=True):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)
    # ... and against the fully independent NumPy references.
    reference = pool(correlate(correlate(IMAGE, gaussian), sobel_x(), padding="same"), "max", 2)
    np.testing.assert_allclose(outputs[-1], reference, rtol=1e-5, atol=1e-2)


def test_intermediate_values_are_not_rounded_or_clipped():
    # Sobel on a ramp gives negatives and values above 255; a second stage must see them unchanged.
    ramp = np.tile(np.arange(12.0) * 40, (9, 1))
    outputs = run_stack(ramp, [Conv2DSpec(sobel_x()), Conv2DSpec(np.array([[-0.5]]))])
    np.testing.assert_allclose(outputs[0], correlate(ramp, sobel_x()))
    assert outputs[0].max() > 255
    np.testing.assert_allclose(outputs[1], -0.5 * correlate(ramp, sobel_x()))


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_stride_with_dilation_stage_matches_reference(padding):
    k = RNG.normal(size=(3, 2))
    stage = Conv2DSpec(k, stride=(2, 3), dilation=(2, 2), padding=padding, bias=1.5)
    (out,) = run_stack(IMAGE, [stage])
    np.testing.assert_allclose(out, correlate(IMAGE, k, (2, 3), padding, (2, 2), 1.5), rtol=1e-5, atol=1e-3)


def test_stack_shapes_name_the_stage_that_does_not_fit():
    stages = [
        Conv2DSpec(np.ones((5, 5)), name="blur"),
        PoolSpec("max", 4),
        Conv2DSpec(np.ones((3, 3)), name="edge"),
    ]
    assert stack_shapes(stages[:2], (12, 12)) == [(8, 8), (2, 2)]
    with pytest.raises(ImageTooSmallError) as info:
        stack_shapes(stages, (12, 12))
    assert str(info.value) == (
        "stage 3 (edge): image is 2x2 but the 3x3 kernel needs at least 3x3 pixels under 'valid' padding"
    )
    with pytest.raises(ImageTooSmallError) as info:
        stack_shapes([PoolSpec("avg", 3)], (2, 7))
    assert str(info.value) == (
        "stage 1 (avg pool): image is 2x7 but the 3x3 pool needs at least 3x3 pixels under 'valid' padding"
    )


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda: PoolSpec("min", 2),
            "The `kind` argument must be one of 'max', 'avg'. Received: kind='min'",
        ),
        (lambda: PoolSpec("max", 0), "pool size must be an integer between 1 and 101, got 0"),
        (
            lambda: PoolSpec("max", 2, padding="full"),
            "The `padding` argument must be one of 'valid', 'same'. Received: padding='full'",
        ),
        (lambda: Conv2DSpec([[1.0, np.nan]]), "kernel values must be finite (no NaN or infinity)"),
        (lambda: Conv2DSpec([[1.0]], bias=float("inf")), "bias must be a finite number, got inf"),
    ],
)
def test_bad_stage_arguments(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message


def test_averaging_stacks_keep_the_range():
    blur = Conv2DSpec(np.full((3, 3), 1 / 9))
    assert stack_is_averaging([blur, PoolSpec("avg", 2), PoolSpec("max", 2)])
    assert not stack_is_averaging([blur, Conv2DSpec(sobel_x())])
    assert not stack_is_averaging([Conv2DSpec(np.full((3, 3), 1 / 9), bias=2.0)])


def test_model_layers_are_standard_keras_layers():
    stages = [
        Conv2DSpec(sobel_x(), name="sobel-x"),
        PoolSpec("avg", 2),
        Conv2DSpec(np.ones((2, 2)), stride=2, dilation=2),
    ]
    model, _ = build_stack(stages, IMAGE.shape)
    names = [layer.name for layer in model.layers]
    assert names == ["image", "stage1_sobel_x", "stage2_avg_pool", "stage3_conv", "stage3_conv_subsample"]
    np.testing.assert_array_equal(model.get_layer("stage1_sobel_x").get_weights()[0][..., 0, 0], sobel_x())
