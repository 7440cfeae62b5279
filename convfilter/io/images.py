"""Reading images into float planes and writing pixels atomically.

Reading (:func:`read_gray`, :func:`read_color`) opens the file with Pillow,
refuses it before decoding when it claims more than ``max_pixels`` pixels
(Pillow's decompression-bomb limit, set explicitly for every read), picks one
frame of a multi-frame file, applies the EXIF orientation, then converts the
pixels by the rules in :mod:`convfilter.io.modes`. Every failure is a
:class:`ConvFilterError` whose one-line message starts with the path.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import struct
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from convfilter.errors import ArgumentError, ConvFilterError, TooManyPixelsError, input_file_error, one_line
from convfilter.io import stores
from convfilter.io.atomic import atomic_file
from convfilter.io.modes import Planes, color_planes, gray_planes
from convfilter.io.png import PNG_MODES, png_mode, write_png

COMMON_EXTENSIONS = ".png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp"
FORMATS_WITH_16_BIT = ("PNG", "TIFF")
FORMATS_WITH_FLOAT = ("TIFF",)
FORMATS_WITH_QUALITY = ("JPEG", "WEBP")
FORMATS_WITH_DPI = ("PNG", "JPEG", "TIFF", "BMP")
DEFAULT_MAX_PIXELS = 2**28
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)
ENCODE_ERRORS = (OSError, ValueError, TypeError, KeyError, RuntimeError, OverflowError, struct.error)
"""What a failing encoder raises (Pillow; imagecodecs' ``PngError`` is a ``RuntimeError``; a value
too large for a header field is an ``OverflowError`` or ``struct.error``)."""
MAX_SIDES = {"GIF": 65535, "TGA": 65535, "PCX": 65535, "SGI": 65535, "ICO": 256, "WEBP": 16383, "JPEG": 65500}
"""The largest side each format's header can hold (ICO: Pillow would shrink a larger image)."""


def check_size(path: str, fmt: str, shape: tuple[int, int]) -> None:
    """Raise :class:`ConvFilterError` if an ``H x W`` image is larger than ``fmt`` can store."""
    limit = MAX_SIDES.get(fmt)
    if limit is not None and max(shape) > limit:
        raise ConvFilterError(
            f"{path}: the output is {shape[0]}x{shape[1]}, but {fmt} holds at most {limit} pixels a side; "
            "use another format (.png, .tif)"
        )


def depth_of_scale(max_value: float) -> int:
    """The output depth that keeps an input's precision: 8 for the 0..255 scale, 16 for any other."""
    return 8 if max_value == 255 else 16


@dataclass
class GrayImage:
    """A decoded image: ``pixels`` (``H x W``) in a ``0..max_value`` scale.

    ``pixels`` are float32 unless read with ``keep_dtype`` (see :func:`read_gray`).

    ``frame`` is the frame that was read (0-based) out of ``frames``.
    """

    pixels: np.ndarray
    max_value: float
    mode: str
    info: dict = field(default_factory=dict)
    frame: int = 0
    frames: int = 1

    @property
    def depth(self) -> int:
        """8 for images read in the 0..255 scale, 16 for the higher-precision ones."""
        return depth_of_scale(self.max_value)


@dataclass
class ColorImage:
    """A decoded image split by :func:`convfilter.io.modes.color_planes`.

    ``channels`` is ``C x H x W`` float32 in a ``0..max_value`` scale,
    ``alpha`` is ``H x W`` uint8 or ``None``; ``mode`` is the mode the
    channels form (``L``, ``LA``, ``RGB``, ``RGBA``, ``CMYK``) and
    ``source_mode`` the mode of the file.
    """

    channels: np.ndarray
    alpha: np.ndarray | None
    mode: str
    source_mode: str
    max_value: float
    info: dict = field(default_factory=dict)
    frame: int = 0
    frames: int = 1

    @property
    def depth(self) -> int:
        """8 for images read in the 0..255 scale, 16 for the higher-precision ones."""
        return depth_of_scale(self.max_value)


def check_depth_value(depth: int | str | None) -> int | str | None:
    """Normalise an output depth (8, 16, ``"32f"``, their strings, or ``None``) or raise ``ValueError``."""
    if depth is None:
        return None
    normal = {"8": 8, "16": 16, "32f": "32f"}.get(str(depth).lower())
    if normal is None or isinstance(depth, bool | float):
        raise ArgumentError(f"The `depth` argument must be 8, 16 or '32f'. Received: depth={depth!r}")
    return normal


