"""The explorer's warm state: decoded pictures, computed results, and the numbers behind one output pixel.

One :class:`Explorer` lives in the ``convfilter explore`` process. Pictures
are decoded once; a view's raw float result is computed once per picture and
operation (a change of ``--range`` only maps it again); the model behind it
stays warm in the engine's cache. Output PNGs are made by the same functions
the command line writes standard output with, so they are the same bytes as
``convfilter blur in.png -`` would print.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from convfilter.engine.apply import apply
from convfilter.engine.tiles import border_index
from convfilter.errors import ConvFilterError
from convfilter.explain import axis_formula, explain, format_text
from convfilter.explore.code import keras_code
from convfilter.explore.state import ExploreState, QueryError
from convfilter.io.images import DEFAULT_MAX_PIXELS, save_image
from convfilter.io.png import encode_png
from convfilter.ops.conv import Conv2DSpec
from convfilter.run.files import InputData, OutputPlan, output_target, read_input, render_output, save_params
from convfilter.run.jobs import OutputSettings
from convfilter.run.runner import check_output_pixels, png_params

SAMPLES = {"ascent": "ascent.png", "steps": None}
"""The sample pictures the page offers: a photograph and a small synthetic one with exact edges."""
UPLOAD_NAME = "uploaded.png"
"""How an upload is named in the command line and the Keras code (the page keeps no file name)."""
DEFAULT_MAX_UPLOAD = 32 * 1024 * 1024
"""The largest upload accepted, in bytes."""
_RESULTS_KEPT = 32


@dataclass
class Picture:
    """A decoded input: its key (``given``, ``sample:ascent``, ``upload:3f2a...``), its name in the
    command line, the channels the layer reads and an 8-bit PNG of them for the page."""

    key: str
    name: str
    data: InputData
    png: bytes = field(repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return self.data.shape


@dataclass
class Result:
    """One view computed: the raw ``H' x W'`` float32 result, its PNG and everything the page shows."""

    key: str
    state: ExploreState
    picture: Picture
    values: np.ndarray = field(repr=False)
    png: bytes = field(repr=False)
    range_mode: str
    kept: dict = field(default_factory=dict, repr=False)
    """PNGs that depend on the raw values only, shared by every result of the same values."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(H', W')``."""
        return self.values.shape  # type: ignore[return-value]

    @property
    def diverging_png(self) -> bytes:
        """The signed result: zero mid-grey, blue below and red above, scaled by the largest magnitude."""
        if "diverging" not in self.kept:
            self.kept["diverging"] = encode_png(diverging_pixels(self.values), compress_level=1)
        return self.kept["diverging"]

    def summary(self) -> dict:
        """What the page shows beside the images, JSON-ready."""
        op, state = self.state.op, self.state
        finite = self.values[np.isfinite(self.values)]
        (top, bottom), (left, right) = op.pads(self.picture.shape)
        return {
            "key": self.key,
            "query": state.to_query(),
            "image": self.picture.key,
            "image_name": self.picture.name,
            "input_shape": list(self.picture.shape),
            "output_shape": list(self.shape),
            "shape_text": shape_text(state, self.picture.shape, self.shape),
            "layer": op.describe(),
            "pads": {"top": top, "bottom": bottom, "left": left, "right": right},
            "range": state.range,
            "range_mode": self.range_mode,
            "minimum": float(finite.min()) if finite.size else None,
            "maximum": float(finite.max()) if finite.size else None,
            "weights": None if state.pool else np.asarray(op.weights, dtype=float).tolist(),
            "kernel_grid": None if state.pool else np.asarray(state.grid, dtype=float).tolist(),
            "command": state.command_line(_quoted_name(self.picture.name)),
            "keras_code": keras_code(op, self.picture.name, self.picture.shape, self.range_mode),
        }


