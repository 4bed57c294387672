"""Streaming CSV and JSON Lines files row by row, with line numbers and bytes read for progress.

Nothing here holds more than one row: a file of any size is read in constant memory.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

EXTENSIONS = (".csv", ".jsonl", ".ndjson")
csv.field_size_limit(16 * 1024 * 1024)  # one Excel cell may hold a long note; the default is 128 KB


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing, unsupported, unreadable). Says how to fix it."""


@dataclass(slots=True)
class Row:
    """One record of the file. `line` is where it starts (the CSV header is line 1)."""

    line: int
    values: dict[str, Any]
    error: str | None = None  # set when the record itself is unreadable (bad JSON, wrong field count)


class RowSource:
    """Rows of one file, plus what the progress bar needs (`bytes_read`, `total_bytes`)."""

    columns: list[str]

    def __init__(self, path: Path):
        self.path = path
        self.total_bytes = os.path.getsize(path)
        self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close() / the context manager

    @property
    def bytes_read(self) -> int:
        return self._raw.tell()

    def __iter__(self) -> Iterator[Row]:
        raise NotImplementedError

    def close(self) -> None:
        self._raw.close()

    def __enter__(self) -> RowSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CsvSource(RowSource):
    """A CSV file in UTF-8, with or without the byte-order mark Excel writes; the first line is the header."""

    def __init__(self, path: Path):
        super().__init__(path)
        self._text = io.TextIOWrapper(self._raw, encoding="utf-8-sig", newline="")
        delimiter = self._guess_delimiter()
        self._reader = csv.reader(self._text, delimiter=delimiter)
        try:
            header = next(self._reader)
        except StopIteration:
            raise ImportFileError(f"{path} is empty: a CSV import needs a header line naming the columns") from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ImportFileError(f"{path} is not readable as UTF-8 CSV ({exc}); save it as 'CSV UTF-8'") from None
        self.columns = [h.strip() for h in header]
        duplicated = sorted({c for c in self.columns if c and self.columns.count(c) > 1})
        if duplicated:
            raise ImportFileError(f"{path}: the header names {', '.join(map(repr, duplicated))} more than once")

    def _guess_delimiter(self) -> str:
        """Comma, or whichever of ; tab | the header uses more (Excel in some locales writes ;)."""
        try:
            header = self._text.readline()
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"{self.path} is not UTF-8 text ({exc}); save it as 'CSV UTF-8'") from None
        self._text.seek(0)
        counts = {d: header.count(d) for d in ",;\t|"}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] > counts[","] else ","

    def __iter__(self) -> Iterator[Row]:
        columns = self.columns
        width = len(columns)
        reader = self._reader
        last = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as exc:
                raise ImportFileError(f"{self.path} near line {last + 1} is not UTF-8 ({exc})") from None
            except csv.Error as exc:
                yield Row(last + 1, {}, f"unreadable CSV: {exc}")
                last = reader.line_num
                continue
            line, last = last + 1, reader.line_num
            if not any(f.strip() for f in fields):
                continue  # a blank line, or a row of empty cells as spreadsheets leave at the end
            if len(fields) != width:
                values = dict(zip(columns, fields, strict=False))
                yield Row(line, values, f"has {len(fields)} fields; the header has {width}")
                continue
            yield Row(line, dict(zip(columns, fields, strict=True)))


class JsonLinesSource(RowSource):
    """One JSON object per line (JSON Lines / NDJSON). Values may be nested (e.g. a `products` list)."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.columns = []
        first = self._raw.readline()
        while first and not first.strip():
            first = self._raw.readline()
        try:
            record = orjson.loads(first.removeprefix(b"\xef\xbb\xbf")) if first.strip() else {}
            if isinstance(record, dict):
                self.columns = list(record)
        except orjson.JSONDecodeError:
            pass
        self._raw.seek(0)

    def __iter__(self) -> Iterator[Row]:
        for line, data in enumerate(self._raw, start=1):
            if line == 1:
                data = data.removeprefix(b"\xef\xbb\xbf")
            if not data.strip():
                continue
            try:
                record = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                yield Row(line, {"_raw": data.decode("utf-8", "replace").rstrip("\r\n")}, f"invalid JSON: {exc}")
                continue
            if not isinstance(record, dict):
                yield Row(line, {"_raw": data.decode("utf-8", "replace").rstrip("\r\n")},
                          "each line must be a JSON object")
                continue
            yield Row(line, record)


def check_path(path: str | Path) -> Path:
    """`path` if it names an existing file of a supported type, else ImportFileError naming the problem."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise ImportFileError(
            f"{path.name}: unsupported file type {suffix or '(none)'!r}; use .csv or .jsonl (JSON Lines)"
        )
    if not path.exists():
        raise ImportFileError(f"{path}: no such file")
    if not path.is_file():
        raise ImportFileError(f"{path} is not a file")
    return path


def open_source(path: str | Path) -> RowSource:
    """Open `path` for streaming by its extension, or raise ImportFileError naming the problem."""
    path = check_path(path)
    try:
        return CsvSource(path) if path.suffix.lower() == ".csv" else JsonLinesSource(path)
    except PermissionError:
        raise ImportFileError(f"{path}: permission denied") from None