def output_format(path: str) -> str:
    """Pillow's format name for writing ``path``, chosen by its extension.

    Raises :class:`ConvFilterError` for an extension Pillow cannot write.
    """
    Image.init()
    ext = os.path.splitext(path)[1].lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        shown = repr(ext) if ext else "no extension"
        raise ConvFilterError(f"{path}: unknown output format ({shown}); use one of {COMMON_EXTENSIONS}")
    return fmt


def check_depth(path: str, fmt: str, depth: int | str) -> None:
    """Raise :class:`ConvFilterError` if ``fmt`` cannot store pixels of ``depth`` (8, 16 or ``"32f"``)."""
    if depth == 16 and fmt not in FORMATS_WITH_16_BIT:
        raise ConvFilterError(f"{path}: {fmt} cannot store 16-bit pixels; use .png or .tif")
    if depth == "32f" and fmt not in FORMATS_WITH_FLOAT:
        raise ConvFilterError(f"{path}: {fmt} cannot store 32-bit float pixels; use .tif")


def check_quality(path: str, fmt: str, quality: int | None) -> None:
    """Raise ``ValueError`` unless ``quality`` is ``None`` or 1..100 for a format that takes one."""
    if quality is None:
        return
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ArgumentError(
            f"The `quality` argument must be an integer 1..100. Received: quality={quality!r}"
        )
    if fmt not in FORMATS_WITH_QUALITY:
        raise ArgumentError(f"{path}: --quality applies to JPEG and WebP output only, not {fmt}")


def check_encodable(path: str, fmt: str, mode: str) -> None:
    """Raise :class:`ConvFilterError` if Pillow cannot write ``mode`` pixels as ``fmt``.

    Encodes a 1x1 image in memory, so the answer is Pillow's own.
    """
    try:
        Image.new(mode, (1, 1)).save(io.BytesIO(), format=fmt)
    except (OSError, ValueError, KeyError):
        raise ConvFilterError(f"{path}: {fmt} cannot store {mode} pixels; use .png or .tif") from None


def read_gray(
    path: str,
    *,
    frame: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    source: BinaryIO | None = None,
    keep_dtype: bool = False,
    on_open: Callable[[tuple[int, int]], None] | None = None,
) -> GrayImage:
    """Decode ``path`` (frame ``frame``, default the first) and convert it to grayscale.

    The grayscale rule for every Pillow mode is in :mod:`convfilter.io.modes`.
    Raises :class:`ConvFilterError`, its message starting with ``path``, for
    anything wrong with the file, including more than ``max_pixels`` pixels
    (``None``: no limit) and a ``frame`` the file does not have. ``source``,
    if given, is an open binary file (standard input, bytes in memory) read
    instead of ``path``; ``path`` then only names it in messages.

    ``pixels`` are float32 unless ``keep_dtype``: then 8-bit and 16-bit
    images keep their decoded integer type (``uint8``, ``uint16``), a quarter
    or half of the memory. ``on_open(size)`` is called with ``(width, height)``
    once the file has opened as an image within the limit, before the (slow) decode.
    """
    convert = functools.partial(gray_planes, keep_dtype=keep_dtype)
    planes, source_mode, info, index, frames = _read(path, frame, max_pixels, convert, source, on_open)
    return GrayImage(planes.channels[0], planes.max_value, source_mode, info, index, frames)


def read_color(
    path: str,
    *,
    frame: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    source: BinaryIO | None = None,
    keep_dtype: bool = False,
    on_open: Callable[[tuple[int, int]], None] | None = None,
) -> ColorImage:
    """Decode ``path`` like :func:`read_gray`, keeping the colour channels and alpha apart."""
    convert = functools.partial(color_planes, keep_dtype=keep_dtype)
    planes, source_mode, info, index, frames = _read(path, frame, max_pixels, convert, source, on_open)
    return ColorImage(
        planes.channels, planes.alpha, planes.mode, source_mode, planes.max_value, info, index, frames
    )


