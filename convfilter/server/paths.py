"""Where this user's convfilter server listens, and who it is: standard library only.

The socket lives in a per-user directory of mode 0700: ``$CONVFILTER_RUNTIME_DIR``
if set, else ``$XDG_RUNTIME_DIR/convfilter``, else ``convfilter-<uid>`` in the
temporary directory. Whichever it is, it must be a real directory (not a
symlink) owned by this user and closed to everyone else, or no server is used.
One install (package directory and Python prefix) has one socket, so two
virtual environments never talk to each other's server.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


class UnsafeDirectory(Exception):
    """The runtime directory is missing, not a directory, a symlink, someone else's or open to others."""


def runtime_dir(create: bool = False) -> str:
    """This user's runtime directory for convfilter, checked (and made with mode 0700 when ``create``)."""
    path = default_dir()
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise UnsafeDirectory(f"{path}: cannot create ({exc.strerror})") from None
    check_private(path)
    return path


def default_dir() -> str:
    """Where this user's runtime directory is (whether or not it exists)."""
    path = os.environ.get("CONVFILTER_RUNTIME_DIR")
    if not path:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg and os.path.isabs(xdg) and os.path.isdir(xdg):
            path = os.path.join(xdg, "convfilter")
        else:
            path = os.path.join(os.environ.get("TMPDIR") or "/tmp", f"convfilter-{os.getuid()}")
    return os.path.abspath(path)


def check_private(path: str) -> None:
    """:class:`UnsafeDirectory` unless ``path`` is a directory of this user's that only they can reach."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise UnsafeDirectory(f"{path}: {exc.strerror}") from None
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeDirectory(f"{path}: is a symbolic link")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(f"{path}: is not a directory")
    if info.st_uid != os.getuid():
        raise UnsafeDirectory(f"{path}: belongs to uid {info.st_uid}, not to this user ({os.getuid()})")
    if info.st_mode & 0o077:
        raise UnsafeDirectory(f"{path}: is open to other users (mode {stat.S_IMODE(info.st_mode):04o})")


def install_key() -> str:
    """A short name for this install: its package directory and its Python environment."""
    text = f"{PACKAGE_DIR}\0{os.path.realpath(sys.prefix)}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def socket_path(directory: str) -> str:
    """The socket of this install's server in ``directory``."""
    return os.path.join(directory, f"server-{install_key()}.sock")


def lock_path(directory: str) -> str:
    """The file this install's server holds locked while it runs (one server per install)."""
    return os.path.join(directory, f"server-{install_key()}.lock")


def log_path(directory: str) -> str:
    """Where a detached server writes what it has to say."""
    return os.path.join(directory, f"server-{install_key()}.log")


def identity() -> str:
    """Version, install and code: a server whose identity differs from its client's is not used.

    The newest modification time of the package's source files is part of it,
    so a server started before the code changed (an upgrade, an edit in a
    development install) is never used by the new code's client.
    """
    newest = 0
    stack = [PACKAGE_DIR]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif entry.name.endswith(".py"):
                    newest = max(newest, entry.stat().st_mtime_ns)
    from convfilter import __version__

    return f"{__version__}:{install_key()}:{newest}"
