"""A job: which files, what operation, how to write the outputs; planned and checked before any work.

A :class:`Job` is plain, picklable data: a list of :class:`FileJob` (one
input and its output each), an operation (:mod:`convfilter.ops.spec`) and
the :class:`OutputSettings` every file shares. Planning is a few steps, each
usable on its own:

* :func:`expand_inputs` turns paths (and, with ``recursive``, directories)
  into a list of input files;
* :func:`plan_outputs` names each input's output (``output_dir``, ``suffix``,
  ``fmt`` or an output ``template``) and refuses, before any work, two inputs
  that would write the same file;
* :func:`check_jobs` does every check that needs no decoding (format, depth,
  directory, an existing output, an output that is an input).

:class:`~convfilter.run.runner.Runner` then runs the job and yields one
:class:`FileResult` per file.
"""

from __future__ import annotations

import os
import stat
import string
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from PIL import Image

from convfilter.engine.tiles import DEFAULT_TILE_SIZE, check_tile_size
from convfilter.errors import ArgumentError, ConvFilterError
from convfilter.io import stores
from convfilter.io.atomic import exists_message
from convfilter.io.images import (
    DEFAULT_MAX_PIXELS,
    check_depth,
    check_depth_value,
    check_quality,
    output_format,
)
from convfilter.io.matrices import is_matrix_path
from convfilter.io.pixels import resolve_range
from convfilter.ops.spec import Operation
from convfilter.run.files import FilterResult, OutputPlan, plan_output

STDIO = "-"
STDIN_NAME = "<stdin>"
TEMPLATE_FIELDS = ("dir", "stem", "name", "ext", "kernel")
WRITTEN, FAILED, SKIPPED = "written", "failed", "skipped"


class PlanError(ArgumentError):
    """The outputs cannot be planned as asked (two inputs, one output; a bad template)."""


def check_count(value: int | None, name: str, minimum: int) -> int | None:
    """``value`` if it is ``None`` or an integer >= ``minimum``, else :class:`ArgumentError`."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ArgumentError(
            f"The `{name}` argument must be an integer >= {minimum} or None. Received: {name}={value!r}"
        )
    return value


@dataclass(frozen=True)
class OutputSettings:
    """How every output of a job is read and written; validated on construction.

    ``range_request`` is ``--range`` as asked (``auto`` is resolved per
    operation, :attr:`Job.range_mode`); ``depth`` 8, 16, ``"32f"`` or ``None``
    (the input's precision where the format can store it); ``png_compression``
    zlib's level 0..9 (``None``: Pillow's default, 6); ``overwrite`` allows
    replacing existing outputs. Images whose output is larger than
    ``tile_size`` x ``tile_size`` are filtered in tiles (:mod:`convfilter.engine.tiles`);
    ``None`` filters every image at once (keeping all raw values, as ``--compare`` needs).
    """

    range_request: str = "auto"
    depth: int | str | None = None
    color: bool = False
    frame: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    quality: int | None = None
    png_compression: int | None = 1
    overwrite: bool = False
    tile_size: int | None = DEFAULT_TILE_SIZE
    claim: str | None = None
    """A Dask run's name: its retried tasks recognise the outputs its earlier attempts wrote."""

    def __post_init__(self) -> None:
        level = self.png_compression
        if level is not None and not 0 <= level <= 9:
            raise ArgumentError(f"PNG compression must be 0..9, got {level!r}")
        check_count(self.max_pixels, "max_pixels", 1)
        check_count(self.frame, "frame", 0)
        if self.quality is not None:
            check_quality("", "JPEG", self.quality)
        if self.tile_size is not None:
            check_tile_size(self.tile_size)
        object.__setattr__(self, "depth", check_depth_value(self.depth))
        object.__setattr__(self, "color", bool(self.color))


@dataclass
class FileJob:
    """One input and the output planned for it; ``error``/``skip``/``plan`` are decided before decoding.

    ``format`` is the output's format by extension (``png``, ``npy`` ...)
    where the name does not say it (standard output); ``usage`` marks an
    ``error`` that comes from the options rather than the file. ``data``
    holds the bytes of an input that is a pipe or a character device
    (``<(cat a.png)``, a named FIFO): read once, when the job is checked.
    """

    input: str
    output: str | None
    format: str | None = None
    error: str | None = None
    skip: bool = False
    plan: OutputPlan | None = None
    usage: bool = False
    data: bytes | None = field(default=None, repr=False)