def _read(
    path: str,
    frame: int | None,
    max_pixels: int | None,
    convert: Callable[[Image.Image], Planes],
    source: BinaryIO | None = None,
    on_open: Callable[[tuple[int, int]], None] | None = None,
) -> tuple[Planes, str, dict, int, int]:
    if source is None and stores.is_url(path):
        source = io.BytesIO(stores.read_bytes(path))
    if source is None:
        _check_input_file(path)
    try:
        with _pixel_limit(max_pixels), Image.open(path if source is None else source) as img:
            frames = getattr(img, "n_frames", 1)
            index = 0 if frame is None else frame
            if not 0 <= index < frames:
                raise ConvFilterError(
                    f"{path}: has {_frames(frames)}, numbered 0..{frames - 1}; there is no frame {index}"
                )
            if index:
                img.seek(index)
            _check_pixels(path, img.size, max_pixels)
            if on_open is not None:
                on_open(img.size)
            info = dict(img.info)
            orientation = img.getexif().get(EXIF_ORIENTATION, 1)
            source_mode = img.mode
            upright = ImageOps.exif_transpose(img)
            if orientation in TRANSPOSING_ORIENTATIONS and "dpi" in info:
                info["dpi"] = tuple(reversed(info["dpi"]))
            return convert(upright), source_mode, info, index, frames
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise input_file_error(path, exc, "an image file") from None
    except UnidentifiedImageError:
        raise ConvFilterError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooManyPixelsError(_too_many(path, _header_size(path, source), max_pixels)) from None
    except ConvFilterError:
        raise
    except MemoryError:
        raise ConvFilterError(f"{path}: not enough memory to decode the image") from None
    except Exception as exc:  # Pillow's decoders raise many types on malformed files; all mean "bad file"
        raise ConvFilterError(f"{path}: cannot decode image ({one_line(exc)})") from None


def _frames(n: int) -> str:
    return "1 frame" if n == 1 else f"{n} frames"


def _check_input_file(path: str) -> None:
    """Problems visible without opening: missing, a directory, empty."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise input_file_error(path, exc, "an image file") from None
    if os.path.isdir(path):
        raise ConvFilterError(f"{path}: is a directory, not an image file")
    if st.st_size == 0 and os.path.isfile(path):
        raise ConvFilterError(f"{path}: file is empty")


class _PixelLimit:
    """Who holds Pillow's process-wide limit and warning filters (reads run in threads in a batch)."""

    condition = threading.Condition()
    holders = 0  # reads inside the limit now
    value: int | None = None  # their limit
    waiting = 0  # reads waiting for another limit; new reads queue behind them
    saved: int | None = None
    filters: warnings.catch_warnings | None = None


@contextlib.contextmanager
def _pixel_limit(max_pixels: int | None):
    """Set Pillow's decompression-bomb limit to ``max_pixels`` and make crossing it an error.

    Pillow only warns between the limit and twice the limit; the warning is
    turned into an exception so every image over the limit is refused when its
    header is read, before any pixel memory is allocated. Pillow's other
    warnings about damaged files ("Skipping tag ...") are silenced: the file
    either decodes or fails with one line.

    The limit and the warning filters are global to the process, so reads in
    several threads share them: reads with the same limit run together, a read
    with another limit waits until they are done, and the first read sets the
    globals and the last one restores them.
    """
    state = _PixelLimit
    with state.condition:
        queued = False
        while state.holders and (state.value != max_pixels or (state.waiting and not queued)):
            if state.value != max_pixels and not queued:
                state.waiting, queued = state.waiting + 1, True
            state.condition.wait()
        if queued:
            state.waiting -= 1
        if state.holders == 0:
            state.value, state.saved = max_pixels, Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = max_pixels
            state.filters = warnings.catch_warnings()
            state.filters.__enter__()
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
        state.holders += 1
    try:
        yield
    finally:
        with state.condition:
            state.holders -= 1
            if state.holders == 0:
                state.filters.__exit__(None, None, None)
                Image.MAX_IMAGE_PIXELS = state.saved
                state.condition.notify_all()


def _check_pixels(path: str, size: tuple[int, int], max_pixels: int | None) -> None:
    """The limit again for the selected frame (the frames of a TIFF can differ in size)."""
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        raise TooManyPixelsError(_too_many(path, size, max_pixels))


