"""Crash-safe file writes: a mask, workspace or export is either the old file or the complete new one.

A writer gets a temporary path in the destination folder (same filesystem, so the final `os.replace` is
atomic), the data is fsynced before the rename, and a failed write removes the temporary file and leaves
any previous file untouched. Temporary names start with '.' so folder scans skip leftovers of a crash.
"""

from __future__ import annotations

import os
import re
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


class WriteError(OSError):
    """A failed atomic write, naming the file it was to replace (not its temporary)."""


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success fsync it and rename it over `path`.

    The temporary name keeps the final suffix ('.x.1a2b3c4d.tmp.png') so encoders that pick the format
    from the extension (Pillow, OpenCV) still do. The writer must create the file itself.
    """
    path = Path(path)
    tmp = path.with_name(_temporary_name(path.name, path.suffix))
    try:
        yield tmp
        if not tmp.is_file():
            raise OSError(f"nothing was written for {path}")
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        if exc.errno is None or isinstance(exc, WriteError):  # a nested atomic write's error names its own file
            raise
        raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror}") from None  # not the temporary's name
    except BaseException:
        _remove(tmp)
        raise
    _fsync_dir(path.parent)


NAME_MAX = 255
"""Bytes in one file name on the usual filesystems (ext4, APFS, NTFS in UTF-16 units)."""


def _temporary_name(name: str, suffix: str) -> str:
    """'.name.1a2b3c4d.tmp.suffix', with `name` cut short where the whole would pass NAME_MAX (QA pass 21: a
    legal 244-byte name failed as "File name too long", naming the temporary)."""
    tail = f".{uuid.uuid4().hex[:8]}.tmp{suffix}"
    return f".{cut_to_bytes(name, NAME_MAX - len(f'.{tail}'.encode()))}{tail}"


def cut_to_bytes(name: str, most: int) -> str:
    """`name` cut to at most `most` bytes of UTF-8, never inside a character (a file name's limit is in bytes)."""
    return name.encode("utf-8")[:most].decode("utf-8", errors="ignore")


_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.tmp(\.[^.]*)?")


def remove_temporaries(folder: Path) -> None:
    """Delete the temporary files in `folder` that a killed process left mid-write (`_temporary_name`'s, never
    a file of other names); an unreadable or missing folder is left as it is."""
    try:
        for tmp in folder.iterdir():
            if _TEMPORARY.fullmatch(tmp.name) and tmp.is_file():
                _remove(tmp)
    except OSError:
        pass


def _remove(tmp: Path) -> None:
    """Remove a temporary file if there is one, never masking the error that got us here."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically (all or nothing, even on power loss after return)."""
    with atomic_path(path) as tmp:
        with open(tmp, "xb") as f:
            f.write(data)


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself; directories cannot be opened for fsync on Windows, where it is skipped."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
