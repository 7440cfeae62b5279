"""Drawing an :class:`~convfilter.animation.steps.Animation` with Pillow, and writing it as GIF or APNG.

Every frame has the same layout, on a white background: a title line, the
step in words, the source grid (the padded input; padding pale grey, the
image blue) and the target grid (the output filling in), then the products
and their sum when values are shown, and a legend. The window's taps are
orange, inside an outline of the window's extent, so dilation shows as gaps.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from convfilter.animation.steps import Animation, number_text
from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.io.atomic import atomic_file
from convfilter.ops.geometry import padding_text

MAX_SIDE = 1800
"""Largest frame width or height, in pixels."""
FORMATS = {".gif": "GIF", ".png": "PNG", ".apng": "PNG"}
MARGIN, GAP = 24, 56

INK = "#222222"
MUTED = "#8a8a8a"
IMAGE_FILL, IMAGE_LINE = "#dce8f5", "#5b7fa8"
PAD_FILL, PAD_LINE = "#f4f4f4", "#cccccc"
TAP_FILL, TAP_LINE = "#f6b26b", "#a34a00"
DONE_FILL, DONE_LINE = "#c7ead3", "#2d6a4f"
TODO_FILL = "#ffffff"


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at ``size`` pixels (its bitmap font where FreeType is missing)."""
    try:
        return ImageFont.load_default(size=size)
    except (AttributeError, OSError, TypeError):
        return ImageFont.load_default()


def format_for(path: str) -> str:
    """``GIF`` or ``PNG`` (animated PNG) by the extension, or ConvFilterError."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        shown = repr(ext) if ext else "no extension"
        raise ConvFilterError(f"{path}: an animation is written as .gif or .png (APNG), not {shown}")
    return FORMATS[ext]


class Layout:
    """Where everything goes in a frame of ``animation`` (sizes checked against :data:`MAX_SIDE`)."""

    def __init__(self, animation: Animation) -> None:
        self.animation = animation
        self.values = animation.source is not None
        self.cell = 46 if self.values else 30
        sh, sw = animation.source_shape
        th, tw = animation.target_shape
        self.title_font, self.text_font = font(18), font(15)
        self.cell_font, self.small_font = font(14 if self.values else 12), font(10)
        self.top = MARGIN + 3 * 24 + 18
        self.left_x = MARGIN
        self.right_x = MARGIN + sw * self.cell + GAP
        grid_h = max(sh, th) * self.cell
        self.bottom = self.top + grid_h + 16
        self.width = max(self.right_x + tw * self.cell + MARGIN, 640)
        self.height = self.bottom + (4 * 20 if self.values else 0) + 34 + MARGIN
        if max(self.width, self.height) > MAX_SIDE:
            raise ArgumentError(
                f"the frames would be {self.width}x{self.height} pixels (grids of {sh}x{sw} and {th}x{tw} "
                f"cells); at most {MAX_SIDE}: use a smaller input or kernel"
            )

    def cell_box(self, x0: int, r: int, c: int) -> tuple[int, int, int, int]:
        return (
            x0 + c * self.cell,
            self.top + r * self.cell,
            x0 + (c + 1) * self.cell,
            self.top + (r + 1) * self.cell,
        )


def centered(draw: ImageDraw.ImageDraw, box: Sequence[float], text: str, fnt, fill: str) -> None:
    """Draw ``text`` centred in ``box``."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=fnt)
    x = (box[0] + box[2] - (right - left)) / 2 - left
    y = (box[1] + box[3] - (bottom - top)) / 2 - top
    draw.text((x, y), text, font=fnt, fill=fill)


def fitted(draw: ImageDraw.ImageDraw, text: str, fnt, width: int):
    """``fnt``, or the small font when ``text`` would not fit ``width`` pixels."""
    left, _, right, _ = draw.textbbox((0, 0), text, font=fnt)
    return fnt if right - left <= width else font(10)


