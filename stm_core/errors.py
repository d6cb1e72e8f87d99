"""User-facing errors: one clear line each, so the CLI exits with status 2 and the app shows a dialog."""


class StmError(Exception):
    """Base of every error the engine raises on purpose; `str(err)` is a message fit for a user."""


class InputError(StmError):
    """A frame, mask, folder or video that cannot be used as given (the message names the file)."""


class SettingsError(StmError, ValueError):
    """An engine setting out of its range; `field` names it (the CLI turns it into its option's name)."""

    def __init__(self, field: str, requirement: str) -> None:
        super().__init__(f"{field} {requirement}")
        self.field, self.requirement = field, requirement


class WeightsError(StmError):
    """A weights file that is missing, truncated, not a checkpoint, or made for another model."""


class OutOfMemoryError(StmError):
    """The device ran out of memory; the user can retry with a smaller memory, resolution, or on the CPU."""