@dataclass
class Job:
    """Files, an operation and the output settings: everything a runner needs, as plain data."""

    files: list[FileJob]
    op: Operation
    output: OutputSettings = field(default_factory=OutputSettings)

    @property
    def range_mode(self) -> str:
        """``--range`` resolved for this operation (``auto``: ``clip`` or ``rescale``)."""
        return resolve_range(self.output.range_request, self.op)


@dataclass
class FileResult:
    """What happened to one file: ``status`` is ``written``, ``failed`` or ``skipped``.

    ``usage`` marks a failure that comes from the options (exit 2 in the
    single-file form); ``too_small`` one where the image is smaller than the
    operation's window.
    """

    input: str
    output: str | None
    status: str
    input_shape: tuple[int, int] | None = None
    output_shape: tuple[int, int] | None = None
    error: str | None = None
    detail: FilterResult | None = field(default=None, repr=False)
    data: bytes | None = field(default=None, repr=False)
    usage: bool = False
    too_small: bool = False

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
    excluded = {os.path.realpath(path) for path in exclude}
    extensions = readable_extensions()
    seen: set[str] = set()
    found: list[tuple[str, str | None]] = []

    def add(path: str, root: str | None) -> None:
        key = _key(path)
        if key not in seen:
            seen.add(key)
            found.append((path, root))

    for path in paths:
        if stores.is_url(path):
            if stores.has_magic(path):  # the shell cannot expand a URL's pattern: fsspec does
                for file in stores.glob(path):
                    add(file, None)
            elif recursive and stores.isdir(path):
                for file in stores.find(path, extensions):
                    add(file, path)
            else:
                add(path, None)
        elif recursive and path != STDIO and os.path.isdir(path):
            for file in _walk_images(path, extensions, excluded):
                add(file, path)
        else:
            add(path, None)
    return found


def _walk_images(root: str, extensions: frozenset[str], excluded: set[str]) -> Iterator[str]:
    problems: list[OSError] = []
    for directory, subdirs, files in os.walk(root, onerror=problems.append):
        subdirs[:] = sorted(
            d
            for d in subdirs
            if not d.startswith(".") and os.path.realpath(os.path.join(directory, d)) not in excluded
        )
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                yield os.path.join(directory, name)
    for problem in problems:  # an unreadable directory is reported, not silently left out
        yield problem.filename


def _is_stream(path: str) -> bool:
    """True for a pipe or a character device (``/dev/fd/N`` from ``<(...)``, a named FIFO)."""
    if path == STDIO or stores.is_url(path):
        return False
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _read_stream(path: str) -> bytes:
    """All the bytes of the pipe at ``path``; a :class:`ConvFilterError` if none arrive."""
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise ConvFilterError(f"{path}: cannot read ({exc.strerror})") from None
    if not data:
        raise ConvFilterError(f"{path}: no image data in the pipe")
    return data


def _identity(path: str) -> tuple[int, int] | None:
    """The file ``path`` is (device, inode), through symbolic and hard links; ``None`` if there is none."""
    if path == STDIO or stores.is_url(path):
        return None
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return None
    return (status.st_dev, status.st_ino)


def _key(path: str) -> str:
    """A comparable name for ``path``: absolute, with the directory's symbolic links resolved."""
    if stores.is_url(path):
        return stores.normalize(path)
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
) -> list[FileJob]:
    """Name the output of every input and refuse two inputs that would write one file.

    Without ``template`` the output is ``<output_dir>/<stem><suffix>.<ext>``,
    files found under a directory keeping their place below it; ``ext`` is
    ``fmt`` or the input's extension. A ``template`` (fields ``{dir}``,
    ``{stem}``, ``{name}``, ``{ext}``, ``{kernel}``) names the output instead,
    relative to ``output_dir`` if one is given. Raises :class:`PlanError`.
    """
    if template is not None:
        check_template(template)
    jobs: list[FileJob] = []
    for path, root in inputs:
        if root is None and (stores.isdir(path) if stores.is_url(path) else os.path.isdir(path)):
            jobs.append(FileJob(path, None, error=f"{path}: is a directory (use --recursive for its images)"))
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
            below = _below(directory, root) if root is not None else ""
            relative = os.path.join(below, stem + suffix + (f".{out_ext}" if out_ext else ""))
        if output_dir:
            output = stores.join(output_dir, relative)
        else:
            output = relative if stores.is_url(relative) else os.path.normpath(relative)
        jobs.append(FileJob(path, output))
    # A file found below a directory that this run writes anyway (a first run's output, when the
    # outputs go into the input folder) is no input: a re-run must not filter its own outputs.
    written = {_key(job.output) for job in jobs if job.output is not None}
    jobs = [
        job
        for job, (_, root) in zip(jobs, inputs, strict=True)
        if root is None or _key(job.input) not in written
    ]
    _refuse_collisions(jobs)
    return jobs


