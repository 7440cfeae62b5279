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
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from convfilter.errors import ConvFilterError

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
COMMON_EXTENSIONS = ".png, .jpg, .jpeg, .tif, .tiff, .bmp, .webp"
FORMATS_WITH_16_BIT = ("PNG", "TIFF")
FORMATS_WITH_DPI = ("PNG", "JPEG", "TIFF", "BMP")


@dataclass
class GrayImage:
    """A decoded image: ``pixels`` (``H x W`` float32) in a ``0..max_value`` scale."""

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


def read_gray(path: str, source: BinaryIO | None = None) -> GrayImage:
    """Decode ``path`` and convert it to grayscale by the module's rule.

    ``source``, if given, is an open binary file (standard input, bytes in
    memory) read instead of ``path``; ``path`` then only names it in messages.
    Every failure is a :class:`ConvFilterError` whose message starts with ``path``.
    """
    try:
        with Image.open(path if source is None else source) as img:
            img = ImageOps.exif_transpose(img)
            info = dict(img.info)
            return _to_gray(img, info)
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


def _to_gray(img: Image.Image, info: dict) -> GrayImage:
    if img.mode in SIXTEEN_BIT_MODES:
        return GrayImage(np.asarray(img).astype(np.float32), 65535.0, img.mode, info)
    if img.mode == "F":
        return GrayImage(np.asarray(img, dtype=np.float32), 1.0, img.mode, info)
    mode = img.mode
    return GrayImage(np.asarray(img.convert("L"), dtype=np.float32), 255.0, mode, info)


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


def exists_message(path: str) -> str:
    """The one-line message for an output that exists and may not be replaced."""
    return f"{path}: already exists (use --overwrite to replace it or --skip-existing to keep it)"


def write_pixels(
    path: str,
    pixels: np.ndarray,
    fmt: str,
    *,
    dpi: tuple | None = None,
    replace: bool = True,
    **params,
) -> None:
    """Encode ``pixels`` (``uint8`` or ``uint16``) as ``fmt`` and move it into place at ``path``.

    The image is written to a temporary file in the same directory, flushed,
    then renamed over ``path``, so readers only ever see the old file or the
    complete new one; on any failure the temporary file is removed and the
    old file is untouched. With ``replace=False`` an existing ``path`` is
    never replaced, even one created while encoding: the complete file is
    hard-linked into place, which fails if the name is taken.
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
        if replace:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError | ValueError):
            raise ConvFilterError(f"{path}: cannot write ({_one_line(exc)})") from None
        raise


def _link_new(tmp: str, path: str) -> None:
    """Give the complete file ``tmp`` the name ``path`` only if no file has it."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise ConvFilterError(exists_message(path)) from None
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(path):
            raise ConvFilterError(exists_message(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _mode_for(path: str) -> int:
    """Keep an existing file's permissions; new files get 0666 less the umask, like open()."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
