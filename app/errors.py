"""Turn any exception from the engine or the file system into a dialog title and a message for the user."""

from __future__ import annotations

import traceback

from stm_core.errors import InputError, OutOfMemoryError, StmError, WeightsError


def describe(exc: BaseException) -> tuple[str, str]:
    """(title, message) for an error dialog, the message a sentence (the engine's one-line errors start in lower
    case, as command-line errors do); unexpected errors also print their traceback for a bug report."""
    title, message = _describe(exc)
    return title, message[:1].upper() + message[1:]


def _describe(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, OutOfMemoryError):
        cpu = "" if "system memory" in str(exc) else ", or switch the device to CPU"
        return ("Out of memory", f"{exc}\n\nYour masks are kept. Lower the memory cap or the processing "
                                 f"resolution in Settings{cpu}, then propagate again.")
    if isinstance(exc, WeightsError):
        return "Model weights problem", f"{exc}\n\nChoose another weights file in Settings."
    if isinstance(exc, InputError):
        return "Cannot read input", str(exc)
    if isinstance(exc, StmError):
        return "Engine error", str(exc)
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return "Cannot read or write a file", f"{exc.strerror or exc}{where}"
    if isinstance(exc, ValueError):
        return "Cannot do that", str(exc)
    traceback.print_exception(exc)
    return "Unexpected error", f"{type(exc).__name__}: {exc}\n\nYour work is kept; please report this."
