"""Errors that the command line reports as one clean line (never a traceback)."""

from __future__ import annotations


class MetaError(Exception):
    """Base class for user-facing errors.

    ``str(err)`` is the full message printed by the CLI; it names the file,
    the field (and line where known) and what was expected.
    """


class InputError(MetaError, ValueError):
    """Bad input data: a missing column, a non-numeric value, an SD <= 0, ..."""

    def __init__(self, message: str, *, file: str | None = None, row: int | None = None,
                 column: str | None = None):
        self.file, self.row, self.column = file, row, column
        where = []
        if file:
            where.append(str(file))
        if row is not None:
            # data row 1 is line 2 of a CSV file (line 1 is the header)
            where.append(f"row {row} (line {row + 1})" if file else f"row {row}")
        if column:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
