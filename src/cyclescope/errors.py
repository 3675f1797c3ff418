"""The errors cyclescope raises on purpose.

:class:`CommandError` carries an exit status; the CLI prints its message as
one line, without a traceback. Anything else escaping the CLI is a bug.
"""

from __future__ import annotations

__all__ = ["CyclescopeError", "CommandError"]


class CyclescopeError(Exception):
    """Base class of cyclescope's own errors."""


class CommandError(CyclescopeError):
    """A command cannot go on: bad input, missing file. Printed as one line."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