def header_pixels(path: str, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> int:
    """Width x height of the image file ``path`` from its header alone (no decoding); 0 when unknown.

    For planning memory only: a file that cannot be opened gives 0 and is
    reported when it is read.
    """
    if stores.is_url(path):
        return 0  # unknown without a request; the object is checked when it is read
    try:
        with _pixel_limit(max_pixels), Image.open(path) as img:
            return img.width * img.height
    except Exception:
        return 0


def _header_size(path: str, source: BinaryIO | None = None) -> tuple[int, int] | None:
    """``(width, height)`` from the header alone (Pillow opens lazily), for the error message."""
    try:
        if source is not None:
            source.seek(0)
        with _pixel_limit(None), Image.open(path if source is None else source) as img:
            return img.size
    except Exception:  # the size only decorates an error that is already being reported
        return None


def _too_many(path: str, size: tuple[int, int] | None, max_pixels: int | None) -> str:
    if size is None:
        count = "more pixels than the limit"
    else:
        width, height = size
        count = f"{height}x{width} = {width * height} pixels, more than the limit of {max_pixels}"
    return (
        f"{path}: image is {count} (a guard against decompression bombs); "
        "raise it with --max-pixels if you trust the file"
    )


def check_writable(path: str, *, create_dirs: bool = False) -> None:
    """Raise :class:`ConvFilterError` if ``path`` cannot be created or replaced.

    With ``create_dirs`` a missing directory is fine when it can be created:
    its nearest existing ancestor is a writable directory (it is created only
    when the file is written, so a run that writes nothing leaves no folders).
    """
    if stores.is_url(path):
        stores.check_protocol(path)  # the store itself answers when the object is written
        return
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConvFilterError(f"{path}: is a directory")
    existing = directory
    while create_dirs and not os.path.lexists(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        if existing == directory:
            raise ConvFilterError(f"{path}: directory {directory} does not exist")
        raise ConvFilterError(f"{path}: cannot create directory {directory} ({existing} is not a directory)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConvFilterError(f"{path}: cannot write to directory {existing}")


def nesting(input_path: str, output_path: str) -> str | None:
    """Why replacing ``output_path`` would destroy ``input_path``, or ``None``.

    Directory outputs (a Zarr store, a folder) are replaced whole: one that is
    the input, holds it or lies inside it must never be, whatever ``--overwrite`` says.
    """
    if stores.is_url(input_path) or stores.is_url(output_path):
        a, b, sep = (stores.normalize(p) if stores.is_url(p) else p for p in (input_path, output_path, "/"))
        if a == b:
            return "is the input"
        if a.startswith(b.rstrip(sep) + sep):
            return f"holds the input {input_path}"
        if b.startswith(a.rstrip(sep) + sep):
            return f"lies inside the input {input_path}"
        return None
    a, b = os.path.realpath(input_path), os.path.realpath(output_path)
    if a == b or same_file(input_path, output_path):
        return "is the input"
    if a.startswith(b.rstrip(os.sep) + os.sep):
        return f"holds the input {input_path}"
    if b.startswith(a.rstrip(os.sep) + os.sep):
        return f"lies inside the input {input_path}"
    return None


def same_file(a: str, b: str) -> bool:
    """True when both paths exist and name the same file."""
    if stores.is_url(a) or stores.is_url(b):
        return stores.is_url(a) and stores.is_url(b) and stores.normalize(a) == stores.normalize(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_image(
    path: str,
    image: Image.Image | np.ndarray,
    fmt: str,
    *,
    dpi: tuple | None = None,
    replace: bool = True,
    claim: str | None = None,
    **params,
) -> None:
    """Encode ``image`` (see :func:`save_image`) as ``fmt`` and move it into place at ``path``.

    The image is written to a temporary file (``.convfilter-*.part``) in the
    same directory, flushed, then renamed over ``path``, so readers only ever
    see the old file or the complete new one; on any failure the temporary
    file is removed and the old file is untouched. ``dpi`` is stored where the
    format has a place for it. With ``replace=False`` an existing ``path`` is
    never replaced, even one created while encoding: the complete file is
    hard-linked into place, which fails if the name is taken (``claim``: see
    :func:`convfilter.io.atomic.move_into_place`).
    """
    if dpi and fmt in FORMATS_WITH_DPI:
        params["dpi"] = dpi
    with atomic_file(path, replace=replace, errors=ENCODE_ERRORS, claim=claim) as handle:
        save_image(handle, image, fmt, **params)


def save_image(fp: BinaryIO, image: Image.Image | np.ndarray, fmt: str, **params) -> None:
    """Encode ``image`` as ``fmt`` to ``fp``; ``params`` are Pillow's save options.

    ``image`` is a Pillow image or its pixels as a NumPy array (``H x W``,
    or ``H x W x C`` for ``LA``, ``RGB``, ``RGBA``). PNG pixels are written by
    libpng (:mod:`convfilter.io.png`, with PNG's ``compress_level`` and ``dpi``
    options), everything else by Pillow.
    """
    if fmt == "PNG" and isinstance(image, Image.Image) and image.mode in PNG_MODES:
        image = np.asarray(image)
    if fmt == "PNG" and isinstance(image, np.ndarray) and png_mode(image) is not None:
        write_png(fp, image, **params)
        return
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image.save(fp, format=fmt, **params)
