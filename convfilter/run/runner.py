"""The one runner: decode, run the operation and encode many files with overlap, one result per file.

:class:`Runner` takes a planned and checked :class:`~convfilter.run.jobs.Job`.
Worker threads decode and encode while the calling thread runs the Keras
model on batches of same-size images; huge images are filtered tile by tile
and mapped to pixels as they go (:func:`convfilter.run.files.filter_pixels`).
Every file goes through the stages of :mod:`convfilter.run.files`:
:func:`~convfilter.run.files.read_input` and
:func:`~convfilter.run.files.output_target` (decoding), the operation on all
the channels of the images of one size together, and
:func:`~convfilter.run.files.write_output` (encoding).

A bad file never stops the others: its result has status ``failed`` and the
one-line ``<file>: <problem>`` message a :class:`ConvFilterError` carries.
The runner needs no Click: the command line, a server or a cluster worker
host it alike.
"""

from __future__ import annotations

import io
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
from PIL import Image

from convfilter.engine.apply import apply
from convfilter.engine.model import preload_for
from convfilter.errors import ConvFilterError, ImageTooSmallError, one_line
from convfilter.io import stores
from convfilter.io.cores import usable_cores
from convfilter.io.images import ENCODE_ERRORS, check_size, header_pixels, save_image
from convfilter.io.matrices import format_matrix, is_matrix_path
from convfilter.run.files import (
    FilterResult,
    InputData,
    filter_pixels,
    output_target,
    read_input,
    render_output,
    renders_in_tiles,
    save_params,
    write_output,
)
from convfilter.run.jobs import FAILED, SKIPPED, STDIN_NAME, STDIO, WRITTEN, FileJob, FileResult, Job

MAX_HELD_PIXELS = 1 << 27
"""Pixels of the images a batch holds at once (decoding, waiting for the model, encoding), by their
headers: many 8-bit 20000x20000 scans would otherwise be decoded ahead, 400 MB each. A larger image
still runs, alone."""


@dataclass
class _Decoded:
    """A decoded input, checked against the kernel and the output format before the model runs."""

    data: InputData
    depth: int | str
    out_mode: str | None
    out_shape: tuple[int, int]
    tiled: bool = False


URL_WORKERS = 16
"""Threads decoding and encoding when inputs or outputs are URLs (each read and write is a request)."""


