"""Lock files that say which live process writes a folder: two writers of one folder undo each other's work
(two app windows on one video's workspace, two command-line runs into one output folder).

A lock is a small JSON file (process id, host, a token telling two writers in one process apart) created
exclusively. A lock whose process has ended (a crash, a kill) counts as free and is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

import psutil


def holder(path: Path, alive_only: bool = True) -> dict | None:
    """Who holds the lock at `path`: None if nobody, or (with `alive_only`) if its process has ended or was
    started after the lock was written (its number reused). A lock from another machine is taken as held."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        written = path.stat().st_mtime
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    if not alive_only or record.get("host") != socket.gethostname():
        return record
    try:
        process = psutil.Process(int(record.get("pid", -1)))
        return record if process.create_time() <= written + 1 else None
    except (psutil.Error, ValueError, TypeError):
        return None


def take(path: Path, token: str) -> dict | None:
    """Take the lock at `path` (its folder is made) for `token`. Returns None when taken (or already held with
    that token), else the live holder's record, and nothing is taken. OSError where it cannot be written, or
    where other writers kept taking it over meanwhile."""
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "token": token}
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(200):  # a few tries, and waits while another writer takes over a dead one's lock
        try:
            _create(path, json.dumps(mine))
            return None
        except FileExistsError:
            text = _read(path)
            record = holder(path)
            if record is None:  # its process is gone (or the file went meanwhile: nothing to remove then)
                if text is not None:
                    _remove_dead(path, text)
                continue
            return None if record.get("token") == token else record
    raise OSError(f"the lock {path} kept changing hands")


def _remove_dead(path: Path, text: str) -> None:
    """Remove the lock at `path` if it still holds `text`, a dead writer's, and nothing else. One writer at a time
    does so, holding a guard file: removing it where it lay let two writers take it (QA pass 85: one removed the
    lock another had just taken). Only a writer holding the guard removes a lock, and a lock changes only by
    being removed, so the one it reads under the guard is the one it removes. A guard older than
    `STALE_GUARD_SECONDS` is a dead writer's, and goes."""
    guard = path.with_name(f".{path.name}.takeover")
    try:
        os.close(os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        try:
            if time.time() - guard.stat().st_mtime > STALE_GUARD_SECONDS:
                guard.unlink(missing_ok=True)
        except OSError:
            pass
        time.sleep(0.005)  # another writer is at it: look again
        return
    try:
        if _read(path) == text:
            path.unlink(missing_ok=True)
    finally:
        guard.unlink(missing_ok=True)


STALE_GUARD_SECONDS = 10.0


def _create(path: Path, text: str) -> None:
    """Create `path` holding `text`, or raise FileExistsError. Written aside and hard-linked into place, so the
    file never exists empty: another writer reading an empty lock took it for a dead one and took it over
    (QA pass 80). Where the file system has no hard links, it is created exclusively, then written."""
    aside = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    try:  # a full disk fails the write: nothing is left aside either (QA pass 81)
        aside.write_text(text, encoding="utf-8")
        try:
            os.link(aside, path)
        except FileExistsError:
            raise
        except OSError:  # no hard links here
            with open(path, "x", encoding="utf-8") as f:
                f.write(text)
    finally:
        aside.unlink(missing_ok=True)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def release(path: Path, token: str) -> None:
    """Remove the lock at `path` if it is held with `token`."""
    record = holder(path, alive_only=False)
    if record is not None and record.get("token") == token:
        path.unlink(missing_ok=True)


def who(record: dict) -> str:
    """The holder for a message: "process 123", with its host where that is another machine."""
    host = record.get("host")
    return f"process {record.get('pid')}" + ("" if host == socket.gethostname() else f" on {host}")
