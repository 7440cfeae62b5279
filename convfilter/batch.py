"""Many images in one call: plan every output first, then decode, filter and encode with overlap.

The steps, each usable on its own:

* :func:`expand_inputs` turns paths (and, with ``recursive``, directories)
  into a list of input files;
* :func:`plan_outputs` names each input's output (``output_dir``, ``suffix``,
  ``fmt`` or an output ``template``) and refuses, before any work, two inputs
  that would write the same file;
* :func:`check_jobs` does every check that needs no decoding (format, depth,
  directory, an existing output, an output that is an input);
* :class:`BatchRunner` decodes and encodes in worker threads while the main
  thread runs the one Keras model on batches of same-size images, and yields
  one :class:`FileResult` per file.

A bad file never stops the others: its result has status ``failed`` and the
one-line ``<file>: <problem>`` message a :class:`ConvFilterError` carries.
"""

from __future__ import annotations

import io
import os
import string
import zlib
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from convfilter.core import check_fits, check_kernel, filter_batch
from convfilter.errors import ConvFilterError
from convfilter.geometry import check_padding, standardize_pair
from convfilter.imageio import (
    FORMATS_WITH_16_BIT,
    FORMATS_WITH_DPI,
    GrayImage,
    check_depth,
    check_writable,
    exists_message,
    output_format,
    read_gray,
    same_file,
    write_pixels,
)
from convfilter.pipeline import FilterResult
from convfilter.pixels import resolve_range, to_pixels

STDIO = "-"
STDIN_NAME = "<stdin>"
TEMPLATE_FIELDS = ("dir", "stem", "name", "ext", "kernel")
WRITTEN, FAILED, SKIPPED = "written", "failed", "skipped"


class PlanError(ValueError):
    """The outputs cannot be planned as asked (two inputs, one output; a bad template)."""


@dataclass
class Settings:
    """Everything that is the same for every file of a run (validated by :func:`make_settings`)."""

    kernel: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation: tuple[int, int] = (1, 1)
    bias: float = 0.0
    range_mode: str = "clip"
    depth: int | None = None
    png_compression: int | None = 1
    overwrite: bool = False


def make_settings(
    kernel: np.ndarray,
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    bias: float = 0.0,
    range_mode: str = "auto",
    depth: int | None = None,
    png_compression: int | None = 1,
    overwrite: bool = False,
) -> Settings:
    """Validate the run's arguments (``ValueError`` if one is bad) and resolve ``range_mode='auto'``.

    ``png_compression`` is zlib's level 0..9 for PNG outputs (``None``: Pillow's
    default, 6); ``overwrite`` allows replacing existing outputs.
    """
    grid = check_kernel(kernel)
    bias = float(bias)
    if not np.isfinite(bias):
        raise ValueError(f"bias must be a finite number, got {bias!r}")
    if depth not in (None, 8, 16):
        raise ValueError(f"depth must be 8 or 16, got {depth!r}")
    if png_compression is not None and not 0 <= png_compression <= 9:
        raise ValueError(f"PNG compression must be 0..9, got {png_compression!r}")
    return Settings(
        kernel=grid,
        stride=standardize_pair(stride, "stride"),
        padding=check_padding(padding),
        dilation=standardize_pair(dilation, "dilation"),
        bias=bias,
        range_mode=resolve_range(range_mode, grid),
        depth=depth,
        png_compression=png_compression,
        overwrite=overwrite,
    )


@dataclass
class Job:
    """One input and the output planned for it; ``error``/``skip`` are decided before decoding."""

    input: str
    output: str | None
    format: str | None = None
    error: str | None = None
    skip: bool = False


@dataclass
class FileResult:
    """What happened to one file: ``status`` is ``written``, ``failed`` or ``skipped``."""

    input: str
    output: str | None
    status: str
    input_shape: tuple[int, int] | None = None
    output_shape: tuple[int, int] | None = None
    error: str | None = None
    detail: FilterResult | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        """The fields a ``--json`` line shows."""
        return {
            "input": self.input,
            "output": self.output,
            "status": self.status,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "output_shape": list(self.output_shape) if self.output_shape else None,
            "error": self.error,
        }