def wrap(draw: ImageDraw.ImageDraw, text: str, fnt, width: int) -> list[str]:
    """``text`` split at spaces into lines of at most ``width`` pixels."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}".strip()
        if line and draw.textlength(candidate, font=fnt) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line] if line else lines


def title(animation: Animation) -> str:
    """The first line of every frame: the layer and the shapes."""
    op = animation.op
    (kh, kw), (sy, sx), (dy, dx) = op.window, op.stride, op.dilation
    (h, w), (oh, ow) = animation.input_shape, animation.output_shape
    layer = "Conv2DTranspose" if animation.transpose else "Conv2D"
    extra = f", output padding {op.output_padding}" if animation.transpose and op.output_padding else ""
    border = "" if animation.transpose or op.border == "zero" or op.padding == "valid" else f" ({op.border})"
    return (
        f"{layer} {kh}x{kw}, stride {sy}x{sx}, padding {padding_text(op.padding)}{border}, "
        f"dilation {dy}x{dx}{extra}: {h}x{w} -> {oh}x{ow}"
    )


def step_text(animation: Animation, index: int) -> tuple[str, str]:
    """The step in words and, with values, its products and sum (what the frame's text lines say)."""
    n = len(animation.steps)
    if index < 0:
        if animation.transpose:
            return "every input pixel adds the kernel, times its value, into the output", ""
        count = animation.op.window[0] * animation.op.window[1]
        return f"every output is a sum of {count} products of the window's inputs and the kernel", ""
    if index >= n:
        oh, ow = animation.output_shape
        return f"done: {oh}x{ow} outputs" + (
            " (the cells inside the crop)" if animation.transpose else ""
        ), ""
    step = animation.steps[index]
    i, j = step.index
    rows = sorted({r for r, _ in step.taps})
    cols = sorted({c for _, c in step.taps})
    if animation.transpose:
        words = (
            f"step {index + 1}/{n}: input ({i}, {j}) adds the kernel at rows {rows[0]}..{rows[-1]}, "
            f"cols {cols[0]}..{cols[-1]}"
        )
        if step.terms is None:
            return words, ""
        x = step.terms[0][0]
        return words, f"in[{i},{j}] = {number_text(x)}: adds {number_text(x)} * w to {len(step.taps)} cells"
    words = (
        f"step {index + 1}/{n}: output ({i}, {j}) from rows {rows[0]}..{rows[-1]}, cols {cols[0]}..{cols[-1]}"
    )
    if step.terms is None:
        return words, ""
    products = " + ".join(f"{number_text(x)}*{number_text(w)}" for x, w in step.terms)
    bias = f" + {number_text(animation.op.bias)}" if animation.op.bias else ""
    return words, f"out[{i},{j}] = {products}{bias} = {number_text(step.value)}"


def target_texts(animation: Animation, index: int) -> dict[tuple[int, int], str]:
    """The numbers in the target grid's cells at frame ``index`` (-1: the first frame, n: the last)."""
    if animation.source is None:
        return {}
    count = min(max(index + 1, 0), len(animation.steps))
    if animation.transpose:
        grid = animation.accumulated(count)
        touched = {tap for step in animation.steps[:count] for tap in step.taps}
        return {cell: number_text(float(grid[cell])) for cell in touched}
    return {step.index: number_text(step.value) for step in animation.steps[:count]}


def final_outputs(animation: Animation) -> dict[tuple[int, int], str]:
    """The output numbers of the last frame, by output position (the crop applied for a transposed one)."""
    texts = target_texts(animation, len(animation.steps))
    if not animation.transpose:
        return texts
    top, left = animation.crop
    oh, ow = animation.output_shape
    return {
        (r - top, c - left): text
        for (r, c), text in texts.items()
        if 0 <= r - top < oh and 0 <= c - left < ow
    }


def render(animation: Animation, index: int, layout: Layout | None = None) -> Image.Image:
    """Frame ``index`` (-1: the opening frame, ``len(steps)``: the closing one)."""
    lay = layout or Layout(animation)
    image = Image.new("RGB", (lay.width, lay.height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((MARGIN, MARGIN), title(animation), font=lay.title_font, fill=INK)
    words, sums = step_text(animation, index)
    draw.text((MARGIN, MARGIN + 28), words, font=lay.text_font, fill=INK)
    step = animation.steps[index] if 0 <= index < len(animation.steps) else None
    _source(draw, lay, animation, step)
    _target(draw, lay, animation, index, step)
    y = lay.bottom
    if sums:
        for line in wrap(draw, sums, lay.text_font, lay.width - 2 * MARGIN)[:4]:
            draw.text((MARGIN, y), line, font=lay.text_font, fill=INK)
            y += 20
        y = lay.bottom + 4 * 20
    _legend(draw, lay, animation, y + 6)
    return image


def _source(draw, lay: Layout, animation: Animation, step) -> None:
    sh, sw = animation.source_shape
    top, left, bottom, right = animation.inside
    label = "input" if animation.transpose or animation.op.padding == "valid" else "input, padded"
    draw.text((lay.left_x, lay.top - 20), label, font=lay.text_font, fill=MUTED)
    taps = {}
    if step is not None and not animation.transpose:
        taps = {tap: n for n, tap in enumerate(step.taps)}
    for r in range(sh):
        for c in range(sw):
            box = lay.cell_box(lay.left_x, r, c)
            inside = top <= r < bottom and left <= c < right
            current = step is not None and animation.transpose and (r, c) == step.index
            if (r, c) in taps or current:
                fill, line, width = TAP_FILL, TAP_LINE, 2
            else:
                fill, line, width = (IMAGE_FILL, IMAGE_LINE, 1) if inside else (PAD_FILL, PAD_LINE, 1)
            draw.rectangle(box, fill=fill, outline=line, width=width)
            if animation.source is not None:
                text = number_text(float(animation.source[r, c]))
                fnt = fitted(draw, text, lay.cell_font, lay.cell - 4)
                centered(
                    draw,
                    (box[0], box[1], box[2], box[3] - (10 if (r, c) in taps else 0)),
                    text,
                    fnt,
                    INK if inside else MUTED,
                )
            if (r, c) in taps and animation.weights is not None:
                kw = animation.op.window[1]
                n = taps[(r, c)]
                weight = "w " + number_text(float(animation.weights[n // kw, n % kw]))
                centered(draw, (box[0], box[3] - 14, box[2], box[3] - 2), weight, lay.small_font, TAP_LINE)
    if step is not None and not animation.transpose:
        rows = [r for r, _ in step.taps]
        cols = [c for _, c in step.taps]
        outline = (
            *lay.cell_box(lay.left_x, min(rows), min(cols))[:2],
            *lay.cell_box(lay.left_x, max(rows), max(cols))[2:],
        )
        draw.rectangle(outline, outline=TAP_LINE, width=3)


def _target(draw, lay: Layout, animation: Animation, index: int, step) -> None:
    th, tw = animation.target_shape
    top, left = animation.crop
    oh, ow = animation.output_shape
    label = "output" if not animation.transpose else "output (inside the frame; the rest is cropped)"
    draw.text((lay.right_x, lay.top - 20), label, font=lay.text_font, fill=MUTED)
    texts = target_texts(animation, index)
    done = {s.index for s in animation.steps[: max(index, 0)]} if not animation.transpose else set()
    if index >= len(animation.steps) and not animation.transpose:
        done = {s.index for s in animation.steps}
    touched = set()
    if animation.transpose:
        touched = {
            tap for s in animation.steps[: min(max(index + 1, 0), len(animation.steps))] for tap in s.taps
        }
    taps = set(step.taps) if (step is not None and animation.transpose) else set()
    for r in range(th):
        for c in range(tw):
            box = lay.cell_box(lay.right_x, r, c)
            kept = top <= r < top + oh and left <= c < left + ow
            current = step is not None and not animation.transpose and (r, c) == step.index
            if current or (r, c) in taps:
                fill, line, width = TAP_FILL, TAP_LINE, 2
            elif (r, c) in done or (r, c) in touched:
                fill, line, width = (DONE_FILL, DONE_LINE, 1) if kept else (PAD_FILL, DONE_LINE, 1)
            else:
                fill, line, width = (TODO_FILL, IMAGE_LINE, 1) if kept else (PAD_FILL, PAD_LINE, 1)
            draw.rectangle(box, fill=fill, outline=line, width=width)
            if (r, c) in texts:
                fnt = fitted(draw, texts[(r, c)], lay.cell_font, lay.cell - 4)
                centered(draw, box, texts[(r, c)], fnt, INK if kept else MUTED)
    if animation.transpose:
        frame = (
            *lay.cell_box(lay.right_x, top, left)[:2],
            *lay.cell_box(lay.right_x, top + oh - 1, left + ow - 1)[2:],
        )
        draw.rectangle(frame, outline=INK, width=2)


def _legend(draw, lay: Layout, animation: Animation, y: int) -> None:
    entries = [
        (IMAGE_FILL, IMAGE_LINE, "input"),
        (PAD_FILL, PAD_LINE, "padding" if not animation.transpose else "cropped"),
        (TAP_FILL, TAP_LINE, "this step"),
        (DONE_FILL, DONE_LINE, "output so far"),
    ]
    x = MARGIN
    for fill, line, text in entries:
        draw.rectangle((x, y, x + 16, y + 16), fill=fill, outline=line)
        draw.text((x + 22, y), text, font=lay.text_font, fill=INK)
        x += 30 + int(draw.textlength(text, font=lay.text_font)) + 18


def frames(animation: Animation) -> list[Image.Image]:
    """Every frame: an opening one, one per step, a closing one."""
    layout = Layout(animation)
    return [render(animation, index, layout) for index in range(-1, len(animation.steps) + 1)]


def write(path: str, animation: Animation, *, fps: float = 2.0, overwrite: bool = False) -> int:
    """Write the animation to ``path`` (GIF, or APNG for ``.png``) atomically; returns the frame count.

    The first and last frames stay up three times as long as the steps.
    """
    fmt = format_for(path)
    pictures = frames(animation)
    step = max(int(round(1000 / fps)), 20)
    durations = [step * 3] + [step] * (len(pictures) - 2) + [step * 3]
    with atomic_file(path, replace=overwrite) as handle:
        pictures[0].save(
            handle, format=fmt, save_all=True, append_images=pictures[1:], duration=durations, loop=0
        )
    return len(pictures)
