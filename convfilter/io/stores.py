"""Object stores and other fsspec URLs (``s3://``, ``gs://``, ``az://``, ``memory://``) in and out.

A path with a ``scheme://`` is a URL; everything else (and ``file://``) is a
local path, written by :mod:`convfilter.io.atomic` with a rename. Every URL
goes through fsspec, whatever the store: one road, no branch per store. What
differs is only what a store can do: an object store has no rename, so an
output object is written in one upload that completes only when the data is
whole (:func:`write_bytes`), and "do not replace" is the store's own
conditional write (``If-None-Match: *`` on S3) where it has one.

Storage options (``--storage-options JSON``, ``CONVFILTER_STORAGE_OPTIONS``)
are this process's (:func:`configure`); without them each store's own
conventions apply (``AWS_PROFILE``, ``AWS_ENDPOINT_URL``, instance
credentials, ``GOOGLE_APPLICATION_CREDENTIALS``, fsspec's config files).
They never appear in a message, a ``repr`` or a log line: :class:`StorageOptions`
hides its values, and :func:`shown` takes credentials out of a URL.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from convfilter.errors import ArgumentError, ConvFilterError

URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs"}
EXTRAS.update({"az": "azure", "abfs": "azure", "abfss": "azure"})
"""Protocol -> the convfilter extra that installs its fsspec implementation."""
PACKAGES = {"s3": "s3fs", "gcs": "gcsfs", "azure": "adlfs"}
_DEFAULTS = {
    "s3": {"config_kwargs": {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3}}}
}
"""Options a store gets unless given: an unreachable endpoint fails in seconds, not minutes of retries."""


class StorageOptions:
    """fsspec storage options whose values never show: ``repr`` and ``str`` name the keys only.

    Picklable, so a Dask task carries them to its worker; the dashboard shows the ``repr``.
    """

    def __init__(self, options: dict | None = None) -> None:
        self.options = dict(options or {})

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self.options))
        return f"StorageOptions({keys or 'none'}; values hidden)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorageOptions) and other.options == self.options

    def __hash__(self) -> int:
        return hash(json.dumps(self.options, sort_keys=True, default=str))

    def __bool__(self) -> bool:
        return bool(self.options)


def parse_storage_options(text: str | None) -> StorageOptions:
    """``--storage-options JSON``: a JSON object, else :class:`ArgumentError` (the values are not echoed)."""
    if text is None or not text.strip():
        return StorageOptions()
    try:
        options = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArgumentError(
            f"storage options must be a JSON object, as fsspec takes them (not valid JSON: {exc.msg} at "
            f"character {exc.pos})",
            "--storage-options",
        ) from None
    if not isinstance(options, dict):
        raise ArgumentError(
            "storage options must be a JSON object, as fsspec takes them; "
            f"got a JSON {type(options).__name__}",
            "--storage-options",
        )
    return StorageOptions(options)


_options = StorageOptions()
_lock = threading.Lock()


def configure(options: StorageOptions | None) -> None:
    """Use ``options`` for every URL this process opens from now on (``None``: none)."""
    global _options
    with _lock:
        _options = options or StorageOptions()


def current_options() -> StorageOptions:
    """The storage options :func:`configure` set (to hand to Dask workers)."""
    return _options


def is_url(path: object) -> bool:
    """True for ``scheme://...`` other than ``file://``: a path fsspec opens."""
    return isinstance(path, str) and (m := URL.match(path)) is not None and m.group(1).lower() != "file"


def local_path(path: str) -> str:
    """``file:///a/b`` as ``/a/b``; any other path unchanged."""
    return path[len("file://") :] if path.lower().startswith("file://") else path


def protocol(url: str) -> str:
    """The scheme of ``url``, lower-cased."""
    match = URL.match(url)
    return match.group(1).lower() if match else "file"


def shown(url: str) -> str:
    """``url`` as messages show it: any ``user:password@`` taken out."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1", url)


def check_protocol(url: str) -> None:
    """A usage error (:class:`ArgumentError`) for a protocol fsspec does not know, or without its package."""
    import fsspec

    name = protocol(url)
    extra = EXTRAS.get(name)
    try:
        fsspec.get_filesystem_class(name)
    except (ImportError, ValueError):
        if extra is not None:
            raise ArgumentError(
                f"{shown(url)}: {name}:// needs {PACKAGES[extra]}: pip install 'convfilter[{extra}]' "
                "(or 'convfilter[cloud]' for S3, GCS and Azure)"
            ) from None
        raise ArgumentError(
            f"{shown(url)}: unknown protocol {name}://; convfilter reads and writes local paths and the URLs "
            "fsspec knows (s3:// with convfilter[s3], gs:// with [gcs], az:// with [azure], memory://, ...)"
        ) from None


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` (with this process's options) and the path inside it."""
    from fsspec.core import url_to_fs

    check_protocol(url)
    try:
        return url_to_fs(url, **options_for(url))
    except Exception as exc:
        raise ConvFilterError(message(url, exc)) from None


def options_for(url: str) -> dict:
    """The storage options a filesystem for ``url`` gets: the store's defaults, then this process's."""
    return {**_DEFAULTS.get(protocol(url), {}), **_options.options}


