"""Reading images as grayscale float arrays and writing pixels atomically.

Grayscale rule: 16-bit grayscale (``I;16``, ``I;16B``, ``I;16L``) and 32-bit
integer (``I``) images keep their values in a 0..65535 scale; float images
(``F``) keep their values in a 0..1 scale; every other mode goes through
Pillow's ``convert("L")`` (ITU-R 601-2 luma, ``L = R*299/1000 + G*587/1000 +
B*114/1000``) and uses a 0..255 scale. EXIF orientation is applied first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from convfilter.errors import ConvFilterError

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
COMMON_EXTENSIONS = ".png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp"
FORMATS_WITH_16_BIT = ("PNG", "TIFF")
FORMATS_WITH_DPI = ("PNG", "JPEG", "TIFF", "BMP")


@dataclass
class GrayImage:
    """A decoded image: ``pixels`` (``H x W``) in a ``0..max_value`` scale.

    ``pixels`` are float32 unless read with ``keep_dtype`` (see :func:`read_gray`).
    """

    pixels: np.ndarray
    max_value: float
    mode: str
    info: dict = field(default_factory=dict)

    @property
    def depth(self) -> int:
        """8 for images read in the 0..255 scale, 16 for the higher-precision ones."""
        return 8 if self.max_value == 255 else 16


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


def check_depth(path: str, fmt: str, depth: int) -> None:
    """Raise :class:`ConvFilterError` if ``fmt`` cannot store pixels of ``depth`` bits."""
    if depth == 16 and fmt not in FORMATS_WITH_16_BIT:
        raise ConvFilterError(f"{path}: {fmt} cannot store 16-bit pixels; use .png or .tif")


def read_gray(
    path: str,
    *,
    keep_dtype: bool = False,
    max_pixels: int | None = None,
    on_open: Callable[[], None] | None = None,
) -> GrayImage:
    """Decode ``path`` and convert it to grayscale by the module's rule.

    ``pixels`` are float32 unless ``keep_dtype``: then they keep the decoded
    integer type (``uint8`` for the 0..255 scale, ``uint16``/``int32`` for
    16-bit and ``I`` images; ``F`` images are float32 anyway), a quarter of
    the memory for 8-bit scans. ``max_pixels`` replaces Pillow's
    decompression-bomb limit: images with more pixels are refused before
    decoding; ``None`` keeps Pillow's own limit. ``on_open`` is called once
    the file has opened as an image within the limit, before the (slow) decode.
    Every failure is a :class:`ConvFilterError` whose message starts with ``path``.
    """
    try:
        with _pixel_limit(max_pixels), Image.open(path) as img:
            if max_pixels is not None and img.width * img.height > max_pixels:
                raise ConvFilterError(
                    f"{path}: image has {img.width * img.height} pixels ({img.width}x{img.height}), "
                    f"more than the limit of {max_pixels} (--max-pixels)"
                )
            if on_open is not None:
                on_open()
            img = ImageOps.exif_transpose(img)
            info = dict(img.info)
            gray = _to_gray(img, info)
            if not keep_dtype:
                gray.pixels = gray.pixels.astype(np.float32, copy=False)
            return gray
    except FileNotFoundError:
        raise ConvFilterError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConvFilterError(f"{path}: is a directory, not an image file") from None
    except PermissionError:
        raise ConvFilterError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise ConvFilterError(f"{path}: not an image file Pillow can read") from None
    except Image.DecompressionBombError as exc:
        raise ConvFilterError(f"{path}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConvFilterError(f"{path}: cannot decode image ({_one_line(exc)})") from None


@contextlib.contextmanager
def _pixel_limit(max_pixels: int | None):
    """Switch Pillow's decompression-bomb check off while ``max_pixels`` (checked by us) applies."""
    if max_pixels is None:
        yield
        return
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


BAND_PIXELS = 1 << 24
"""Images above this many pixels are copied out of Pillow in bands of rows (see :func:`_to_array`)."""


def _to_array(img: Image.Image) -> np.ndarray:
    """``np.asarray(img)`` without its transient copies for large images.

    NumPy reads a Pillow image through ``tobytes()``, which joins encoded
    chunks: about two extra copies of the image at once (800 MB for a
    20000x20000 8-bit scan). Large images are copied band by band instead.
    """
    if img.width * img.height <= BAND_PIXELS:
        return np.asarray(img)
    img.load()
    rows = max(1, BAND_PIXELS // 4 // img.width)
    first = np.asarray(img.crop((0, 0, img.width, min(rows, img.height))))
    pixels = np.empty((img.height, img.width), dtype=first.dtype.newbyteorder("="))
    pixels[: first.shape[0]] = first
    for top in range(first.shape[0], img.height, rows):
        bottom = min(top + rows, img.height)
        pixels[top:bottom] = np.asarray(img.crop((0, top, img.width, bottom)))
    return pixels


def _to_gray(img: Image.Image, info: dict) -> GrayImage:
    """Pixels in their decoded dtype (uint8, uint16, int32 or float32); see :func:`read_gray`."""
    if img.mode in SIXTEEN_BIT_MODES:
        pixels = _to_array(img)
        native = pixels.dtype.newbyteorder("=")
        return GrayImage(pixels.astype(native, copy=False), 65535.0, img.mode, info)
    if img.mode == "F":
        return GrayImage(_to_array(img).astype(np.float32, copy=False), 1.0, img.mode, info)
    mode = img.mode
    return GrayImage(_to_array(img if mode == "L" else img.convert("L")), 255.0, mode, info)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def check_writable(path: str) -> None:
    """Raise :class:`ConvFilterError` if ``path`` cannot be created or replaced."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ConvFilterError(f"{path}: is a directory")
    if not os.path.isdir(directory):
        raise ConvFilterError(f"{path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConvFilterError(f"{path}: cannot write to directory {directory}")


def same_file(a: str, b: str) -> bool:
    """True when both paths exist and name the same file."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def write_pixels(path: str, pixels: np.ndarray, fmt: str, *, dpi: tuple | None = None, **params) -> None:
    """Encode ``pixels`` (``uint8`` or ``uint16``) as ``fmt`` and move it into place at ``path``.

    The image is written to a temporary file in the same directory, flushed,
    then renamed over ``path``, so readers only ever see the old file or the
    complete new one; on any failure the temporary file is removed and the
    old file is untouched.
    """
    image = Image.fromarray(pixels)
    if dpi and fmt in FORMATS_WITH_DPI:
        params["dpi"] = dpi
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".convfilter-", suffix=".part", dir=directory)
    except OSError as exc:
        raise ConvFilterError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format=fmt, **params)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError | ValueError):
            raise ConvFilterError(f"{path}: cannot write ({_one_line(exc)})") from None
        raise


def _mode_for(path: str) -> int:
    """Keep an existing file's permissions; new files get 0666 less the umask, like open()."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