def shape_text(state: ExploreState, shape: tuple[int, int], out: tuple[int, int]) -> str:
    """The output shape with the formula that gave it, as ``convfilter explain`` prints it."""
    op = state.op
    if state.pool:
        rows = axis_formula(shape[0], op.size, op.stride[0], 1, op.padding, out[0])
        cols = axis_formula(shape[1], op.size, op.stride[1], 1, op.padding, out[1])
        return (
            f"input:        {shape[0]}x{shape[1]}\n{op.describe()}\n"
            f"output rows:  {rows}\noutput cols:  {cols}\noutput:       {out[0]}x{out[1]}"
        )
    explanation = explain(
        shape,
        op.window,
        stride=op.stride,
        padding=op.padding,
        dilation=op.dilation,
        use_bias=op.bias != 0.0,
        border=op.border,
        convolve=op.convolve,
        transpose=op.transpose,
        output_padding=op.output_padding,
    )
    return format_text(explanation)


def _diverging_colours() -> np.ndarray:
    """256 RGB colours: index 128 is mid-grey (zero), 1 full blue (the most negative), 255 full red."""
    grey, red, blue = np.array([128.0] * 3), np.array([200.0, 30.0, 30.0]), np.array([30.0, 60.0, 200.0])
    t = (np.arange(256) - 128.0)[:, np.newaxis] / 127.0
    return np.rint(np.where(t >= 0, grey + t * (red - grey), grey - t * (blue - grey))).astype(np.uint8)


DIVERGING = _diverging_colours()


def diverging_pixels(values: np.ndarray) -> np.ndarray:
    """``H x W x 3`` uint8: 0 is mid-grey (128), the largest magnitude full blue (< 0) or full red (> 0).

    Values are scaled by the largest finite magnitude onto 255 steps (-127..127); NaN shows as zero.
    """
    finite = np.where(np.isfinite(values), values, 0).astype(np.float32, copy=False)
    scale = float(np.abs(finite).max()) or 1.0
    steps = np.rint(finite * np.float32(127.0 / scale))
    np.clip(steps, -127, 127, out=steps)
    return DIVERGING[(steps + 128).astype(np.uint8)]


