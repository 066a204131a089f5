"""Reading tabular input (CSV) with errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

from metaanalysis.errors import InputError

#: larger CSV files are refused: a meta-analysis table has tens of rows
MAX_CSV_BYTES = 50 * 1024 * 1024


def read_csv(path):
    """Read a CSV into a DataFrame of strings/numbers, or raise InputError."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InputError("file not found", file=str(p))
    if p.is_dir():
        raise InputError("is a folder, expected a CSV file", file=str(p))
    if p.stat().st_size > MAX_CSV_BYTES:
        raise InputError(f"larger than {MAX_CSV_BYTES} bytes", file=str(p))
    try:
        raw = p.read_bytes()
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", file=str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", file=str(p)) from None
    if not text.strip():
        raise InputError("empty file", file=str(p))
    import io

    try:
        df = pd.read_csv(io.StringIO(text), skipinitialspace=True)
    except Exception as exc:  # pandas raises several parser error types
        raise InputError(f"not a valid CSV table: {exc}", file=str(p)) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df
