"""Hand freed heap memory back to the operating system.

Freeing the engine's caches returns their blocks to the allocator, not to the system: glibc keeps freed arenas
and tcmalloc (which the README recommends preloading) keeps its page heap, so the process's resident size did not
fall when the user cleared the engine's memory. Both allocators can be asked to release what they hold free.
"""

from __future__ import annotations

import ctypes
import sys


def release_free_heap() -> str | None:
    """Ask the process's allocator to return its free pages; returns which allocator was asked (None: none
    that this knows, e.g. on Windows or macOS, where nothing is done)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        process = ctypes.CDLL(None)
    except OSError:
        return None
    tcmalloc = getattr(process, "MallocExtension_ReleaseFreeMemory", None)  # present only when tcmalloc is loaded
    if tcmalloc is not None:
        tcmalloc()
        return "tcmalloc"
    trim = getattr(process, "malloc_trim", None)  # glibc; absent under musl
    if trim is not None:
        trim(0)
        return "glibc"
    return None
