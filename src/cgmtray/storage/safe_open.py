"""Opening the app's own files without following a symlink: owner-only, no-follow, size-capped."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Final

#: Files that hold anything of the person's: owner-only on POSIX.
PRIVATE_FILE_MODE: Final = 0o600
#: The process umask the app runs with: anything it creates is owner-only even where a call
#: forgets its mode (a second guard beside the explicit modes).
PRIVATE_UMASK: Final = 0o077

#: 0 where the platform has no such flag (Windows): there the lstat checks stand alone.
NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC: Final = getattr(os, "O_CLOEXEC", 0)
#: A FIFO swapped in between the lstat and the open must not block the opener (the GUI thread):
#: opened non-blocking it is then refused as not a regular file. No effect on a regular file.
NONBLOCK: Final = getattr(os, "O_NONBLOCK", 0)


class UnsafeFileError(OSError):
    """The app's file is a symbolic link (or not a regular file): it is neither read nor
    written, and whatever it points at is left untouched."""

    def __init__(self, path: Path, what: str) -> None:
        super().__init__(errno.ELOOP, f"{path} is {what}; CGM Tray does not follow it")
        self.path = path
        self.what = what


class TooLargeError(OSError):
    """The file is larger than its reader accepts; it was not read."""

    def __init__(self, path: Path, size: int, limit: int) -> None:
        super().__init__(errno.EFBIG, f"{path} is {size} bytes (the limit is {limit})")
        self.path = path
        self.size = size
        self.limit = limit


def check_not_link(path: Path) -> None:
    """Raises UnsafeFileError if `path` exists and is a symlink or not a regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFileError(path, "a symbolic link")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(path, "not a regular file")


def open_fd(path: Path, flags: int, mode: int = PRIVATE_FILE_MODE) -> int:
    """os.open with O_NOFOLLOW (a symlink is refused: UnsafeFileError) and O_CLOEXEC; a file it
    creates is `mode` (owner-only by default), and one that exists is checked to be regular."""
    check_not_link(path)  # where O_NOFOLLOW is missing, and for a clear error on a FIFO
    try:
        fd = os.open(path, flags | NOFOLLOW | CLOEXEC | NONBLOCK, mode)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafeFileError(path, "a symbolic link") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafeFileError(path, "not a regular file")
        if NONBLOCK:
            os.set_blocking(fd, True)  # a regular file: plain blocking I/O from here on
        if os.name == "posix" and flags & os.O_CREAT:
            os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_capped(path: Path, limit: int) -> bytes:
    """The file's bytes, opened without following a symlink; TooLargeError (nothing read) when
    it is larger than `limit` bytes."""
    fd = open_fd(path, os.O_RDONLY)
    with os.fdopen(fd, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        if size > limit:
            raise TooLargeError(path, size, limit)
        data = source.read(limit + 1)
    if len(data) > limit:  # it grew while read
        raise TooLargeError(path, len(data), limit)
    return data


def describe(error: OSError) -> str:
    """A short plain reason for an OSError (no path): "Read-only file system", "No space left"."""
    if isinstance(error, UnsafeFileError):
        return f"it is {error.what}"
    if error.strerror:
        return error.strerror
    return type(error).__name__