def readable_extensions() -> frozenset[str]:
    """File extensions (lower case, with the dot) of the formats Pillow can open."""
    Image.init()
    return frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def expand_inputs(
    paths: Iterable[str], *, recursive: bool = False, exclude: Sequence[str] = ()
) -> list[tuple[str, str | None]]:
    """Input files as ``(path, root)``; ``root`` is the directory a file was found under, else ``None``.

    With ``recursive``, a directory stands for the image files below it
    (by extension, sorted, hidden files and directories left out, symbolic
    links to directories not followed, the directories in ``exclude`` left
    out). A path given twice is kept once. Without ``recursive`` a directory
    is kept as is (planning reports it).
    """
    excluded = {_key(path) for path in exclude}
    extensions = readable_extensions()
    seen: set[str] = set()
    found: list[tuple[str, str | None]] = []

    def add(path: str, root: str | None) -> None:
        key = _key(path)
        if key not in seen:
            seen.add(key)
            found.append((path, root))

    for path in paths:
        if recursive and path != STDIO and os.path.isdir(path):
            for file in _walk_images(path, extensions, excluded):
                add(file, path)
        else:
            add(path, None)
    return found


def _walk_images(root: str, extensions: frozenset[str], excluded: set[str]) -> Iterator[str]:
    problems: list[OSError] = []
    for directory, subdirs, files in os.walk(root, onerror=problems.append):
        subdirs[:] = sorted(
            d for d in subdirs if not d.startswith(".") and _key(os.path.join(directory, d)) not in excluded
        )
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                yield os.path.join(directory, name)
    for problem in problems:  # an unreadable directory is reported, not silently left out
        yield problem.filename


def _key(path: str) -> str:
    """A comparable name for ``path``: absolute, with the directory's symbolic links resolved."""
    absolute = os.path.abspath(path)
    head, tail = os.path.split(absolute)
    return os.path.normcase(os.path.join(os.path.realpath(head), tail))


