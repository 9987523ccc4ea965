"""Errors that the CLI turns into one line and exit code 2."""

from __future__ import annotations


class PrefdataError(Exception):
    """Bad input or configuration: the user can fix it. Printed as one line, exit code 2."""

    exit_code = 2


class InputError(PrefdataError):
    """A record or file that cannot be read, located by file, line (or row) and field."""

    def __init__(self, file: str, message: str, *, line: int | None = None, row: int | None = None,
                 field: str | None = None, whole_file: bool = False):
        self.file, self.line, self.row, self.field, self.message = file, line, row, field, message
        self.whole_file = whole_file  # the file as a whole is unreadable: --on-error skip cannot help
        super().__init__(self.location() + message)

    def location(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        elif self.row is not None:
            where += f": row {self.row}"
        if self.field:
            where += f": field {self.field!r}"
        return where + ": "


class RecordProblem(Exception):
    """Raised inside a format adapter; the reader adds file and line. `drop` marks a data-quality drop
    (a well-formed row that cannot become a record, e.g. chosen and rejected with different prompts),
    which is set aside with its reason instead of failing the read."""

    def __init__(self, message: str, *, field: str | None = None, reason: str = "invalid",
                 drop: bool = False):
        self.message, self.field, self.reason, self.drop = message, field, reason, drop
        super().__init__(message)
