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

Each file goes through the stages of :mod:`convfilter.run.files`, as a single
file does: :func:`~convfilter.run.files.plan_output` (in :func:`check_jobs`),
:func:`~convfilter.run.files.read_input` and
:func:`~convfilter.run.files.output_target` (decoding),
:func:`~convfilter.engine.conv.filter_batch` on all the channels of the images of
one size together, and :func:`~convfilter.run.files.write_output` (encoding).

A bad file never stops the others: its result has status ``failed`` and the
one-line ``<file>: <problem>`` message a :class:`ConvFilterError` carries.
"""

from __future__ import annotations

import io
import os
import string
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from convfilter.io.atomic import exists_message
from convfilter.io.color import resample_alpha
from convfilter.engine.conv import check_border_use, check_fits, check_kernel, filter_batch, orient_kernel
from convfilter.errors import ConvFilterError, one_line
from convfilter.ops.geometry import check_padding, standardize_pair
from convfilter.io.images import (
    DEFAULT_MAX_PIXELS,
    ENCODE_ERRORS,
    check_depth,
    check_depth_value,
    check_quality,
    header_pixels,
    output_format,
    save_image,
)
from convfilter.io.matrices import format_matrix, is_matrix_path
from convfilter.engine.model import preload_for
from convfilter.run.files import (
    FilterResult,
    InputData,
    OutputPlan,
    _check_count,
    filter_pixels,
    output_target,
    plan_output,
    read_input,
    render_output,
    renders_in_tiles,
    save_params,
    write_output,
)
from convfilter.io.pixels import resolve_range
from convfilter.engine.tiles import DEFAULT_TILE_SIZE, check_tile_size

STDIO = "-"
STDIN_NAME = "<stdin>"
TEMPLATE_FIELDS = ("dir", "stem", "name", "ext", "kernel")
WRITTEN, FAILED, SKIPPED = "written", "failed", "skipped"
MAX_HELD_PIXELS = 1 << 27
"""Pixels of the images a batch holds at once (decoding, waiting for the model, encoding), by their
headers: many 8-bit 20000x20000 scans would otherwise be decoded ahead, 400 MB each. A larger image
still runs, alone."""


class PlanError(ValueError):
    """The outputs cannot be planned as asked (two inputs, one output; a bad template)."""


@dataclass
class Settings:
    """Everything that is the same for every file of a run (validated by :func:`make_settings`).

    ``kernel`` holds the weights the Conv2D gets (already flipped for
    ``convolve``); ``range_mode`` is resolved, ``range_request`` is what was
    asked (matrix outputs refuse anything but ``auto``).
    """

    kernel: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: str = "valid"
    dilation: tuple[int, int] = (1, 1)
    bias: float = 0.0
    range_mode: str = "clip"
    depth: int | str | None = None
    border: str = "zero"
    color: bool = False
    frame: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    quality: int | None = None
    png_compression: int | None = 1
    overwrite: bool = False
    range_request: str = "auto"
    tile_size: int | None = DEFAULT_TILE_SIZE


def make_settings(
    kernel: np.ndarray,
    *,
    stride: int | Sequence[int] = (1, 1),
    padding: str = "valid",
    dilation: int | Sequence[int] = (1, 1),
    bias: float = 0.0,
    range_mode: str = "auto",
    depth: int | str | None = None,
    border: str = "zero",
    convolve: bool = False,
    color: bool = False,
    frame: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int | None = None,
    png_compression: int | None = 1,
    overwrite: bool = False,
    tile_size: int | None = DEFAULT_TILE_SIZE,
) -> Settings:
    """Validate the run's arguments (``ValueError`` if one is bad) and resolve ``range_mode='auto'``.

    The arguments are those of :func:`convfilter.run.files.filter_file`, plus
    ``png_compression``, zlib's level 0..9 for PNG outputs (``None``: Pillow's
    default, 6), and ``overwrite``, which allows replacing existing outputs.
    ``tile_size``: images whose output is larger than ``tile_size`` x
    ``tile_size`` are filtered in tiles (bit-identical, see :mod:`convfilter.engine.tiles`);
    ``None`` filters every image at once (keeping all raw values, as ``--compare`` needs).
    """
    grid = orient_kernel(check_kernel(kernel), bool(convolve))
    bias = float(bias)
    if not np.isfinite(bias):
        raise ValueError(f"bias must be a finite number, got {bias!r}")
    padding = check_padding(padding)
    if png_compression is not None and not 0 <= png_compression <= 9:
        raise ValueError(f"PNG compression must be 0..9, got {png_compression!r}")
    _check_count(max_pixels, "max_pixels", 1)
    _check_count(frame, "frame", 0)
    if quality is not None:
        check_quality("", "JPEG", quality)
    if tile_size is not None:
        check_tile_size(tile_size)
    return Settings(
        kernel=grid,
        stride=standardize_pair(stride, "stride"),
        padding=padding,
        dilation=standardize_pair(dilation, "dilation"),
        bias=bias,
        range_mode=resolve_range(range_mode, grid),
        depth=check_depth_value(depth),
        border=check_border_use(border, padding),
        color=bool(color),
        frame=frame,
        max_pixels=max_pixels,
        quality=quality,
        png_compression=png_compression,
        overwrite=overwrite,
        range_request=range_mode,
        tile_size=tile_size,
    )


@dataclass
class Job:
    """One input and the output planned for it; ``error``/``skip``/``plan`` are decided before decoding.

    ``format`` is the output's format by extension (``png``, ``npy`` ...)
    where the name does not say it (standard output); ``usage`` marks an
    ``error`` that comes from the options rather than the file.
    """

    input: str
    output: str | None
    format: str | None = None
    error: str | None = None
    skip: bool = False
    plan: OutputPlan | None = None
    usage: bool = False


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
    exception: BaseException | None = field(default=None, repr=False)

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
    """File extensions (lower case, with the dot) that ``--recursive`` picks: Pillow's and ``.npy``.

    ``.csv`` and ``.txt`` matrices are taken only when named: directories
    often hold text files that are no matrices.
    """
    Image.init()
    images = {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return frozenset(images | {".npy"})


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
    """Decide, without decoding, which jobs fail or are skipped; sets ``error``/``skip``/``plan``.

    Every check of :func:`convfilter.run.files.plan_output` (format, depth,
    quality, matrix outputs, writable directory, output is the input), with
    the directory created first if ``make_dirs``; then that the output is no
    input of the run, and what to do with an existing output: skip it with
    ``skip_existing``, replace it with ``settings.overwrite``, otherwise fail.
    A ``ValueError`` (an option the output cannot honour) fails its job with
    ``usage`` set.
    """
    inputs = {_key(job.input) for job in jobs if job.input != STDIO}
    for job in jobs:
        if job.error is not None or job.output is None:
            continue
        try:
            job.plan = _check_job(job, settings, inputs, skip_existing, make_dirs)
        except ConvFilterError as exc:
            job.error = str(exc)
        except ValueError as exc:
            job.error, job.usage = str(exc), True


def _check_job(
    job: Job, settings: Settings, inputs: set[str], skip_existing: bool, make_dirs: bool
) -> OutputPlan:
    output = job.output
    if output == STDIO:
        return stdout_plan(job.format or "png", settings)
    if is_matrix_path(output) and settings.range_request != "auto":
        raise ValueError(
            f"{output}: range {settings.range_request!r} applies to image outputs; "
            "a matrix file holds raw floats"
        )
    if make_dirs:
        parent = os.path.dirname(output)
        try:
            if parent:
                os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            raise ConvFilterError(f"{output}: cannot create directory {parent} ({exc.strerror})") from None
    plan = plan_output(
        job.input,
        output,
        settings.range_mode,
        settings.depth,
        quality=settings.quality,
        color=settings.color,
    )
    if _key(output) in inputs:
        raise ConvFilterError(f"{output}: is an input of this run; refusing to overwrite it")
    if os.path.lexists(output):
        if skip_existing:
            job.skip = True
        elif not settings.overwrite:
            raise ConvFilterError(exists_message(output))
    return plan


def stdout_plan(ext: str, settings: Settings) -> OutputPlan:
    """The output plan for standard output in the format of extension ``ext`` (``png``, ``npy`` ...)."""
    if is_matrix_path(f"x.{ext}"):
        for name, value in (
            ("depth", settings.depth),
            ("quality", settings.quality),
            ("color", settings.color or None),
            ("range", None if settings.range_request == "auto" else settings.range_request),
        ):
            if value is not None:
                shown = f"{name} {value!r}" if name == "range" else name
                raise ValueError(f"{STDIO}: {shown} applies to image outputs; a matrix file holds raw floats")
        return OutputPlan(STDIO, None, None, settings.range_mode)
    fmt = output_format(f"x.{ext}")
    check_quality(STDIO, fmt, settings.quality)
    if settings.depth is not None:
        check_depth(STDIO, fmt, settings.depth)
    return OutputPlan(STDIO, fmt, settings.depth, settings.range_mode, settings.quality)


@dataclass
class _Decoded:
    """A decoded input, checked against the kernel and the output format before the model runs."""

    data: InputData
    depth: int | str
    out_mode: str | None
    out_shape: tuple[int, int]
    tiled: bool = False


class BatchRunner:
    """Run planned jobs: decode and encode in ``workers`` threads, the model on same-size batches.

    Every channel of every image of one size goes through the Conv2D in one
    batch (an RGB image with ``color`` is three channels). Iterate
    :meth:`run` for one :class:`FileResult` per job (jobs decided by
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
        max_held_pixels: int = MAX_HELD_PIXELS,
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
        self.max_held_pixels = max_held_pixels
        self.held: dict[tuple[str, str | None], int] = {}
        self.peak_held_pixels = 0
        self._sizes: dict[tuple[str, str | None], int] = {}

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
        for result in self._process(todo):
            self.held.pop((result.input, result.output), None)
            yield result

    def _may_start(self, job: Job) -> bool:
        """Whether ``job`` may start decoding now: its image (by header) fits in the pixel budget.

        Images are counted from the start of their decode until their result
        is reported; one image always may start when none is held, however large.
        """
        key = (job.input, job.output)
        size = self._sizes.get(key)
        if size is None:
            peek = job.input != STDIO and not is_matrix_path(job.input)
            size = self._sizes[key] = header_pixels(job.input, self.settings.max_pixels) if peek else 0
        if self.held and sum(self.held.values()) + size > self.max_held_pixels:
            return False
        self.held[key] = size
        self.peak_held_pixels = max(self.peak_held_pixels, sum(self.held.values()))
        return True

    def _process(self, todo: deque[Job]) -> Iterator[FileResult]:
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="convfilter")
        decoding: deque[tuple[Job, Future]] = deque()
        encoding: set[Future] = set()
        groups: dict[tuple[int, int], list[tuple[Job, _Decoded]]] = {}
        window = 2 * self.batch_size + 2 * self.workers  # images held at once: decoded, grouped, encoding
        stopped = False
        try:
            while True:
                while (
                    todo
                    and len(decoding) + _count(groups) + len(encoding) < window
                    and self._may_start(todo[0])
                ):
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
                        decoded = future.result()
                    except (ConvFilterError, MemoryError) as exc:
                        yield _failed(job, exc, "out of memory decoding it")
                        if self.fail_fast:
                            stopped = True
                            break
                        continue
                    groups.setdefault(decoded.data.shape, []).append((job, decoded))
                    if self._batch_full(groups) or not (todo or decoding):
                        encoding.update(self._filter_groups(groups, pool))
                elif groups:
                    encoding.update(self._filter_groups(groups, pool))
                elif encoding:
                    wait(encoding, return_when=FIRST_COMPLETED)
                elif todo:  # waited for the pixel budget: nothing is in flight now, start the next
                    self.held.clear()
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
        pixels = sum(decoded.data.channels.size for items in groups.values() for _, decoded in items)
        return _count(groups) >= self.batch_size or pixels >= self.max_batch_pixels

    def _filter_groups(self, groups: dict, pool: ThreadPoolExecutor) -> list[Future]:
        """Run the model on all the channels of each group of same-size images; hand results to encoders."""
        s = self.settings
        futures = []
        for items in groups.values():
            if items[0][1].tiled:  # one image at a time, mapped to pixels tile by tile
                futures.extend(self._filter_tiled(job, decoded, pool) for job, decoded in items)
                continue
            stack = np.concatenate([decoded.data.channels for _, decoded in items])
            try:
                values = filter_batch(
                    stack,
                    s.kernel,
                    s.stride,
                    s.padding,
                    s.dilation,
                    s.bias,
                    border=s.border,
                    tile_size=s.tile_size,
                )
            except Exception as exc:  # e.g. TensorFlow cannot allocate a large batch
                if len(items) > 1:
                    futures.extend(self._filter_groups({None: items[:1]}, pool))
                    futures.extend(self._filter_groups({None: items[1:]}, pool))
                    continue
                futures.append(_model_failed(items[0][0], exc))
                continue
            start = 0
            for job, decoded in items:
                count = len(decoded.data.channels)
                futures.append(pool.submit(self._encode, job, decoded, values[start : start + count]))
                start += count
        groups.clear()
        return futures

    def _filter_tiled(self, job: Job, decoded: _Decoded, pool: ThreadPoolExecutor) -> Future:
        """A large image output: filtered and mapped tile by tile (no full-size float copy), then encoded."""
        s = self.settings
        try:
            rendered = filter_pixels(
                decoded.data,
                job.plan,
                decoded.depth,
                s.kernel,
                s.stride,
                s.padding,
                s.dilation,
                s.bias,
                border=s.border,
                tile_size=s.tile_size,
            )
        except Exception as exc:  # e.g. TensorFlow cannot allocate a tile
            return _model_failed(job, exc)
        return pool.submit(self._encode, job, decoded, None, rendered)

    def _decode(self, job: Job) -> _Decoded:
        """Read the input, then check it fits the kernel and that the output can store it."""
        s = self.settings
        source = io.BytesIO(self.stdin_data or b"") if job.input == STDIO else None
        name = _shown(job.input)
        data = read_input(
            name,
            color=s.color,
            frame=s.frame,
            max_pixels=s.max_pixels,
            source=source,
            on_open=preload_for,
            keep_dtype=True,
        )
        try:
            out_shape = check_fits(data.shape, s.kernel.shape, s.stride, s.padding, s.dilation)
        except ConvFilterError as exc:
            raise type(exc)(f"{name}: {exc}") from None
        depth, out_mode = output_target(job.plan, data, name)
        conv = (s.kernel.shape, s.stride, s.padding, s.dilation)
        tiled = renders_in_tiles(job.plan, depth, data.shape, *conv, s.tile_size)
        if not tiled:  # 8/16-bit channels stay integers only where no full float copy is made
            data.channels = data.channels.astype(np.float32, copy=False)
        return _Decoded(data, depth, out_mode, out_shape, tiled)

    def _encode(
        self,
        job: Job,
        decoded: _Decoded,
        values: np.ndarray | None,
        rendered: tuple[np.ndarray, float, float] | None = None,
    ) -> FileResult:
        """Write (or encode for standard output) ``values``, or the ``(pixels, min, max)`` of ``rendered``."""
        s, data, plan = self.settings, decoded.data, job.plan
        pixels, minimum, maximum = rendered or (None, None, None)
        alpha = None
        if data.alpha is not None:
            alpha = resample_alpha(data.alpha, s.kernel.shape, s.stride, s.padding, s.dilation)
        params = png_params(s.png_compression) if plan.fmt == "PNG" else {}
        encoded = None
        try:
            if job.output == STDIO:
                picture, used = render_output(
                    plan, data, values, decoded.depth, decoded.out_mode, alpha, pixels=pixels
                )
                if plan.fmt is None:
                    encoded = encode_matrix(picture, job.format)
                else:
                    encoded = encode_image(picture, plan.fmt, **save_params(plan, data, **params))
            else:
                used = write_output(
                    plan,
                    data,
                    values,
                    decoded.depth,
                    decoded.out_mode,
                    alpha,
                    replace=s.overwrite,
                    pixels=pixels,
                    **params,
                )
        except ConvFilterError as exc:
            return FileResult(job.input, job.output, FAILED, data.shape, error=str(exc), exception=exc)
        detail = FilterResult(
            input=_shown(job.input),
            output=job.output,
            input_shape=data.shape,
            output_shape=decoded.out_shape,
            range_mode=used,
            depth=decoded.depth,
            minimum=float(np.nanmin(values)) if rendered is None else minimum,
            maximum=float(np.nanmax(values)) if rendered is None else maximum,
            mode=decoded.out_mode or "F",
            channels=len(data.channels),
            frame=data.frame,
            frames=data.frames,
            input_values=data.channels,
            values=values,
            input_max=data.max_value,
        )
        return FileResult(
            job.input, job.output, WRITTEN, data.shape, decoded.out_shape, detail=detail, data=encoded
        )