def message(url: str, exc: BaseException) -> str:
    """One line for a store's failure, naming the URL without credentials and never the options."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, FileNotFoundError):
        if re.search(r"bucket does not exist|nosuchbucket|bucket not found|container not found", text, re.I):
            return f"{shown(url)}: no such bucket ({text})"
        return f"{shown(url)}: no such object"
    if isinstance(exc, PermissionError):
        return f"{shown(url)}: access denied ({text or name})"
    if isinstance(exc, FileExistsError):
        return exists(url)
    if "Credentials" in name or "credentials" in text.lower():
        return f"{shown(url)}: no usable credentials ({text or name})"
    if "Timeout" in name or "timed out" in text.lower():
        return f"{shown(url)}: the store did not answer in time ({text or name})"
    if "Connection" in name or "connect" in text.lower():
        return f"{shown(url)}: cannot reach the store ({text or name})"
    return f"{shown(url)}: {text or name}" if not text.startswith(name) else f"{shown(url)}: {text}"


def exists(url: str) -> str:
    """The one-line message for an output (a file or an object) that exists and may not be replaced."""
    name = shown(url) if is_url(url) else url
    return f"{name}: already exists (use --overwrite to replace it or --skip-existing to keep it)"


def read_bytes(url: str) -> bytes:
    """The whole object at ``url``; :class:`ConvFilterError` with one line for every failure."""
    fs, path = filesystem(url)
    try:
        return fs.cat_file(path)  # one GET: no request first to ask what it is
    except IsADirectoryError:
        raise ConvFilterError(f"{shown(url)}: is a directory, not a file") from None
    except Exception as exc:
        raise ConvFilterError(message(url, exc)) from None


def write_bytes(url: str, data: bytes, *, replace: bool) -> None:
    """Store ``data`` at ``url`` in one upload that is whole or absent.

    fsspec's ``pipe_file``: one PUT (s3fs: up to 100 MB), or a multipart upload
    that is completed only with every part and aborted on failure.
    ``replace=False`` never replaces an object: ``mode='create'`` is the
    store's exclusive write where it has one (a conditional PUT,
    ``If-None-Match: *``, on S3), else a check just before the upload (a
    window of one request; docs/cluster.md says which stores have which).
    """
    fs, path = filesystem(url)
    try:
        fs.pipe_file(path, data, mode="overwrite" if replace else "create")
    except Exception as exc:
        raise ConvFilterError(message(url, exc)) from None


def isdir(url: str) -> bool:
    """True when ``url`` is a directory (a prefix holding objects)."""
    fs, path = filesystem(url)
    try:
        return bool(fs.isdir(path))
    except Exception as exc:
        raise ConvFilterError(message(url, exc)) from None


def join(base: str, relative: str) -> str:
    """``relative`` below ``base`` (a URL or a local path), normalised without losing ``scheme://``."""
    if not is_url(base):
        return os.path.normpath(os.path.join(base, relative))
    scheme, _, rest = base.partition("://")
    return f"{scheme}://" + posixpath.normpath(posixpath.join(rest, relative.replace(os.sep, "/")))


def normalize(url: str) -> str:
    """A comparable form of ``url``: the scheme lower-cased, the path normalised."""
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://" + posixpath.normpath(rest)


def find(url: str, extensions: Iterable[str]) -> Iterator[str]:
    """The objects below ``url`` whose names end in ``extensions``, sorted, hidden names left out.

    Each is ``url`` + ``/`` + its name below it, so outputs can be named relative to ``url`` as given.
    """
    fs, path = filesystem(url)
    wanted = tuple(extensions)
    root = path.rstrip("/")  # url_to_fs gives the path without its protocol
    try:
        found = sorted(fs.find(root))
    except Exception as exc:
        raise ConvFilterError(message(url, exc)) from None
    for item in found:
        below = item[len(root) :].lstrip("/") if item.startswith(root) else item
        if any(part.startswith(".") for part in below.split("/")):
            continue
        if os.path.splitext(item)[1].lower() in wanted:
            yield url.rstrip("/") + "/" + below


def glob(url: str) -> list[str]:
    """The objects a URL with ``*``, ``?`` or ``[...]`` names, sorted (the shell cannot expand URLs)."""
    fs, path = filesystem(url)
    try:
        return [fs.unstrip_protocol(item) for item in sorted(fs.glob(path)) if not fs.isdir(item)]
    except Exception as exc:
        raise ConvFilterError(message(url, exc)) from None


def has_magic(url: str) -> bool:
    """True when ``url`` holds glob characters."""
    return any(c in url.partition("://")[2] for c in "*?[")


def existing(urls: Iterable[str]) -> set[str]:
    """Which of ``urls`` exist, by listing each parent once (not one request per file)."""
    by_parent: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for url in urls:
        fs, path = filesystem(url)
        path = path.rstrip("/")
        by_parent.setdefault((protocol(url), posixpath.dirname(path)), []).append((url, path))
    found: set[str] = set()
    for (_, parent), members in by_parent.items():
        fs, _ = filesystem(members[0][0])
        try:
            listed = {item.rstrip("/") for item in fs.ls(parent, detail=False)}
        except FileNotFoundError:
            continue
        except Exception as exc:
            raise ConvFilterError(message(members[0][0], exc)) from None
        found.update(url for url, path in members if path in listed)
    return found