class Runner:
    """Run a checked job: decode and encode in ``workers`` threads, the model on same-size batches.

    Every channel of every image of one size goes through the operation in
    one batch (an RGB image with ``color`` is three channels). Iterate
    :meth:`run` for one :class:`FileResult` per file (files decided by
    :func:`~convfilter.run.jobs.check_jobs` first, then the rest as they finish). If the iteration
    stops early (an exception such as ``KeyboardInterrupt``, or the consumer
    closing it), no new file is started, the files being written are
    finished, and their results are in :attr:`unreported`. Files are only
    ever written complete (temporary file, then rename). ``keep_stages`` keeps
    every stage's raw output in each result (a chain's ``--compare``).
    """

    def __init__(
        self,
        job: Job,
        *,
        workers: int | None = None,
        fail_fast: bool = False,
        batch_size: int = 8,
        max_batch_pixels: int = 2**23,
        stdin_data: bytes | None = None,
        max_held_pixels: int = MAX_HELD_PIXELS,
        keep_stages: bool = False,
    ) -> None:
        self.jobs = list(job.files)
        self.op = job.op
        self.settings = job.output
        self.keep_stages = keep_stages
        self.workers = workers or default_workers()
        if workers is None and any(stores.is_url(f.input) or stores.is_url(f.output) for f in self.jobs):
            # A request to an object store mostly waits: more threads keep several in flight
            # (fetching inputs ahead, uploading outputs behind) while the engine works.
            self.workers = max(self.workers, URL_WORKERS)
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
        todo: deque[FileJob] = deque()
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

    def _may_start(self, job: FileJob) -> bool:
        """Whether ``job`` may start decoding now: its image (by header) fits in the pixel budget.

        Images are counted from the start of their decode until their result
        is reported; one image always may start when none is held, however large.
        """
        key = (job.input, job.output)
        size = self._sizes.get(key)
        if size is None:
            peek = job.input != STDIO and job.data is None and not is_matrix_path(job.input)
            size = self._sizes[key] = header_pixels(job.input, self.settings.max_pixels) if peek else 0
        if self.held and sum(self.held.values()) + size > self.max_held_pixels:
            return False
        self.held[key] = size
        self.peak_held_pixels = max(self.peak_held_pixels, sum(self.held.values()))
        return True

    def _process(self, todo: deque[FileJob]) -> Iterator[FileResult]:
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="convfilter")
        decoding: deque[tuple[FileJob, Future]] = deque()
        encoding: set[Future] = set()
        groups: dict[tuple[int, int], list[tuple[FileJob, _Decoded]]] = {}
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
        futures = []
        for items in groups.values():
            if items[0][1].tiled:  # one image at a time, mapped to pixels tile by tile
                futures.extend(self._filter_tiled(job, decoded, pool) for job, decoded in items)
                continue
            stack = np.concatenate([decoded.data.channels for _, decoded in items])
            try:
                outputs = apply(self.op, stack, tile_size=self.settings.tile_size)
            except Exception as exc:  # e.g. TensorFlow cannot allocate a large batch
                if len(items) > 1:
                    futures.extend(self._filter_groups({None: items[:1]}, pool))
                    futures.extend(self._filter_groups({None: items[1:]}, pool))
                    continue
                futures.append(_model_failed(items[0][0], exc))
                continue
            start = 0
            for job, decoded in items:
                count = len(decoded.data.channels) // self.op.channels  # outputs: one per C planes
                mine = [values[start : start + count] for values in outputs]
                futures.append(pool.submit(self._encode, job, decoded, mine))
                start += count
        groups.clear()
        return futures

    def _filter_tiled(self, job: FileJob, decoded: _Decoded, pool: ThreadPoolExecutor) -> Future:
        """A large image output: filtered and mapped tile by tile (no full-size float copy), then encoded."""
        try:
            rendered = filter_pixels(decoded.data, job.plan, decoded.depth, self.op, self.settings.tile_size)
        except Exception as exc:  # e.g. TensorFlow cannot allocate a tile
            return _model_failed(job, exc)
        return pool.submit(self._encode, job, decoded, None, rendered)

    def _decode(self, job: FileJob) -> _Decoded:
        """Read the input, then check it fits the kernel and that the output can store it."""
        s = self.settings
        source = None
        if job.data is not None:  # a pipe, read when the job was checked
            source = io.BytesIO(job.data)
        elif job.input == STDIO:
            source = io.BytesIO(self.stdin_data or b"")
        name = _shown(job.input)
        data = read_input(
            name,
            color=s.color,
            frame=s.frame,
            max_pixels=s.max_pixels,
            source=source,
            on_open=preload_for,
            keep_dtype=True,
            channels=self.op.channels,
        )
        try:
            out_shape = self.op.output_shape(data.shape)
        except ConvFilterError as exc:
            raise type(exc)(f"{name}: {exc}") from None
        check_output_pixels(name, out_shape, s.max_pixels)
        depth, out_mode = output_target(job.plan, data, name)
        if job.plan.fmt is not None:
            check_size(job.output, job.plan.fmt, out_shape)
        tiled = renders_in_tiles(job.plan, depth, data.shape, self.op, s.tile_size)
        if not tiled:  # 8/16-bit channels stay integers only where no full float copy is made
            data.channels = data.channels.astype(np.float32, copy=False)
        return _Decoded(data, depth, out_mode, out_shape, tiled)

    def _encode(
        self,
        job: FileJob,
        decoded: _Decoded,
        outputs: list[np.ndarray] | None,
        rendered: tuple[np.ndarray, float, float] | None = None,
    ) -> FileResult:
        """Write (or encode for standard output) the last of every stage's ``outputs``, or the
        ``(pixels, min, max)`` of ``rendered``."""
        s, data, plan = self.settings, decoded.data, job.plan
        values = outputs[-1] if outputs else None
        if values is not None and not np.isfinite(values).any() and np.isfinite(data.channels).all():
            message = (
                f"{_shown(job.input)}: the result is not finite anywhere (the sums overflow float32); "
                "use smaller weights"
            )
            return FileResult(job.input, job.output, FAILED, data.shape, error=message)
        pixels, minimum, maximum = rendered or (None, None, None)
        alpha = None
        if data.alpha is not None:
            alpha = self.op.carry_alpha(data.alpha)
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
                    claim=s.claim,
                    **params,
                )
        except ConvFilterError as exc:
            return FileResult(job.input, job.output, FAILED, data.shape, error=str(exc))
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
            stage_values=outputs if self.keep_stages else None,
        )
        return FileResult(
            job.input, job.output, WRITTEN, data.shape, decoded.out_shape, detail=detail, data=encoded
        )


def check_output_pixels(name: str, shape: tuple[int, int], max_pixels: int | None) -> None:
    """Refuse, before the model runs, an output of more than ``max_pixels`` pixels.

    A transposed convolution with a large stride (or a large 'full' padding)
    can ask for far more pixels than it reads; ``--max-pixels`` bounds outputs as it bounds inputs.
    """
    height, width = shape
    if max_pixels is not None and height * width > max_pixels:
        raise ConvFilterError(
            f"{name}: the output would be {height}x{width} = {height * width} pixels, more than the limit "
            f"of {max_pixels}; raise it with --max-pixels if you mean it"
        )


def _failed(job: FileJob, exc: BaseException, memory_message: str) -> FileResult:
    """A failed decode: a :class:`ConvFilterError` names its file already, a ``MemoryError`` does not."""
    if isinstance(exc, ConvFilterError):
        message = str(exc)
    else:
        message = f"{_shown(job.input)}: {memory_message}"
    too_small = isinstance(exc, ImageTooSmallError)
    return FileResult(job.input, job.output, FAILED, error=message, too_small=too_small)


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
    """Threads decoding and encoding by default: one per CPU core this process may use."""
    return usable_cores()


def _done(result: FileResult) -> Future:
    future: Future = Future()
    future.set_result(result)
    return future


def _model_failed(job: FileJob, exc: Exception) -> Future:
    """The finished result of a job whose model run raised ``exc``."""
    message = f"{_shown(job.input)}: the model failed ({one_line(exc)})"
    return _done(FileResult(job.input, job.output, FAILED, error=message))


def _count(groups: dict) -> int:
    return sum(len(items) for items in groups.values())


def _shown(path: str) -> str:
    return STDIN_NAME if path == STDIO else path