def check_template(template: str) -> None:
    """Raise :class:`PlanError` unless ``template`` uses only the fields in ``TEMPLATE_FIELDS``."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise PlanError(f"output template {template!r}: {exc}") from None
    fields = ", ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS or spec or conversion:
            raise PlanError(f"output template {template!r}: unknown field {{{name}}}; use {fields}")


def plan_outputs(
    inputs: Sequence[tuple[str, str | None]],
    *,
    kernel_name: str,
    output_dir: str | None = None,
    template: str | None = None,
    suffix: str = "",
    fmt: str | None = None,
) -> list[Job]:
    """Name the output of every input and refuse two inputs that would write one file.

    Without ``template`` the output is ``<output_dir>/<stem><suffix>.<ext>``,
    files found under a directory keeping their place below it; ``ext`` is
    ``fmt`` or the input's extension. A ``template`` (fields ``{dir}``,
    ``{stem}``, ``{name}``, ``{ext}``, ``{kernel}``) names the output instead,
    relative to ``output_dir`` if one is given. Raises :class:`PlanError`.
    """
    if template is not None:
        check_template(template)
    jobs: list[Job] = []
    for path, root in inputs:
        if root is None and os.path.isdir(path):
            jobs.append(Job(path, None, error=f"{path}: is a directory (use --recursive for its images)"))
            continue
        directory, name = os.path.split(path)
        stem, ext = os.path.splitext(name)
        out_ext = fmt if fmt is not None else ext[1:]
        if template is not None:
            fields = {
                "dir": directory or ".",
                "stem": stem,
                "name": name,
                "ext": out_ext,
                "kernel": kernel_name,
            }
            relative = template.format(**fields)
        else:
            below = os.path.relpath(directory, root) if root is not None else ""
            relative = os.path.join(below, stem + suffix + (f".{out_ext}" if out_ext else ""))
        output = os.path.normpath(os.path.join(output_dir, relative) if output_dir else relative)
        jobs.append(Job(path, output))
    _refuse_collisions(jobs)
    return jobs


def _refuse_collisions(jobs: Sequence[Job]) -> None:
    writers: dict[str, list[Job]] = {}
    for job in jobs:
        if job.output is not None:
            writers.setdefault(_key(job.output), []).append(job)
    clashes = [group for group in writers.values() if len(group) > 1]
    if clashes:
        first = clashes[0]
        more = f" (and {len(clashes) - 1} more outputs)" if len(clashes) > 1 else ""
        raise PlanError(
            f"{first[0].output}: would be written by both {first[0].input} and {first[1].input}{more}; "
            "nothing was done (change the names with --suffix or --output-template)"
        )


def check_jobs(
    jobs: Sequence[Job], settings: Settings, *, skip_existing: bool = False, make_dirs: bool = False
) -> None:
    """Decide, without decoding, which jobs fail or are skipped; sets ``error``/``skip``/``format``.

    Checks the output format and depth, that the directory exists (created
    first if ``make_dirs``) and is writable, that the output is no input of
    the run, and what to do with an existing output: skip it with
    ``skip_existing``, replace it with ``settings.overwrite``, otherwise fail.
    """
    inputs = {_key(job.input) for job in jobs if job.input != STDIO}
    for job in jobs:
        if job.error is not None or job.output is None:
            continue
        try:
            job.format = _check_job(job, settings, inputs, skip_existing, make_dirs)
        except ConvFilterError as exc:
            job.error = str(exc)


def _check_job(job: Job, settings: Settings, inputs: set[str], skip_existing: bool, make_dirs: bool) -> str:
    output = job.output
    fmt = output_format(output if job.format is None else f"x.{job.format}")
    if settings.depth is not None:
        check_depth(output, fmt, settings.depth)
    if output == STDIO:
        return fmt
    if make_dirs:
        parent = os.path.dirname(output)
        try:
            if parent:
                os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise ConvFilterError(f"{output}: cannot create directory {parent} ({exc.strerror})") from None
    check_writable(output)
    if job.input != STDIO and same_file(job.input, output):
        raise ConvFilterError(f"{output}: is the input file; refusing to overwrite it")
    if _key(output) in inputs:
        raise ConvFilterError(f"{output}: is an input of this run; refusing to overwrite it")
    if os.path.lexists(output):
        if skip_existing:
            job.skip = True
        elif not settings.overwrite:
            raise ConvFilterError(exists_message(output))
    return fmt


class BatchRunner:
    """Run planned jobs: decode and encode in ``workers`` threads, the model on same-size batches.

    Iterate :meth:`run` for one :class:`FileResult` per job (jobs decided by
    :func:`check_jobs` first, then the rest as they finish). If the iteration
    stops early (an exception such as ``KeyboardInterrupt``, or the consumer
    closing it), no new file is started, the files being written are
    finished, and their results are in :attr:`unreported`. Files are only
    ever written complete (temporary file, then rename).
    """

    def __init__(
        self,
        jobs: Sequence[Job],
        settings: Settings,
        *,
        workers: int | None = None,
        fail_fast: bool = False,
        batch_size: int = 8,
        max_batch_pixels: int = 2**23,
        stdin_data: bytes | None = None,
    ) -> None:
        self.jobs = list(jobs)
        self.settings = settings
        self.workers = workers or default_workers()
        self.fail_fast = fail_fast
        self.batch_size = max(1, batch_size)
        self.max_batch_pixels = max_batch_pixels
        self.stdin_data = stdin_data
        self.unreported: list[FileResult] = []
        self.not_started = 0

    def run(self) -> Iterator[FileResult]:
        """Yield a :class:`FileResult` for every job (see the class docstring for early stops)."""
        todo: deque[Job] = deque()
        for job in self.jobs:
            if job.error is not None:
                yield FileResult(job.input, job.output, FAILED, error=job.error)
                if self.fail_fast:
                    self.not_started = len(self.jobs) - self.jobs.index(job) - 1
                    return
            elif job.skip:
                yield FileResult(job.input, job.output, SKIPPED)
            else:
                todo.append(job)
        yield from self._process(todo)

    def _process(self, todo: deque[Job]) -> Iterator[FileResult]:
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="convfilter")
        decoding: deque[tuple[Job, Future]] = deque()
        encoding: set[Future] = set()
        groups: dict[tuple[int, int], list[tuple[Job, GrayImage]]] = {}
        window = 2 * self.batch_size + 2 * self.workers  # images held at once: decoded, grouped, encoding
        stopped = False
        try:
            while True:
                while todo and len(decoding) + _count(groups) + len(encoding) < window:
                    job = todo.popleft()
                    decoding.append((job, pool.submit(self._decode, job)))
                for future in [f for f in encoding if f.done()]:
                    encoding.discard(future)
                    result = future.result()
                    yield result
                    stopped = stopped or (self.fail_fast and result.status == FAILED)
                if stopped:
                    break
                if decoding:
                    job, future = decoding.popleft()
                    try:
                        image = future.result()
                        check_fits(
                            image.pixels.shape,
                            self.settings.kernel.shape,
                            self.settings.stride,
                            self.settings.padding,
                            self.settings.dilation,
                        )
                    except (ConvFilterError, MemoryError) as exc:
                        message = (
                            str(exc) if isinstance(exc, ConvFilterError) else "out of memory decoding it"
                        )
                        if not message.startswith(f"{_shown(job.input)}: "):
                            message = f"{_shown(job.input)}: {message}"
                        yield FileResult(job.input, job.output, FAILED, error=message)
                        if self.fail_fast:
                            stopped = True
                            break
                        continue
                    groups.setdefault(image.pixels.shape, []).append((job, image))
                    if self._batch_full(groups) or not (todo or decoding):
                        encoding.update(self._filter_groups(groups, pool))
                elif groups:
                    encoding.update(self._filter_groups(groups, pool))
                elif encoding:
                    wait(encoding, return_when=FIRST_COMPLETED)
                else:
                    return
            # Stopped at the first failure: finish what is being written, start nothing new.
            for _, future in decoding:
                future.cancel()
            self.not_started = len(todo) + len(decoding) + _count(groups)
            for future in list(encoding):
                encoding.discard(future)
                yield future.result()
        finally:
            for _, future in decoding:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
            for future in encoding:
                if future.done() and not future.cancelled() and future.exception() is None:
                    self.unreported.append(future.result())

    def _batch_full(self, groups: dict) -> bool:
        pixels = sum(shape[0] * shape[1] * len(items) for shape, items in groups.items())
        return _count(groups) >= self.batch_size or pixels >= self.max_batch_pixels

    def _filter_groups(self, groups: dict, pool: ThreadPoolExecutor) -> list[Future]:
        """Run the model on each group of same-size images; hand the results to the encoders."""
        s = self.settings
        futures = []
        for items in groups.values():
            stack = np.stack([image.pixels for _, image in items])
            try:
                values = filter_batch(stack, s.kernel, s.stride, s.padding, s.dilation, s.bias)
            except Exception as exc:  # e.g. TensorFlow cannot allocate a large batch
                if len(items) > 1:
                    futures.extend(self._filter_groups({None: items[:1]}, pool))
                    futures.extend(self._filter_groups({None: items[1:]}, pool))
                    continue
                job = items[0][0]
                message = f"{_shown(job.input)}: the model failed ({_one_line(exc)})"
                futures.append(_done(FileResult(job.input, job.output, FAILED, error=message)))
                continue
            for (job, image), result in zip(items, values, strict=True):
                futures.append(pool.submit(self._encode, job, image, result))
        groups.clear()
        return futures

    def _decode(self, job: Job) -> GrayImage:
        if job.input == STDIO:
            return read_gray(STDIN_NAME, source=io.BytesIO(self.stdin_data or b""))
        return read_gray(job.input)

    def _encode(self, job: Job, image: GrayImage, values: np.ndarray) -> FileResult:
        s = self.settings
        fmt = job.format or output_format(job.output)
        depth = s.depth or (16 if image.depth == 16 and fmt in FORMATS_WITH_16_BIT else 8)
        data = None
        try:
            pixels = to_pixels(values, s.range_mode, in_max=image.max_value, depth=depth)
            params = png_params(s.png_compression) if fmt == "PNG" else {}
            dpi = image.info.get("dpi")
            if job.output == STDIO:
                data = encode_image(pixels, fmt, dpi=dpi, **params)
            else:
                write_pixels(job.output, pixels, fmt, dpi=dpi, replace=s.overwrite, **params)
        except ConvFilterError as exc:
            return FileResult(job.input, job.output, FAILED, image.pixels.shape, error=str(exc))
        detail = FilterResult(
            input=_shown(job.input),
            output=job.output,
            input_shape=image.pixels.shape,
            output_shape=values.shape,
            range_mode=s.range_mode,
            depth=depth,
            minimum=float(np.nanmin(values)),
            maximum=float(np.nanmax(values)),
        )
        return FileResult(
            job.input, job.output, WRITTEN, image.pixels.shape, values.shape, detail=detail, data=data
        )


def png_params(level: int | None) -> dict:
    """Pillow's PNG save options for ``--png-compression`` ``level``.

    0 stores without compression; 1 is the fastest setting: zlib level 1 with
    the run-length strategy (as OpenCV's default; on photographs about as
    small as level 6, and faster than level 1 without it); 2..9 are zlib's levels with its
    default strategy, slower and smaller, best on drawings and gradients.
    ``None`` is Pillow's default (level 6).
    """
    if level is None:
        return {}
    if level == 1:
        return {"compress_level": 1, "compress_type": zlib.Z_RLE}
    return {"compress_level": level}


def encode_image(pixels: np.ndarray, fmt: str, *, dpi: tuple | None = None, **params) -> bytes:
    """Encode ``pixels`` as ``fmt`` in memory (for standard output)."""
    if dpi and fmt in FORMATS_WITH_DPI:
        params["dpi"] = dpi
    buffer = io.BytesIO()
    try:
        Image.fromarray(pixels).save(buffer, format=fmt, **params)
    except (OSError, ValueError) as exc:
        raise ConvFilterError(f"{STDIO}: cannot encode {fmt} ({exc})") from None
    return buffer.getvalue()


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _done(result: FileResult) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _count(groups: dict) -> int:
    return sum(len(items) for items in groups.values())


def _shown(path: str) -> str:
    return STDIN_NAME if path == STDIO else path
