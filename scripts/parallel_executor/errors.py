"""The one error boundary: user errors carry their exit code (PRODUCT §5)."""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class UserError(Exception):
    """A problem with the user's input or environment: printed as lines, never a traceback."""

    def __init__(self, lines: str | Sequence[str], exit_code: int = EXIT_USAGE) -> None:
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        self.exit_code = exit_code
        super().__init__("\n".join(self.lines))


def describe_os_error(error: OSError) -> str:
    from parallel_executor.system.locations import claude_home

    where = f"{error.filename}: " if error.filename else ""
    text = f"{where}{error.strerror or error}"
    home = str(claude_home())
    if str(error.filename or "").startswith(home):
        text += f" (the Claude home, CLAUDE_CONFIG_DIR={home}, must be a directory you can write)"
    return text