class Explorer:
    """Pictures, results and the settings of one ``convfilter explore`` process; thread-safe."""

    def __init__(
        self,
        image: str | None = None,
        *,
        max_pixels: int | None = DEFAULT_MAX_PIXELS,
        max_upload: int = DEFAULT_MAX_UPLOAD,
    ) -> None:
        self.max_pixels = max_pixels
        self.max_upload = max_upload
        self.pictures: dict[str, Picture] = {}
        self.results: OrderedDict[str, Result] = OrderedDict()
        self.raw: OrderedDict[tuple, tuple[np.ndarray, dict]] = OrderedDict()
        self.lock = threading.RLock()
        self.given = image
        if image is not None:  # decoded now: a bad IMAGE is an error before the server starts
            self.pictures["given"] = self._picture("given", image, read_input(image, max_pixels=max_pixels))

    @property
    def default_image(self) -> str:
        """The picture a page without ``image=`` shows: IMAGE if given, else the sample photograph."""
        return "given" if self.given is not None else "sample:ascent"

    def images(self) -> list[dict]:
        """The pictures the page can pick: IMAGE, the samples, the uploads so far."""
        with self.lock:
            keys = [key for key in self.pictures if key.startswith("upload:")]
        listed = [{"key": "given", "name": self.given}] if self.given is not None else []
        listed += [{"key": f"sample:{name}", "name": f"sample: {name}"} for name in SAMPLES]
        return listed + [{"key": key, "name": f"upload {key[7:15]}"} for key in keys]

    def picture(self, key: str) -> Picture:
        """The decoded picture ``key``; :class:`QueryError` (``image``) for one that does not exist."""
        with self.lock:
            if key in self.pictures:
                return self.pictures[key]
            name = key.removeprefix("sample:")
            if not key.startswith("sample:") or name not in SAMPLES:
                raise QueryError(
                    "image", f"no image {key!r} here (IMAGE is 'given', samples 'sample:NAME', or an upload)"
                )
            picture = self._picture(key, *_sample(name))
            self.pictures[key] = picture
            return picture

    def upload(self, content: bytes) -> Picture:
        """Decode an uploaded image (refused beyond ``max_upload`` bytes or ``max_pixels`` pixels)."""
        if len(content) > self.max_upload:
            raise ConvFilterError(
                f"{UPLOAD_NAME}: is {len(content):,} bytes; the limit is {self.max_upload:,}"
            )
        if not content:
            raise ConvFilterError(f"{UPLOAD_NAME}: is empty")
        data = read_input(UPLOAD_NAME, max_pixels=self.max_pixels, source=io.BytesIO(content))
        key = "upload:" + hashlib.sha256(content).hexdigest()[:32]
        with self.lock:
            picture = self.pictures.get(key) or self._picture(key, UPLOAD_NAME, data)
            self.pictures[key] = picture
        return picture

    def _picture(self, key: str, name: str, data: InputData) -> Picture:
        data.channels = data.channels.astype(np.float32, copy=False)
        shown = data.channels[0] * (255.0 / data.max_value) if data.max_value != 255.0 else data.channels[0]
        pixels = np.clip(np.rint(np.nan_to_num(shown)), 0, 255).astype(np.uint8)
        return Picture(key, name, data, encode_png(pixels, compress_level=1))

    def run(self, state: ExploreState) -> Result:
        """The view ``state`` describes, computed by the real layer (or taken from the cache)."""
        picture = self.picture(state.image)
        op = state.op
        key = hashlib.sha256(repr((picture.key, sorted(state.to_query().items()))).encode()).hexdigest()[:24]
        with self.lock:
            if key in self.results:
                self.results.move_to_end(key)
                return self.results[key]
            shape = picture.shape
            try:
                out_shape = op.output_shape(shape)
            except ConvFilterError as exc:
                raise ConvFilterError(f"{picture.name}: {exc}") from None
            check_output_pixels(picture.name, out_shape, self.max_pixels)
            raw_key = (picture.key, repr(op))
            if raw_key not in self.raw:
                self.raw[raw_key] = (apply(op, picture.data.channels)[-1][0], {})
                while len(self.raw) > _RESULTS_KEPT:
                    self.raw.popitem(last=False)
            values, kept = self.raw[raw_key]
            if not np.isfinite(values).any():
                raise ConvFilterError(
                    f"{picture.name}: the result is not finite anywhere (the sums overflow float32); "
                    "use smaller weights"
                )
            png, used = _encode(picture, values, state.range_mode)
            result = Result(key, state, picture, values, png, used, kept)
            self.results[key] = result
            while len(self.results) > _RESULTS_KEPT:
                self.results.popitem(last=False)
            return result

    def result(self, key: str) -> Result | None:
        """A result computed before, if still kept."""
        with self.lock:
            return self.results.get(key)


def _encode(picture: Picture, values: np.ndarray, range_mode: str) -> tuple[bytes, str]:
    """The output PNG as ``convfilter ... INPUT -`` writes it (same plan, mapping and encoder settings)."""
    plan = OutputPlan("-", "PNG", None, range_mode)
    depth, mode = output_target(plan, picture.data, picture.name)
    image, used = render_output(plan, picture.data, values[np.newaxis], depth, mode)
    buffer = io.BytesIO()
    params = save_params(plan, picture.data, **png_params(OutputSettings().png_compression))
    save_image(buffer, image, "PNG", **params)
    return buffer.getvalue(), used


def _sample(name: str) -> tuple[str, InputData]:
    """A sample picture: the packaged photograph, or 'steps', drawn here (32 x 48, exact edges)."""
    if SAMPLES[name] is None:
        steps = np.zeros((32, 48), dtype=np.float32)
        steps[8:24, 12:36] = 200.0
        steps[14:18, :] = 100.0
        steps[:, 40:] = 255.0
        return "steps.png", InputData(steps[np.newaxis], None, "L", 255.0, {})
    path = str(resources.files("convfilter.explore").joinpath("samples", SAMPLES[name]))
    return path, read_input(path)


