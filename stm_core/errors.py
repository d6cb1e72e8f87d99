"""User-facing errors: one clear line each, so the CLI exits with status 2 and the app shows a dialog."""

import os


class StmError(Exception):
    """Base of every error the engine raises on purpose; `str(err)` is a message fit for a user."""


class InputError(StmError):
    """A frame, mask, folder or video that cannot be used as given (the message names the file)."""

    @classmethod
    def unreadable(cls, what: str, path: object, exc: Exception) -> "InputError":
        """'cannot read {what} {path}: why': an empty file said to be empty, not "cannot identify image file"
        as for any foreign one (QA pass 79)."""
        try:
            empty = os.path.getsize(path) == 0  # type: ignore[arg-type]
        except (OSError, TypeError):
            empty = False
        return cls(f"cannot read {what} {path}: {'the file is empty (0 bytes)' if empty else exc}")


class SettingsError(StmError, ValueError):
    """An engine setting out of its range; `field` names it (the CLI turns it into its option's name)."""

    def __init__(self, field: str, requirement: str) -> None:
        super().__init__(f"{field} {requirement}")
        self.field, self.requirement = field, requirement


class WeightsError(StmError):
    """A weights file that is missing, truncated, not a checkpoint, or made for another model."""


class OutOfMemoryError(StmError):
    """The device ran out of memory; the user can retry with a smaller memory, resolution, or on the CPU."""
