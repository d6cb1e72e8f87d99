"""User-facing errors: one clear line each, so the CLI exits with status 2 and the app shows a dialog."""


class StmError(Exception):
    """Base of every error the engine raises on purpose; `str(err)` is a message fit for a user."""


class InputError(StmError):
    """A frame, mask, folder or video that cannot be used as given (the message names the file)."""


class WeightsError(StmError):
    """A weights file that is missing, truncated, not a checkpoint, or made for another model."""


class OutOfMemoryError(StmError):
    """The device ran out of memory; the user can retry with a smaller memory, resolution, or on the CPU."""