def _quoted_name(name: str) -> str:
    """The picture's name as the command line shows it: relative to here when that is shorter."""
    try:
        relative = os.path.relpath(name)
    except ValueError:
        return name
    return relative if len(relative) < len(name) else name


def window(result: Result, row: int, col: int) -> dict:
    """The numbers behind output pixel ``(row, col)``: every tap's input position, value, weight and
    product, and the layer's own value there.

    Positions are in the input's rows and columns (outside ``0..H-1``: padding,
    with the value the border gives it). For a transposed convolution each
    tap is an input pixel that scatters into this output pixel.
    """
    h, w = result.shape
    if not (0 <= row < h and 0 <= col < w):
        raise QueryError("row", f"pixel ({row}, {col}) is outside the {h}x{w} output")
    op, picture = result.state.op, result.picture
    x = picture.data.channels[0]
    value = float(result.values[row, col])
    if isinstance(op, Conv2DSpec) and op.transpose:
        taps = _scatter_taps(op, x, row, col)
    else:
        taps = _window_taps(op, x, row, col)
    data = {
        "row": row,
        "col": col,
        "value": value,
        "value_text": str(np.float32(value)),
        "taps": taps,
        "bias": getattr(op, "bias", 0.0),
        "kind": "pool-" + op.kind
        if not isinstance(op, Conv2DSpec)
        else ("transpose" if op.transpose else "conv"),
    }
    return data


def _window_taps(op, x: np.ndarray, row: int, col: int) -> list[dict]:
    """The window of a convolution or a pool: ``kh x kw`` taps, dilation apart, from the padded input."""
    (kh, kw), (sy, sx) = op.window, op.stride
    (dy, dx) = getattr(op, "dilation", (1, 1))
    (top, _), (left, _) = op.pads(x.shape)
    border = getattr(op, "border", "zero")
    weights = op.weights if isinstance(op, Conv2DSpec) else None
    taps = []
    for a in range(kh):
        r = row * sy + a * dy - top
        for b in range(kw):
            c = col * sx + b * dx - left
            inside = 0 <= r < x.shape[0] and 0 <= c < x.shape[1]
            if inside:
                v = float(x[r, c])
            elif border == "zero" or weights is None:
                v = 0.0
            else:
                v = float(x[border_index(r, x.shape[0], border), border_index(c, x.shape[1], border)])
            tap = {"row": r, "col": c, "a": a, "b": b, "inside": inside, "value": v}
            if weights is not None:
                tap["weight"] = float(weights[a, b])
                tap["product"] = v * float(weights[a, b])
            taps.append(tap)
    return taps


def _scatter_taps(op: Conv2DSpec, x: np.ndarray, row: int, col: int) -> list[dict]:
    """The input pixels a transposed convolution scatters into ``(row, col)``, each with its tap."""
    (kh, kw), (sy, sx), (dy, dx) = op.window, op.stride, op.dilation
    (top, _), (left, _) = op.crops(x.shape)
    weights = op.weights
    rows = [(a, (row + top - a * dy) // sy) for a in range(kh) if (row + top - a * dy) % sy == 0]
    cols = [(b, (col + left - b * dx) // sx) for b in range(kw) if (col + left - b * dx) % sx == 0]
    taps = []
    for a, r in rows:
        for b, c in cols:
            if 0 <= r < x.shape[0] and 0 <= c < x.shape[1]:
                v, weight = float(x[r, c]), float(weights[a, b])
                taps.append(
                    {
                        "row": r,
                        "col": c,
                        "a": a,
                        "b": b,
                        "inside": True,
                        "value": v,
                        "weight": weight,
                        "product": v * weight,
                    }
                )
    return taps
