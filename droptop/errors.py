"""The one exception type that reaches the user as a sentence instead of a traceback."""

from __future__ import annotations


class DroptopError(Exception):
    """A foreseeable failure: the message is shown as is, the exit code returned."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
