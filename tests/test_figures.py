"""--compare figures: written atomically, decodable, landscape; no pixel comparisons."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from convfilter.errors import ConvFilterError
from convfilter.figures import check_figure_path, compare_figure, stage_settings, value_range, value_text
from convfilter.ops.spec import Conv2DSpec, PoolSpec

RNG = np.random.default_rng(11)


def test_single_filter_figure_is_a_landscape_png(tmp_path):
    image = RNG.uniform(0, 255, (40, 30))
    stage = Conv2DSpec(RNG.normal(size=(3, 3)), stride=(2, 1), name="random")
    out = RNG.normal(size=(19, 28))
    path = tmp_path / "fig.png"
    compare_figure(str(path), image, [stage], [out], mapping="rescale")
    with Image.open(path) as figure:
        figure.load()
        assert figure.format == "PNG"
        width, height = figure.size
    assert width > height >= 400
    assert sorted(os.listdir(tmp_path)) == ["fig.png"]


@pytest.mark.slow
def test_chain_figure_has_a_column_per_stage(tmp_path):
    image = RNG.uniform(0, 255, (10, 10))  # small: values are printed in the cells too
    stages = [
        Conv2DSpec(np.full((9, 9), 1 / 81), padding="same", name="blur"),
        PoolSpec("max", 2),
        PoolSpec("avg", 5),
    ]
    outputs = [RNG.normal(size=(10, 10)), RNG.normal(size=(5, 5)), RNG.normal(size=(1, 1))]
    two = tmp_path / "two.png"
    compare_figure(str(two), image, stages[:1], outputs[:1])
    four = tmp_path / "four.png"
    compare_figure(str(four), image, stages, outputs)
    with Image.open(two) as a, Image.open(four) as b:
        assert b.size[0] > b.size[1]
        assert b.size[0] > a.size[0]  # more stages, wider


@pytest.mark.parametrize("ext, magic", [(".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_vector_formats(tmp_path, ext, magic):
    path = tmp_path / f"fig{ext}"
    compare_figure(str(path), np.zeros((4, 4)), [Conv2DSpec(np.ones((11, 11)))], [np.zeros((1, 1))])
    assert path.read_bytes().startswith(magic)


def test_figure_path_checks(tmp_path):
    with pytest.raises(ConvFilterError) as info:
        check_figure_path(str(tmp_path / "fig.gif"))
    assert (
        str(info.value)
        == f"{tmp_path / 'fig.gif'}: unknown figure format ('.gif'); use one of .png, .pdf, .svg"
    )
    with pytest.raises(ConvFilterError) as info:
        check_figure_path(str(tmp_path / "fig"))
    assert (
        str(info.value)
        == f"{tmp_path / 'fig'}: unknown figure format (no extension); use one of .png, .pdf, .svg"
    )
    check_figure_path(str(tmp_path / "FIG.PNG"))


def test_caption_texts():
    assert value_text(1 / 9) == "0.111" and value_text(-0.0) == "0" and value_text(2.0) == "2"
    assert value_text(1e-5) == "1e-5"
    assert value_range(np.array([[-948.25, 3.0], [912.9, np.nan]])) == "-948 … 913"
    assert stage_settings(Conv2DSpec([[1.0]], stride=(2, 1), dilation=(1, 3), bias=0.5)) == (
        "stride 2×1 · padding 'valid' · dilation 1×3 · bias 0.5"
    )
    assert stage_settings(PoolSpec("max", 2, padding="same")) == "stride 2×2 · padding 'same'"


def test_mismatched_outputs_are_refused(tmp_path):
    with pytest.raises(ValueError) as info:
        compare_figure(str(tmp_path / "f.png"), np.zeros((4, 4)), [PoolSpec("max", 2)], [])
    assert str(info.value) == "compare_figure needs one output per stage, and at least one stage"
    assert not (tmp_path / "f.png").exists()


def test_big_kernels_of_small_weights_are_labelled_times_a_power_of_ten():
    from convfilter.figures import _label_factor

    # A 9x9 Gaussian, sigma 2, written out from its definition: weights 0.000763 .. 0.0417.
    axis = np.arange(9) - 4
    g = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / 8)
    g /= g.sum()
    assert round(g.min(), 6) == 0.000763 and round(g.max(), 4) == 0.0417
    assert _label_factor(g) == 1000
    assert _label_factor(np.full((3, 3), 1 / 9)) == 1  # small kernels always fit
    assert _label_factor(np.full((7, 7), 2.5)) == 1  # short labels need no factor
