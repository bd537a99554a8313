"""One way to replace a file: a temporary file beside it, written, synced, then renamed over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: Files that hold anything of the person's: owner-only on POSIX.
PRIVATE_FILE_MODE = 0o600
#: Folders created for them: owner-only on POSIX.
PRIVATE_DIR_MODE = 0o700


def write_atomically(
    path: Path, data: bytes, *, mode: int = PRIVATE_FILE_MODE, dir_mode: int = PRIVATE_DIR_MODE
) -> None:
    """Replaces `path` with `data` whole or not at all: a reader never sees half a file, and a
    failed write leaves no temporary file (one a killed process left is `.{name}.*.tmp`).

    `mode` is the file's permission bits on POSIX; `dir_mode` those of a folder made for it."""
    path.parent.mkdir(mode=dir_mode, parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if os.name == "posix":
                os.fchmod(out.fileno(), mode)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
