"""Atomic outputs: every file convfilter writes appears complete or not at all.

A result is written to a temporary file (``.convfilter-*.part``) in the
target's own directory, flushed to disk, given the permissions a plain
``open()`` would give it (or the replaced file's), and then renamed into
place. On any failure, including Ctrl-C, the temporary file is removed and an
existing target is untouched.

A URL (``s3://...``, :mod:`convfilter.io.stores`) has no rename: its content
is collected in memory (or, for a writer that needs a path, a local
temporary file) and stored in one upload when the block succeeds, so the
object appears whole or not at all there too.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import BinaryIO

from convfilter.errors import ConvFilterError, one_line
from convfilter.io import stores

_UMASK_LOCK = threading.Lock()


def exists_message(path: str) -> str:
    """The one-line message for an output that exists and may not be replaced."""
    return stores.exists(path)


def temp_prefix(path: str) -> str:
    """How temporary files for ``path`` begin: ``.convfilter-<name>.`` (the name cut to 100 characters)."""
    return f".convfilter-{os.path.basename(path)[:100]}."


def remove_leftovers(path: str, claim: str) -> int:
    """Remove what the writers of ``path`` in the run ``claim`` left next to it; how many there were.

    Its temporary files (a worker killed mid-write cannot clean up) and its
    claim marker (:func:`move_into_place`); never another run's. Only for a
    caller that knows this run writes ``path`` no more (a Dask run whose tasks have all ended).
    """
    if stores.is_url(path):
        return 0  # an object store write leaves no temporary object
    directory = os.path.dirname(os.path.abspath(path))
    prefix = temp_prefix(path) + claim + "."
    removed = 0
    try:
        names = [name for name in os.listdir(directory) if name.startswith(prefix)]
    except OSError:
        return 0
    for name in names:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(directory, name))
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(
    path: str,
    *,
    replace: bool = True,
    suffix: str = ".part",
    errors: tuple[type[BaseException], ...] = (OSError,),
    claim: str | None = None,
) -> Iterator[str]:
    """Yield a temporary path next to ``path``; when the block succeeds, move it into place.

    ``suffix`` is the temporary file's extension (some writers choose the
    format by it). Exceptions of the ``errors`` types become
    :class:`ConvFilterError` ``"<path>: cannot write (<reason>)"``; with
    ``replace=False`` an existing ``path`` is never replaced (see
    :func:`move_into_place`).
    """
    if stores.is_url(path):
        with _upload_path(path, replace=replace, suffix=suffix, errors=errors) as tmp:
            yield tmp
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        prefix = temp_prefix(path) + (f"{claim}." if claim else "")
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=directory)
    except OSError as exc:
        raise ConvFilterError(f"{path}: cannot write ({exc.strerror})") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode_for(path))
        move_into_place(tmp, path, replace=replace, claim=claim)
        _sync_directory(directory)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, errors) and not isinstance(exc, ConvFilterError):
            raise ConvFilterError(f"{path}: cannot write ({one_line(exc)})") from None
        raise


@contextlib.contextmanager
def atomic_file(
    path: str,
    *,
    replace: bool = True,
    errors: tuple[type[BaseException], ...] = (OSError,),
    claim: str | None = None,
) -> Iterator[BinaryIO]:
    """Yield a binary file to write ``path``'s new content into; see :func:`atomic_path`."""
    if stores.is_url(path):
        buffer = io.BytesIO()
        try:
            yield buffer
        except BaseException as exc:
            if isinstance(exc, errors) and not isinstance(exc, ConvFilterError):
                raise ConvFilterError(f"{stores.shown(path)}: cannot write ({one_line(exc)})") from None
            raise
        stores.write_bytes(path, buffer.getvalue(), replace=replace)
        return
    with atomic_path(path, replace=replace, errors=errors, claim=claim) as tmp, open(tmp, "wb") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def _upload_path(
    url: str, *, replace: bool, suffix: str, errors: tuple[type[BaseException], ...]
) -> Iterator[str]:
    """A local temporary file for a writer that needs a path; uploaded to ``url`` in one piece after."""
    fd, tmp = tempfile.mkstemp(prefix=".convfilter-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            data = handle.read()
    except BaseException as exc:
        if isinstance(exc, errors) and not isinstance(exc, ConvFilterError):
            raise ConvFilterError(f"{stores.shown(url)}: cannot write ({one_line(exc)})") from None
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    stores.write_bytes(url, data, replace=replace)


def move_into_place(tmp: str, path: str, *, replace: bool = True, claim: str | None = None) -> None:
    """Give the complete file ``tmp`` the name ``path`` (renamed over an existing one).

    With ``replace=False`` it is hard-linked, which fails if the name is taken,
    so nothing is ever replaced: :class:`ConvFilterError` then, ``tmp`` left
    for the caller to remove.

    ``claim`` names the run (a Dask run, whose tasks a dead worker's retry
    runs again): a marker hard link ``.convfilter-<name>.<claim>.done`` is made
    before the name is taken, so a retry that finds ``path`` already there can
    tell its own run's file (the same file as the marker: done, nothing to
    replace) from another run's (refused, as any existing file is).
    """
    if replace:
        os.replace(tmp, path)
        return
    if claim is not None:
        marker = os.path.join(os.path.dirname(os.path.abspath(path)), f"{temp_prefix(path)}{claim}.done")
        if os.path.lexists(path) and _same(path, marker):  # written by an earlier attempt of this run
            os.unlink(tmp)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(marker)
        os.link(tmp, marker)
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


RENAME_NOREPLACE = 1
"""Linux's ``renameat2`` flag: fail with EEXIST rather than replace the target."""


def rename_no_replace(source: str, target: str) -> None:
    """Rename ``source`` (a file or a directory) to ``target``, never replacing anything there.

    Uses ``renameat2(..., RENAME_NOREPLACE)``, atomic on Linux; where that is
    missing (another system, an old C library, a file system without it) it
    checks, then renames. :class:`ConvFilterError` when ``target`` exists.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd = -100
        done = renameat2(at_fdcwd, os.fsencode(source), at_fdcwd, os.fsencode(target), RENAME_NOREPLACE)
        if done == 0:
            return
        code = ctypes.get_errno()
        if code == errno.EEXIST:
            raise ConvFilterError(exists_message(target))
        if code not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), target)
    if os.path.lexists(target):
        raise ConvFilterError(exists_message(target))
    os.rename(source, target)


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def mode_for(path: str) -> int:
    """Keep an existing file's permissions; new files get 0666 less the umask, like open()."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        with _UMASK_LOCK:  # reading the umask sets it for a moment; encoders run in threads
            umask = os.umask(0)
            os.umask(umask)
        return 0o666 & ~umask


def _sync_directory(directory: str) -> None:
    """Make the rename durable (best effort: not every file system lets a directory be fsynced)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
