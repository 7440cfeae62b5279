"""``--compare FIGURE``: one picture with the input, each kernel as an annotated heat map, and the outputs.

Drawn with matplotlib's object API (``matplotlib.figure.Figure``, rendered by
Agg), so no display and no global pyplot state are involved; matplotlib is
imported only when a figure is drawn. A single filter gives one landscape
row: input | kernel | output. A chain gives two rows: the input and every
stage's output on top, the stage's kernel (or pooling window) under its
output. Every panel is titled with its shape; the caption gives stride,
padding, dilation and the range of the raw values before they were mapped
to pixels.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.io.atomic import atomic_file
from convfilter.io.images import check_writable
from convfilter.ops.geometry import padding_text

FIGURE_EXTENSIONS = (".png", ".pdf", ".svg")
ANNOTATE_KERNEL_UP_TO = 9
"""Kernels up to this many rows and columns get their values printed in the cells."""
ANNOTATE_IMAGE_UP_TO = 12
"""Inputs and outputs this small (small matrices) get their values printed too."""
DPI = 100


def check_figure_path(path: str) -> None:
    """Raise :class:`ConvFilterError` unless ``path`` is a ``.png``/``.pdf``/``.svg`` that can be written."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FIGURE_EXTENSIONS:
        shown = repr(ext) if ext else "no extension"
        raise ConvFilterError(
            f"{path}: unknown figure format ({shown}); use one of {', '.join(FIGURE_EXTENSIONS)}"
        )
    check_writable(path)


def shape_text(shape: Sequence[int]) -> str:
    """``'255×510'`` for a ``(255, 510)`` shape."""
    return "×".join(str(int(n)) for n in shape)


def value_text(value: float) -> str:
    """A weight or pixel value in at most 4 significant digits, ``0`` for zero (no ``-0``)."""
    if value == 0:
        return "0"
    text = f"{value:.3g}"
    return text.replace("e-0", "e-").replace("e+0", "e")


def stage_settings(stage: Any) -> str:
    """``"stride 2×1 · padding 'valid' · dilation 1×1"`` (pools: no dilation) plus a non-zero bias."""
    parts = [f"stride {shape_text(stage.stride)}", f"padding {padding_text(stage.padding)}"]
    if stage.params:  # a layer with weights (a pooling window has none, nor dilation or bias)
        parts.append(f"dilation {shape_text(stage.dilation)}")
        if stage.bias:
            parts.append(f"bias {value_text(stage.bias)}")
    if stage.transpose:
        parts.append("transposed")
    return " · ".join(parts)


def weight_mosaic(weights: np.ndarray) -> np.ndarray:
    """2-D weights as they are; ``(kh, kw, C, N)`` weights as one grid, a row of kernels per channel and a
    column per filter, with a blank (NaN) line between them."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 2:
        return weights
    kh, kw, channels, filters = weights.shape
    grid = np.full((channels * (kh + 1) - 1, filters * (kw + 1) - 1), np.nan)
    for c in range(channels):
        for f in range(filters):
            grid[c * (kh + 1) : c * (kh + 1) + kh, f * (kw + 1) : f * (kw + 1) + kw] = weights[:, :, c, f]
    return grid


def value_range(values: np.ndarray) -> str:
    """``'-12.5 … 240'``: the finite minimum and maximum of ``values``."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return "no finite values"
    return f"{value_text(finite.min())} … {value_text(finite.max())}"