def _below(directory: str, root: str) -> str:
    """Where ``directory`` lies below ``root`` (``""`` for ``root`` itself); URLs too."""
    if stores.is_url(directory):
        inside = directory[len(root.rstrip("/")) :].strip("/")
        return inside
    return os.path.relpath(directory, root)


def _refuse_collisions(jobs: Sequence[FileJob]) -> None:
    writers: dict[str, list[FileJob]] = {}
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


def check_jobs(job: Job, *, skip_existing: bool = False, make_dirs: bool = False) -> None:
    """Decide, without decoding, which files fail or are skipped; sets their ``error``/``skip``/``plan``.

    Every check of :func:`convfilter.run.files.plan_output` (format, depth,
    quality, matrix outputs, writable directory, output is the input); with
    ``make_dirs`` a missing directory that can be created is fine (it is
    created when its first file is written); then that the output is no
    input of the run, and what to do with an existing output: skip it with
    ``skip_existing``, replace it with ``overwrite``, otherwise fail. An
    :class:`ArgumentError` (an option the output cannot honour) fails its
    file with ``usage`` set.
    """
    inputs = {_key(file.input) for file in job.files if file.input != STDIO}
    inputs |= {identity for file in job.files if (identity := _identity(file.input)) is not None}
    mode = job.range_mode
    present = _existing_objects([f.output for f in job.files if f.error is None and stores.is_url(f.output)])
    for file in job.files:
        if file.error is not None or file.output is None:
            continue
        try:
            file.plan = _check_file(file, job.output, mode, inputs, skip_existing, make_dirs, present)
            if not file.skip and file.data is None and _is_stream(file.input):
                file.data = _read_stream(file.input)
        except ConvFilterError as exc:
            file.error = str(exc)
        except ArgumentError as exc:
            file.error, file.usage = str(exc), True


def _existing_objects(urls: list[str]) -> set[str]:
    """The output URLs that exist, found by listing (a failing listing fails the files when written)."""
    if not urls:
        return set()
    try:
        return stores.existing(urls)
    except ArgumentError:
        raise
    except ConvFilterError:
        return set()


def _check_file(
    file: FileJob,
    out: OutputSettings,
    mode: str,
    inputs: set[str],
    skip_existing: bool,
    make_dirs: bool,
    present: set[str],
) -> OutputPlan:
    output = file.output
    if output == STDIO:
        return stdout_plan(file.format or "png", out, mode)
    if is_matrix_path(output) and out.range_request != "auto":
        raise ArgumentError(
            f"{output}: range {out.range_request!r} applies to image outputs; a matrix file holds raw floats"
        )
    plan = plan_output(
        file.input, output, mode, out.depth, quality=out.quality, color=out.color, create_dirs=make_dirs
    )
    if _key(output) in inputs or _identity(output) in inputs:
        raise ConvFilterError(f"{output}: is an input of this run; refusing to overwrite it")
    if output in present if stores.is_url(output) else os.path.lexists(output):
        if skip_existing:
            file.skip = True
        elif not out.overwrite:
            raise ConvFilterError(exists_message(output))
    return plan


def stdout_plan(ext: str, out: OutputSettings, mode: str) -> OutputPlan:
    """The output plan for standard output in the format of extension ``ext`` (``png``, ``npy`` ...)."""
    if is_matrix_path(f"x.{ext}"):
        for name, value in (
            ("depth", out.depth),
            ("quality", out.quality),
            ("color", out.color or None),
            ("range", None if out.range_request == "auto" else out.range_request),
        ):
            if value is not None:
                shown = f"{name} {value!r}" if name == "range" else name
                raise ArgumentError(
                    f"{STDIO}: {shown} applies to image outputs; a matrix file holds raw floats"
                )
        return OutputPlan(STDIO, None, None, mode)
    fmt = output_format(f"x.{ext}")
    check_quality(STDIO, fmt, out.quality)
    if out.depth is not None:
        check_depth(STDIO, fmt, out.depth)
    return OutputPlan(STDIO, fmt, out.depth, mode, out.quality)