def _failed(job: Job, exc: BaseException, memory_message: str) -> FileResult:
    """A failed decode: a :class:`ConvFilterError` names its file already, a ``MemoryError`` does not."""
    if isinstance(exc, ConvFilterError):
        message = str(exc)
    else:
        message = f"{_shown(job.input)}: {memory_message}"
    return FileResult(job.input, job.output, FAILED, error=message, exception=exc)


def png_params(level: int | None) -> dict:
    """The PNG save option for ``--png-compression`` ``level`` (``None``: the default, 6).

    What each level does is in :mod:`convfilter.io.png`: 0 stores, 1 is the
    fastest (OpenCV's settings), 2..9 are slower and smaller.
    """
    return {} if level is None else {"compress_level": level}


def encode_image(picture: Image.Image | np.ndarray, fmt: str, **params) -> bytes:
    """Encode ``picture`` as ``fmt`` in memory (for standard output); ``params`` as in ``save_image``."""
    buffer = io.BytesIO()
    try:
        save_image(buffer, picture, fmt, **params)
    except ENCODE_ERRORS as exc:
        raise ConvFilterError(f"{STDIO}: cannot encode {fmt} ({one_line(exc)})") from None
    return buffer.getvalue()


def encode_matrix(matrix: np.ndarray, ext: str) -> bytes:
    """``matrix`` as the raw float32 bytes of a ``.npy``, ``.csv`` or ``.txt`` file (for standard output)."""
    values = np.asarray(matrix, dtype=np.float32)
    if ext == "npy":
        buffer = io.BytesIO()
        np.save(buffer, values, allow_pickle=False)
        return buffer.getvalue()
    return format_matrix(values, "," if ext == "csv" else " ").encode("ascii")


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


def _model_failed(job: Job, exc: Exception) -> Future:
    """The finished result of a job whose model run raised ``exc``."""
    message = f"{_shown(job.input)}: the model failed ({one_line(exc)})"
    return _done(FileResult(job.input, job.output, FAILED, error=message))


def _count(groups: dict) -> int:
    return sum(len(items) for items in groups.values())


def _shown(path: str) -> str:
    return STDIN_NAME if path == STDIO else path