def compare_figure(
    path: str,
    image: np.ndarray,
    stages: Sequence[Any],
    outputs: Sequence[np.ndarray],
    *,
    input_max: float | None = 255.0,
    mapping: str | None = None,
    title: str | None = None,
    input_note: str = "",
    replace: bool = True,
) -> None:
    """Draw the comparison figure for ``image`` run through ``stages`` and write it to ``path`` atomically
    (with ``replace=False`` never over a file that appeared meanwhile).

    ``stages`` are :class:`~convfilter.ops.spec.Conv2DSpec` / ``PoolSpec`` values
    and ``outputs`` their raw float results, in order. ``input_max`` is the
    top of the input's pixel scale (255 for 8-bit images; ``None``: the
    input's own min..max, for matrices); ``mapping`` names
    the ``--range`` mode used to write the output, for the caption;
    ``input_note`` is added to the input's title (``channel 1 of 3``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(stages) != len(outputs) or not stages:
        raise ArgumentError("compare_figure needs one output per stage, and at least one stage")
    pending: list = []  # cells to annotate once the layout is known
    limits = (None, None) if input_max is None else (0, input_max)
    if len(stages) == 1:
        fig = Figure(figsize=(13.5, 5.4), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        fig.get_layout_engine().set(wspace=0.1)
        axes = fig.subplots(1, 3, width_ratios=[1, 0.8, 1])
        _image_panel(fig, axes[0], image, f"Input {shape_text(image.shape)}{input_note}", pending, *limits)
        _stage_panel(fig, axes[1], stages[0], None, pending)
        _image_panel(fig, axes[2], outputs[0], f"Output {shape_text(outputs[0].shape)}", pending)
        raw = "raw values" if mapping == "raw" else "raw values before mapping"
        caption = f"{stage_settings(stages[0])} · {raw} {value_range(outputs[0])}"
    else:
        columns = len(stages) + 1
        fig = Figure(figsize=(min(3.8 * columns, 22), 8), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        fig.get_layout_engine().set(wspace=0.12, hspace=0.08)
        axes = fig.subplots(2, columns, height_ratios=[1.25, 1])
        _image_panel(
            fig,
            axes[0, 0],
            image,
            f"Input {shape_text(image.shape)}{input_note}",
            pending,
            vmin=0,
            vmax=input_max,
        )
        axes[1, 0].set_axis_off()
        axes[1, 0].text(
            0.5,
            0.5,
            "each stage's layer\nis shown under\nits output",
            ha="center",
            va="center",
            fontsize=11,
            color="0.35",
            transform=axes[1, 0].transAxes,
        )
        ranges = []
        for number, (stage, values) in enumerate(zip(stages, outputs, strict=True), start=1):
            heading = f"{number}: {stage.label} → {shape_text(values.shape)}"
            _image_panel(fig, axes[0, number], values, heading, pending)
            _stage_panel(fig, axes[1, number], stage, number, pending)
            ranges.append(f"{number}: {value_range(values)}")
        caption = ("raw values: " if mapping == "raw" else "raw values before mapping: ") + "; ".join(ranges)
    if mapping == "raw":
        caption += " · written as raw float32 values"
    elif mapping:
        caption += f" · mapped to pixels by {mapping}"
    fig.supxlabel(caption, fontsize=12)
    if title:
        fig.suptitle(title, fontsize=14)
    _annotate_all(fig, pending)
    _save(fig, path, replace)


def _image_panel(
    fig: Any, ax: Any, values: np.ndarray, title: str, pending: list, vmin=None, vmax=None
) -> None:
    from matplotlib.ticker import MaxNLocator

    values = np.asarray(values, dtype=np.float64)
    shown = ax.imshow(
        values,
        cmap="gray",
        vmin=vmin,
        vmax=vmax,
        interpolation="nearest" if max(values.shape) <= 64 else "antialiased",
    )
    ax.set_title(title, fontsize=13)
    ax.tick_params(labelsize=9)
    if max(values.shape) <= ANNOTATE_IMAGE_UP_TO:
        ax.set_xticks(range(values.shape[1]))
        ax.set_yticks(range(values.shape[0]))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    if max(values.shape) <= ANNOTATE_IMAGE_UP_TO:
        pending.append((ax, values, shown, None, 1))
    # A colour bar exactly as tall as the image, just right of it.
    bar = fig.colorbar(shown, cax=ax.inset_axes([1.03, 0.0, 0.04, 1.0]))
    bar.ax.tick_params(labelsize=9)


def _stage_panel(fig: Any, ax: Any, stage: Any, number: int | None, pending: list) -> None:
    prefix = f"{number}: " if number is not None else ""
    weighted = bool(stage.params)  # a convolution; a pooling window has no weights
    if weighted:
        grid = weight_mosaic(stage.weights)
        label = f"{prefix}Kernel {shape_text(stage.window)} ({stage.label})"
        if stage.channels > 1 or stage.filters > 1:
            c, n = stage.channels, stage.filters
            label += f"\n{c} channel{'s' if c > 1 else ''} down, {n} filter{'s' if n > 1 else ''} across"
    else:
        grid = np.full(stage.window, 1.0 / (stage.size * stage.size))
        label = f"{prefix}{stage.name} {shape_text(stage.window)}"
    limit = float(np.nanmax(np.abs(grid))) or 1.0
    factor = _label_factor(grid) if weighted else 1
    if factor != 1:
        label += f"\ncells show weights × {factor:g}"
    if weighted:  # diverging: red positive, blue negative, white 0; never fully saturated
        shown = ax.imshow(grid, cmap="RdBu_r", vmin=-1.3 * limit, vmax=1.3 * limit, interpolation="nearest")
    else:  # a pooling window has no weights: a plain light grid
        shown = ax.imshow(np.zeros(grid.shape), cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks(np.arange(-0.5, grid.shape[1]), minor=True)
        ax.set_yticks(np.arange(-0.5, grid.shape[0]), minor=True)
        ax.grid(which="minor", color="0.6", linewidth=1)
    ax.set_title(
        label if number is None else f"{label}\n{stage_settings(stage)}",
        fontsize=13 if number is None else 11,
    )
    ax.set_xticks(range(grid.shape[1]))
    ax.set_yticks(range(grid.shape[0]))
    ax.tick_params(labelsize=9, length=0)
    if max(grid.shape) > 15:
        ax.set_xticks(range(0, grid.shape[1], 5))
        ax.set_yticks(range(0, grid.shape[0], 5))
    if weighted:
        if max(grid.shape) <= ANNOTATE_KERNEL_UP_TO:
            pending.append((ax, grid, shown, None, factor))
        else:
            bar = fig.colorbar(shown, cax=ax.inset_axes([1.03, 0.0, 0.04, 1.0]))
            bar.ax.tick_params(labelsize=9)
    else:
        word = "max" if stage.kind == "max" else value_text(1.0 / stage.size**2)
        pending.append((ax, grid, shown, word, 1))


def _label_factor(grid: np.ndarray) -> int:
    """A power of ten that keeps the labels of a big kernel of small weights short (1: none needed).

    A 9x9 gaussian's weights run from 0.000763 to 0.0417; times 1000 they
    print as 0.763 .. 41.7, which fits the cells.
    """
    largest = float(np.nanmax(np.abs(grid)))
    longest = max(len(value_text(v)) for v in grid.ravel() if np.isfinite(v))
    if max(grid.shape) <= 5 or longest <= 5 or largest == 0 or largest >= 1:
        return 1
    return int(10 ** (1 - int(np.floor(np.log10(largest)))))


def _annotate_all(fig: Any, pending: list) -> None:
    """Print each value in its cell, as large as the cell allows (at most 13 pt), dark on light."""
    if not pending:
        return
    fig.canvas.draw()  # settle the layout once, to know how large the cells are
    for ax, values, shown, text, factor in pending:
        rows, cols = values.shape
        labels = [[text or ("" if np.isnan(v) else value_text(v * factor)) for v in row] for row in values]
        longest = max(len(label) for row in labels for label in row)
        box = ax.get_window_extent()
        cell_w, cell_h = (box.width / cols) * 72 / DPI, (box.height / rows) * 72 / DPI
        fontsize = max(6.0, min(13.0, 0.9 * cell_w / (0.62 * longest), 0.45 * cell_h))
        norm, cmap = shown.norm, shown.get_cmap()
        for (r, c), value in np.ndenumerate(values):
            if not text and np.isnan(value):  # the blank line between two kernels of a mosaic
                continue
            red, green, blue, _ = cmap(norm(0 if text else value))
            color = "black" if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else "white"
            ax.text(c, r, labels[r][c], ha="center", va="center", fontsize=fontsize, color=color)


def _save(fig: Any, path: str, replace: bool = True) -> None:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    with atomic_file(path, replace=replace) as handle:
        fig.savefig(handle, format=ext, dpi=DPI)
