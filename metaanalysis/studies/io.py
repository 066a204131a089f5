"""Reading input files safely, and tabular input (CSV) with errors that name
the file and line.

Only regular files are read: a FIFO, a device, a socket or a directory is
refused before a byte is read (opening a FIFO blocks until a writer appears,
and ``/dev/zero`` never ends), and reads are bounded by a byte limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from metaanalysis.errors import InputError

if TYPE_CHECKING:  # pandas is imported only when a CSV is read
    import pandas as pd

#: Larger CSV files are refused: a meta-analysis table has tens of rows, a
#: very large one a few thousand (well under 1 MB). ``meta pool --max-bytes``
#: raises the limit for a table that really is larger.
MAX_CSV_BYTES = 50 * 1024 * 1024


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (for error messages).

    Parameters
    ----------
    mode : int
        ``st_mode`` from ``os.stat``/``os.lstat``.

    Returns
    -------
    str
        E.g. "a named pipe (FIFO)".
    """
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular_file(path: str | os.PathLike, max_bytes: int) -> tuple[bytes | None, str]:
    """Read at most ``max_bytes + 1`` bytes of a regular file.

    Parameters
    ----------
    path : str or path-like
    max_bytes : int
        The caller's size limit; one byte more is read so that the caller
        can compare ``len(data)`` with ``max_bytes`` to detect a file over
        the limit.

    Returns
    -------
    data : bytes or None
        None when ``path`` is missing, not a regular file (directory, FIFO,
        device, socket) or unreadable.
    reason : str
        Why ``data`` is None, worded for an error message; "" otherwise.

    Notes
    -----
    The file is opened with ``O_NONBLOCK`` and checked with ``fstat`` on the
    open descriptor before anything is read: opening a FIFO for reading
    would otherwise block until a writer appears (``meta validate`` hung),
    and reading ``/dev/zero`` never ends. Checking the descriptor rather
    than the name leaves no window for the file to be swapped in between.
    The read is bounded, so a file that grows while it is read (or a
    ``/proc`` file that reports size 0) cannot exhaust memory.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            return None, "broken symbolic link (its target does not exist)"
        return None, "no such file"
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    if not stat.S_ISREG(st.st_mode):
        return None, f"is {file_kind(st.st_mode)}, expected a regular file"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None, f"is {file_kind(st.st_mode)}, expected a regular file"
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks), ""
    except OSError as exc:
        return None, f"cannot read file: {exc.strerror or exc}"
    finally:
        os.close(fd)


def read_csv(path: str | os.PathLike, max_bytes: int = MAX_CSV_BYTES) -> pd.DataFrame:
    """Read a CSV into a DataFrame of strings/numbers, or raise InputError.

    Cells are read as written: an empty cell is the empty string and ``NaN``
    or ``NA`` stay text, so the checks in :mod:`metaanalysis.api` can say
    which cell is empty or not a number (pandas would turn all of these into
    NaN). Duplicate column names are refused (pandas would rename the
    second to ``x.1`` and use the first silently).

    Parameters
    ----------
    path : str or path-like
    max_bytes : int
        Larger files are refused (default :data:`MAX_CSV_BYTES`).

    Returns
    -------
    pandas.DataFrame
        One row per data row, the header's column names.

    Raises
    ------
    InputError
        Naming the file (and line) of what is wrong.
    """
    import pandas as pd

    p = Path(path)
    if not isinstance(max_bytes, int) or max_bytes < 1:
        raise InputError(f"the size limit must be a positive number of bytes, got {max_bytes!r}")
    raw, why = read_regular_file(p, max_bytes)
    if raw is None:
        raise InputError("file not found" if why == "no such file" else why, file=str(p))
    if len(raw) > max_bytes:
        raise InputError(f"larger than the limit of {max_bytes} bytes (a meta-analysis table "
                         "is far smaller; raise the limit with --max-bytes if it is right)",
                         file=str(p))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", file=str(p)) from None
    if "\x00" in text:
        raise InputError("contains NUL bytes; is this a binary file?", file=str(p))
    if not text.strip():
        raise InputError("empty file", file=str(p))
    import csv
    import io

    try:
        header = next(csv.reader(io.StringIO(text)))
    except (csv.Error, StopIteration) as exc:
        raise InputError(f"not a valid CSV table: {exc}", file=str(p)) from None
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for name in names:
        if name == "":
            raise InputError("empty column name in the header (line 1)", file=str(p))
        if name in seen:
            raise InputError("duplicate column name in the header (line 1); which one to use "
                             "would be a guess", file=str(p), column=name)
        seen.add(name)
    try:
        df = pd.read_csv(io.StringIO(text), skipinitialspace=True, keep_default_na=False,
                         na_values=[], dtype=str)
    except Exception as exc:  # pandas raises several parser error types
        raise InputError(f"not a valid CSV table: {' '.join(str(exc).split())}",
                         file=str(p)) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip())
