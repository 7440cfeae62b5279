"""Zarr arrays at fsspec URLs (``s3://bucket/scan.zarr``): opened through zarr's ``FsspecStore``, and
written chunks first, metadata last.

An object store has no rename, so a Zarr output cannot be built aside and
moved into place as on a local disk. Instead the array's metadata documents
(``zarr.json``) are held back in memory (:class:`MetadataLast`) while the
chunks are written, by threads here or by Dask workers (each given the held
documents), and stored only when every chunk is: until then no reader sees an
array at that URL. An interrupted run leaves chunks without metadata, which
the next run removes before it writes.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from convfilter.errors import ConvFilterError
from convfilter.io import stores

METADATA = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata")


def _is_metadata(key: str) -> bool:
    return posixpath.basename(key) in METADATA


def fsspec_store(url: str, *, read_only: bool) -> Any:
    """zarr's ``FsspecStore`` for ``url``, with this process's storage options."""
    from zarr.storage import FsspecStore

    stores.check_protocol(url)
    try:
        return FsspecStore.from_url(url, storage_options=stores.options_for(url), read_only=read_only)
    except Exception as exc:
        raise ConvFilterError(stores.message(url, exc)) from None


def metadata_last_class() -> type:
    """:class:`MetadataLast`, defined when zarr is imported (zarr is an optional extra)."""
    from zarr.storage import WrapperStore

    class MetadataLast(WrapperStore):
        """A store that keeps metadata documents in memory until :meth:`commit`; chunks go through."""

        def __init__(self, store: Any, held: dict | None = None) -> None:
            super().__init__(store)
            self.held = dict(held or {})

        async def set(self, key: str, value: Any) -> None:
            if _is_metadata(key):
                self.held[key] = value
                return
            await self._store.set(key, value)

        async def get(self, key: str, prototype: Any, byte_range: Any = None) -> Any:
            if key in self.held:
                return self.held[key]
            return await self._store.get(key, prototype, byte_range)

        async def exists(self, key: str) -> bool:
            return key in self.held or await self._store.exists(key)

        def commit(self) -> None:
            """Store the held documents: from now on readers see the array."""
            from zarr.core.sync import sync

            async def store_all() -> None:
                for key, value in self.held.items():
                    await self._store.set(key, value)

            sync(store_all())

    return MetadataLast


@dataclass
class ObjectTarget:
    """A Zarr output being written at ``url``: its held metadata documents travel to each task."""

    url: str
    held: dict
    options: stores.StorageOptions

    def open(self) -> Any:
        """The output array, its metadata from :attr:`held`, its chunks written to the store."""
        import zarr

        stores.configure(self.options)  # a Dask worker: this run's storage options
        store = metadata_last_class()(fsspec_store(self.url, read_only=False), self.held)
        return zarr.open_array(store, mode="r+")


def open_array(url: str) -> Any:
    """The Zarr node (array or group) at ``url``, read-only."""
    import zarr

    return zarr.open(fsspec_store(url, read_only=True), mode="r")


def has_array(url: str) -> bool:
    """True when ``url`` holds a Zarr array's (or group's) metadata."""
    fs, path = stores.filesystem(url)
    try:
        return any(fs.exists(posixpath.join(path, name)) for name in ("zarr.json", ".zarray", ".zgroup"))
    except Exception as exc:
        raise ConvFilterError(stores.message(url, exc)) from None


def clear(url: str) -> None:
    """Remove every object below ``url`` (an old array replaced, or the chunks of an interrupted run)."""
    fs, path = stores.filesystem(url)
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        return
    except Exception as exc:
        raise ConvFilterError(stores.message(url, exc)) from None


def create(url: str, shape: tuple, chunks: tuple) -> tuple[Any, ObjectTarget]:
    """A float32 array at ``url`` whose metadata is held back; the target tasks open to write chunks."""
    import zarr

    store = metadata_last_class()(fsspec_store(url, read_only=False))
    zarr.create_array(store, shape=shape, chunks=chunks, dtype="float32", overwrite=False)
    return store, ObjectTarget(url, dict(store.held), stores.current_options())
