"""R-ENR-5: an import file (CSV or XLSX) read into numbered rows, in a process of its own.

Reading a file is CPU work whose size the upload chooses, so it never runs on the event loop:
:func:`read_in_worker` runs this module as a Python process of its own (``python -m
registration.enrollments.reading``: the file on its standard input, the rows as JSON on its
standard output), at most :data:`WORKERS` at a time per service process (the others wait their
turn without blocking the loop), and kills it when it has not answered :data:`KILL_GRACE`
seconds after the time limit (``IMPORT_READ_TIMEOUT``, 10 s by default). The reading loops check
the same deadline themselves, so a file that reads too slowly is refused (422) naming the row
reading stopped at, and nothing goes on reading past the limit. The process runs at a lower
CPU priority (:data:`NICENESS`), may grow its address space by at most :data:`MAX_MEMORY` (more
is a 413) and answers JSON, never a pickle: whatever a file does to the parsers stays in that
process.

Every row and cell read counts against a cap, blank ones included:

- :data:`MAX_BYTES` uploaded and :data:`MAX_UNPACKED_BYTES` unpacked (a zip bomb): 413.
- :data:`MAX_ROWS` data rows (blank rows not counted); :mod:`~registration.enrollments.importing`
  refuses a file with more, naming the first row over the cap. Reading stops there.
- :data:`MAX_ROW_NUMBER`: no row past it is read, blank or not (room for the data rows and three
  times as many blank ones). A CSV line or a sheet's ``<row r>`` or ``<dimension ref>`` beyond it
  is refused (422) naming the row, before openpyxl would yield an empty row for every missing
  row number up to it.
- :data:`MAX_COLUMNS` (A to AX; the import reads two or three): a wider row, or a cell to the
  right of AX even when blank, is refused naming the row, before openpyxl would pad the row out
  to the cell.
- :data:`MAX_CELLS` cells in the sheet and :data:`MAX_SHARED_STRINGS` strings in the workbook's
  shared-strings table, which openpyxl loads whole.
- :data:`MAX_TEXT` characters in the rows kept (a shared string repeated in every cell would
  otherwise make a small file a huge answer).

Before openpyxl sees a workbook, the standard library's expat checks it as a stream: no XML part
may declare a DTD (so no entity is ever expanded, as defusedxml would ensure), the shared strings
are counted, and the sheet openpyxl will read is scanned: row numbers must rise, every cell
reference must be one (``A0``, ``1A`` and ``XFE2`` are not) inside its row and to the right of
the previous cell, and a number, shared-string index, TRUE/FALSE or date cell must hold one. The
scan names the row (and the cell) of each problem; anything openpyxl still cannot read while the
rows are iterated is refused naming the row, never answered 500.
"""

from __future__ import annotations

import asyncio
import bisect
import codecs
import contextlib
import csv
import dataclasses
import io
import json
import os
import re
import sys
import time
import warnings
import weakref
import zipfile
import zlib
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args
from xml.parsers import expat

MAX_BYTES = 2 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_ROWS = 5000
MAX_ROW_NUMBER = 4 * MAX_ROWS
MAX_COLUMNS = 50
MAX_CELLS = 200_000
MAX_SHARED_STRINGS = MAX_CELLS
#: characters in the cells of the rows kept (what the reading process answers)
MAX_TEXT = 4 * 1024 * 1024
#: the reading process's answer: the kept text as UTF-8 JSON, with room for the quoting
MAX_ANSWER_BYTES = 6 * MAX_TEXT
#: a sheet's last column (XFD)
SHEET_COLUMNS = 16384
#: unreadable cells listed before the scan stops
MAX_CELL_ERRORS = 100
#: seconds a file may take to read unless the settings say otherwise
TIME_LIMIT = 10.0
#: files read at once per service process
WORKERS = 2
#: how far the reading process may grow its address space past where it starts
MAX_MEMORY = 256 * 1024 * 1024
#: the reading process's lower CPU priority (on a busy core the service's requests come first)
NICENESS = 10
#: how long past the time limit the reading process has to answer before it is killed
KILL_GRACE = 2.0
CHUNK = 64 * 1024

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
TYPES_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
SHARED_STRINGS_TYPE = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
)
_ROW, _CELL, _VALUE, _FORMULA, _DIMENSION, _STRING = (
    f"{MAIN_NS} {name}" for name in ("row", "c", "v", "f", "dimension", "si")
)
_OVERRIDE = f"{TYPES_NS} Override"
_CELL_REF = re.compile(r"([A-Z]{1,3})([1-9][0-9]{0,8})")
_AREA_END = re.compile(r"(?:[A-Z]{1,3}[0-9]{1,9}:)?([A-Z]{1,3})([0-9]{1,9})")
_ROW_NUMBER = re.compile(r"[0-9]{1,18}")
#: text of the file that may be quoted in an error: letters and digits only
_SAFE = re.compile(r"[A-Za-z0-9]{1,12}")


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "column": self.column,
            "reason": self.reason,
            "field": f"row {self.row}.{self.column}",
            "message": self.reason,
        }


class Refused(Exception):
    """The file cannot be imported as it is: a 413 when ``too_large``, else a 422."""

    def __init__(self, detail: str, errors: list[RowError], too_large: bool = False) -> None:
        super().__init__(detail, errors, too_large)
        self.detail = detail
        self.errors = errors
        self.too_large = too_large


@dataclass(frozen=True)
class Limits:
    max_rows: int = MAX_ROWS
    max_row_number: int = MAX_ROW_NUMBER
    max_columns: int = MAX_COLUMNS
    max_cells: int = MAX_CELLS
    max_shared_strings: int = MAX_SHARED_STRINGS
    max_text: int = MAX_TEXT
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES
    time_limit: float = TIME_LIMIT


#: A row of the file: its number as the file shows it (header = row 1) and its cells as text.
NumberedRow = tuple[int, list[str]]

#: What an XLSX cell reads as when it holds a formula without its result. Spreadsheet programs
#: save each formula's last result beside it (a formula whose result is empty text as a
#: ``str`` cell with an empty value); programs that write workbooks (openpyxl, most export
#: libraries) save the formula alone, and openpyxl reads that as an empty cell: the row would
#: lose its e-mail or session with nothing saying why. No XML text holds NUL, so no cell of a
#: workbook reads as this otherwise (a CSV cell that did is refused either way).
UNCALCULATED = "\x00uncalculated formula"
#: the row error of such a cell in a column the import reads
UNCALCULATED_REASON = (
    "the cell holds a formula whose result is not saved in the file: open the file in Excel "
    "or LibreOffice and save it (that stores the results), then import it again"
)


def column_letter(index: int) -> str:
    letters = ""
    while index > 0:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def column_index(letters: str) -> int:
    index = 0
    for letter in letters:
        index = index * 26 + ord(letter) - ord("A") + 1
    return index


def unreadable(errors: list[RowError]) -> Refused:
    return Refused("The import file cannot be read; nothing was imported.", errors)


def not_a_workbook(reason: str = "the file is not a valid XLSX workbook") -> Refused:
    return unreadable([RowError(0, "file", reason)])


class _Clock:
    """The deadline of one read; :meth:`check` refuses the file once it has passed."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.deadline = time.monotonic() + limit

    def check(self, row: int) -> None:
        if time.monotonic() > self.deadline:
            raise too_slow(self.limit, row)


def too_slow(limit: float, row: int = 0) -> Refused:
    where = "at this row " if row else ""
    return Refused(
        f"The import file took longer than {limit:g} s to read; nothing was imported.",
        [RowError(row, "file", f"reading stopped {where}after the {limit:g} s time limit")],
    )


def _check_size(data: bytes) -> None:
    if len(data) > MAX_BYTES:
        raise Refused(
            f"The import file is larger than {MAX_BYTES // 1024} KiB.",
            [RowError(0, "file", f"the file is larger than {MAX_BYTES // 1024} KiB")],
            too_large=True,
        )


def _is_xlsx(filename: str | None, data: bytes) -> bool:
    return (filename or "").lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04"


def read_table(
    data: bytes, filename: str | None, limits: Limits | None = None, encoding: str = "utf-8"
) -> list[NumberedRow]:
    """The file's non-blank rows with their numbers; the first is the header. Reading stops
    after one data row more than ``limits.max_rows``, which validation then refuses. A CSV is
    read in ``encoding`` (see :func:`decode_csv`). Runs on the calling thread: the service
    calls it through :func:`read_in_worker`."""
    limits = limits or Limits()
    _check_size(data)
    clock = _Clock(limits.time_limit)
    if _is_xlsx(filename, data):
        rows = _read_xlsx(data, limits, clock)
    else:
        rows = _read_csv(data, encoding)
    with contextlib.closing(rows):  # closes the workbook when reading stops early
        return _non_blank(rows, limits, clock)


def _non_blank(rows: Iterator[list[str]], limits: Limits, clock: _Clock) -> list[NumberedRow]:
    kept: list[NumberedRow] = []
    text = 0
    for number, cells in enumerate(rows, start=1):
        clock.check(number)
        if number > limits.max_row_number:
            raise too_long(number, limits)
        if len(cells) > limits.max_columns and any(c.strip() for c in cells[limits.max_columns :]):
            raise too_wide(number, limits, f"this row has {len(cells)} cells")
        if any(cell.strip() for cell in cells):
            kept.append((number, cells[: limits.max_columns]))
            text += sum(len(cell) for cell in kept[-1][1])
            if text > limits.max_text:
                reason = f"the rows up to this one hold more than {limits.max_text} characters"
                raise Refused(
                    "The import file holds more text than an import reads; nothing was imported.",
                    [RowError(number, "file", reason)],
                )
            if len(kept) > limits.max_rows + 1:  # the header and one row over the cap
                break
    return kept


def too_long(row: int, limits: Limits) -> Refused:
    return Refused(
        f"The import file is too long: rows after row {limits.max_row_number} are not read "
        "(blank rows included); nothing was imported.",
        [
            RowError(
                row,
                "file",
                f"rows after row {limits.max_row_number} are not read (blank rows included)",
            )
        ],
    )


def too_wide(row: int, limits: Limits, what: str, column: str = "file") -> Refused:
    last = column_letter(limits.max_columns)
    return Refused(
        f"The import file is too wide: columns after {last} are not read; nothing was imported.",
        [RowError(row, column, f"{what}: columns after {last} are not read, blank ones included")],
    )


#: Encodings an import may name for a CSV file that is not UTF-8: Excel saves "CSV" in the
#: Windows code page of its language (windows-1252 in Western Europe), not in UTF-8
CsvEncoding = Literal[
    "utf-8",
    "windows-1250",
    "windows-1251",
    "windows-1252",
    "windows-1253",
    "windows-1254",
    "windows-1257",
    "iso-8859-1",
    "iso-8859-2",
    "iso-8859-15",
    "koi8-r",
    "shift_jis",
    "gb18030",
    "big5",
]
CSV_ENCODINGS: tuple[str, ...] = get_args(CsvEncoding)
#: A byte order mark names the encoding whatever the import says: Excel's "CSV UTF-8" starts
#: with UTF-8's, its "Unicode Text" (tab-separated) with UTF-16's
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
#: a CSV's delimiter is the one its header line holds most of (a comma when none)
DELIMITERS = (",", ";", "\t")
NOT_UTF8 = (
    'the file is not UTF-8 text: save it as "CSV UTF-8" (Excel: Save As, CSV UTF-8), or '
    "name its encoding in the import's `encoding` field (windows-1252 is what Excel saves as "
    '"CSV" in Western Europe)'
)


def decode_csv(data: bytes, encoding: str = "utf-8") -> str:
    """The text of a CSV file: by its byte order mark when it has one, else in ``encoding``
    (one of :data:`CSV_ENCODINGS`). Refused naming the row of the first byte that is not text
    in that encoding: never guessed, as a wrong guess would enroll garbled e-mail addresses."""
    codec, name, marked = encoding, encoding, False
    for bom, bom_codec, bom_name in _BOMS:
        if data.startswith(bom):
            codec, name, marked = bom_codec, bom_name, True
            break
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        row = _row_at(data[: exc.start].decode(codec, errors="replace"))
        # UTF-8 by default: how to make the file UTF-8, or say what it is
        reason = NOT_UTF8 if codec == "utf-8" and not marked else f"the file is not {name} text"
        raise unreadable([RowError(row, "file", reason)]) from exc


def _row_at(before: str) -> int:
    """The row (a CSV record, as a spreadsheet numbers it) that the text after ``before``
    begins in."""
    try:
        records = sum(1 for _ in csv.reader(io.StringIO(before)))
    except csv.Error:  # it ends inside a quoted cell: count lines
        return before.count("\n") + 1
    return records + 1 if not before or before.endswith(("\n", "\r")) else records


def _read_csv(data: bytes, encoding: str = "utf-8") -> Generator[list[str], None, None]:
    text = decode_csv(data, encoding)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(DELIMITERS, key=first_line.count)  # the first of a tie: a comma
    # a record is a row (as a spreadsheet shows the file), even when a quoted cell spans lines
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    number = 0
    try:
        for cells in reader:
            number += 1
            yield cells
    except csv.Error as exc:  # e.g. a field over csv's size limit
        reason = f"the CSV cannot be parsed: {exc}"
        raise unreadable([RowError(number + 1, "file", reason)]) from exc


# --- XLSX ------------------------------------------------------------------------------------


def _read_xlsx(data: bytes, limits: Limits, clock: _Clock) -> Generator[list[str], None, None]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise not_a_workbook() from exc
    from openpyxl import load_workbook  # here: the reading process of a CSV goes without

    with archive:
        if sum(info.file_size for info in infos) > limits.max_unpacked_bytes:
            raise Refused(  # a zip bomb: small upload, huge sheet
                f"The workbook unpacks to more than {limits.max_unpacked_bytes // (1024 * 1024)} "
                "MiB.",
                [RowError(0, "file", "the workbook unpacks too far")],
                too_large=True,
            )
        strings = _check_parts(archive, limits, clock)
        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except MemoryError:
            raise
        except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
            raise not_a_workbook() from exc
        try:
            sheet = book.active
            if sheet is None:  # no sheet (or none whose part exists): an empty file
                return
            if not hasattr(sheet, "iter_rows"):
                raise not_a_workbook("the workbook's active sheet is a chart, not a table")
            # the part openpyxl reads the rows from (read-only worksheets keep its name)
            path = getattr(sheet, "_worksheet_path", None)
            if not isinstance(path, str):
                raise not_a_workbook()
            present, uncalculated = _scan_sheet(archive, path, strings, limits, clock)
            # the declared dimensions are the file's claim: trusting them would pad every row to
            # the claimed width; openpyxl still yields an empty row for every missing one, so the
            # rows keep the numbers the spreadsheet shows
            sheet.reset_dimensions()
            yield from _guarded_rows(sheet.iter_rows(values_only=True), present, uncalculated)
        finally:
            book.close()


def _guarded_rows(
    rows: Iterator[tuple[Any, ...]], present: list[int], uncalculated: dict[int, list[int]]
) -> Iterator[list[str]]:
    """openpyxl's rows as text, a formula whose result the file lacks as :data:`UNCALCULATED`;
    a row openpyxl cannot read is refused by its number (the next row of the file after the
    last one read)."""
    number = 0
    while True:
        try:
            values = next(rows)
        except StopIteration:
            return
        except MemoryError:
            raise
        except Exception as exc:
            at = bisect.bisect_right(present, number)
            row = present[at] if at < len(present) else number + 1
            reason = f"the sheet cannot be read at this row ({type(exc).__name__})"
            raise unreadable([RowError(row, "file", reason)]) from exc
        number += 1
        cells = ["" if v is None else str(v).strip() for v in values]
        for column in uncalculated.get(number, ()):
            if column <= len(cells):
                cells[column - 1] = UNCALCULATED
        yield cells


class _Stop(Exception):
    """Ends a scan early (the part's root element was reached)."""


#: what reading a part that is not XML, or not readable from the archive, raises
_NOT_XML = (
    expat.ExpatError,
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    RuntimeError,  # an encrypted member
    NotImplementedError,  # an unknown compression method
    ValueError,
    KeyError,
)


def _refuse_dtd(*_: Any) -> Any:
    raise not_a_workbook("the workbook declares a DTD (entities are not expanded)")


def _parser() -> Any:
    """An expat parser that refuses any DTD, hence any entity declaration."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_dtd
    parser.ExternalEntityRefHandler = _refuse_dtd
    return parser


def _feed(
    parser: Any, archive: zipfile.ZipFile, name: str, clock: _Clock, row: Callable[[], int]
) -> None:
    """Stream the part ``name`` through ``parser``, checking the deadline between chunks."""
    with archive.open(name) as source:
        while chunk := source.read(CHUNK):
            parser.Parse(chunk, False)
            clock.check(row())
        parser.Parse(b"", True)


def _check_parts(archive: zipfile.ZipFile, limits: Limits, clock: _Clock) -> int:
    """Refuse a DTD in any part; the size of the shared-strings table openpyxl will load."""
    names = set(archive.namelist())
    for name in sorted(names):
        parser = _parser()

        def root(*_: Any) -> None:
            raise _Stop

        parser.StartElementHandler = root
        # not XML (an image, a damaged part): openpyxl refuses it if it reads it at all
        with contextlib.suppress(_Stop, *_NOT_XML):
            _feed(parser, archive, name, clock, lambda: 0)
    # openpyxl loads the first part the manifest lists as shared strings
    path: list[str] = []

    def override(name: str, attrs: dict[str, str]) -> None:
        if name == _OVERRIDE and attrs.get("ContentType") == SHARED_STRINGS_TYPE and not path:
            path.append(attrs.get("PartName", "").removeprefix("/"))

    if "[Content_Types].xml" in names:
        parser = _parser()
        parser.StartElementHandler = override
        with contextlib.suppress(*_NOT_XML):  # openpyxl refuses it
            _feed(parser, archive, "[Content_Types].xml", clock, lambda: 0)
    if not path or path[0] not in names:
        return 0
    count = 0

    def string(name: str, _: dict[str, str]) -> None:
        nonlocal count
        if name == _STRING:
            count += 1
            if count > limits.max_shared_strings:
                raise not_a_workbook(
                    f"the workbook's shared-strings table holds more than "
                    f"{limits.max_shared_strings} strings"
                )

    parser = _parser()
    parser.StartElementHandler = string
    with contextlib.suppress(*_NOT_XML):  # openpyxl refuses it
        _feed(parser, archive, path[0], clock, lambda: 0)
    return count


def _cast_number(value: str) -> int | float:
    """As openpyxl reads a number cell."""
    if "." in value or "E" in value or "e" in value:
        return float(value)
    return int(value)


class _SheetScan:
    """The checks of one sheet part, as expat handlers; ``rows`` collects the row numbers."""

    def __init__(self, strings: int, limits: Limits) -> None:
        self.strings = strings
        self.limits = limits
        self.rows: list[int] = []
        self.row = 0  # the number of the row open or last closed, as openpyxl counts
        self.column = 0  # the column of the row's last cell
        self.cells = 0
        self.in_row = False
        self.stack: list[str] = []
        self.cell: tuple[str, str] | None = None  # (reference, type) of the open cell
        self.cell_depth = -1
        self.value: list[str] | None = None  # text of the open cell's first <v>
        self.cell_value: str | None = None
        self.formula = False  # the open cell holds a formula
        self.errors: list[RowError] = []
        #: the columns of such formulas, by row
        self.uncalculated: dict[int, list[int]] = {}

    def start(self, name: str, attrs: dict[str, str]) -> None:
        depth = len(self.stack)
        parent = self.stack[-1] if self.stack else None
        self.stack.append(name)
        if name == _ROW:
            self._row(attrs)
        elif parent == _ROW:  # openpyxl reads every element inside a row as a cell
            self._cell(attrs)
            self.cell_depth = depth
        elif name == _VALUE and self.cell and depth == self.cell_depth + 1:
            if self.cell_value is None:  # openpyxl reads the first
                self.value = []
        elif name == _FORMULA and self.cell and depth == self.cell_depth + 1:
            self.formula = True
        elif name == _DIMENSION:
            self._dimension(attrs.get("ref", ""))

    def end(self, name: str) -> None:
        self.stack.pop()
        if name == _VALUE and self.value is not None:
            self.cell_value = "".join(self.value)
            self.value = None
        elif self.cell is not None and len(self.stack) == self.cell_depth:
            if self.formula and not self.cell_value and self.cell[1] != "str":
                self._uncalculated()
            else:
                self._check_value(*self.cell, self.cell_value)
            self.cell = None
        elif name == _ROW:
            self.in_row = False

    def text(self, data: str) -> None:
        if self.value is not None:
            self.value.append(data)

    def _row(self, attrs: dict[str, str]) -> None:
        if self.in_row:
            raise unreadable([RowError(self.row, "file", "a row inside a row")])
        number_text = attrs.get("r")
        if number_text is None:
            number = self.row + 1
        elif _ROW_NUMBER.fullmatch(number_text):
            number = int(number_text)
        else:
            raise unreadable([RowError(self.row + 1, "file", "the row's number is not a number")])
        if number <= self.row or number < 1:
            reason = f"row {number} comes after row {self.row}: rows must be numbered upwards"
            raise unreadable([RowError(number if number >= 1 else self.row + 1, "file", reason)])
        if number > self.limits.max_row_number:
            raise too_long(number, self.limits)
        self.row, self.column, self.in_row = number, 0, True
        self.rows.append(number)

    def _cell(self, attrs: dict[str, str]) -> None:
        self.cells += 1
        if self.cells > self.limits.max_cells:
            raise unreadable(
                [
                    RowError(
                        self.row, "file", f"the sheet has more than {self.limits.max_cells} cells"
                    )
                ]
            )
        ref = attrs.get("r")
        if ref is None:
            column = self.column + 1
        else:
            match = _CELL_REF.fullmatch(ref)
            if match is None:
                shown = f"{ref!r} is" if _SAFE.fullmatch(ref) else "a cell's reference is"
                raise unreadable([RowError(self.row, "file", f"{shown} not a cell reference")])
            column = column_index(match[1])
            if column > SHEET_COLUMNS:
                reason = f"{ref!r} is not a cell reference: columns end at XFD"
                raise unreadable([RowError(self.row, "file", reason)])
            if int(match[2]) != self.row:
                reason = f"cell {ref} is inside row {self.row}"
                raise unreadable([RowError(self.row, column_letter(column), reason)])
        letter = column_letter(column)
        ref = ref or f"{letter}{self.row}"
        if column <= self.column:
            after = column_letter(self.column)
            reason = f"cell {ref} comes after column {after}: cells must be in order"
            raise unreadable([RowError(self.row, letter, reason)])
        if column > self.limits.max_columns:
            raise too_wide(self.row, self.limits, f"cell {ref}", letter)
        style = attrs.get("s")
        if style:
            try:
                int(style)
            except ValueError:
                reason = f"cell {ref} has a style that is not a number"
                self.errors.append(RowError(self.row, letter, reason))
        self.column = column
        self.cell = (ref, attrs.get("t", "n"))
        self.cell_value = None
        self.formula = False

    def _uncalculated(self) -> None:
        """A formula with no result saved beside it, which openpyxl reads as an empty cell:
        it is read as :data:`UNCALCULATED` instead."""
        self.uncalculated.setdefault(self.row, []).append(self.column)

    def _check_value(self, ref: str, kind: str, value: str | None) -> None:
        """The value openpyxl will convert by the cell's type converts."""
        if not value or kind == "inlineStr":  # openpyxl reads no value from these
            return
        problem = None
        try:
            if kind == "n":
                _cast_number(value)
            elif kind == "s":
                index = int(value)
                if not 0 <= index < self.strings:
                    problem = f"refers to shared string {index}; the workbook has {self.strings}"
            elif kind == "b":
                int(value)
            elif kind == "d":
                from openpyxl.utils.datetime import from_ISO8601

                from_ISO8601(value)
        except (ValueError, OverflowError, TypeError):
            problem = {
                "n": "is a number cell that holds no number",
                "s": "is a text cell that holds no shared-string index",
                "b": "is a TRUE/FALSE cell that holds neither",
                "d": "is a date cell that holds no date",
            }[kind]
        if problem is not None:
            letters = ref.rstrip("0123456789")
            self.errors.append(RowError(self.row, letters, f"cell {ref} {problem}"))
            if len(self.errors) >= MAX_CELL_ERRORS:
                raise unreadable(self.errors)

    def _dimension(self, ref: str) -> None:
        match = _AREA_END.fullmatch(ref)
        if match is None:  # openpyxl has read it: a form this scan does not bound (e.g. "A:B")
            return
        last_column, last_row = column_index(match[1]), int(match[2])
        if last_row > self.limits.max_row_number:
            raise too_long(last_row, self.limits)
        if last_column > self.limits.max_columns:
            raise too_wide(last_row, self.limits, f"the sheet declares its size as {ref}")


def _scan_sheet(
    archive: zipfile.ZipFile, path: str, strings: int, limits: Limits, clock: _Clock
) -> tuple[list[int], dict[int, list[int]]]:
    """Check the sheet part ``path`` before openpyxl reads it; its row numbers, rising, and
    the columns of the formulas without their results, by row."""
    scan = _SheetScan(strings, limits)
    parser = _parser()
    parser.StartElementHandler = scan.start
    parser.EndElementHandler = scan.end
    parser.CharacterDataHandler = scan.text
    parser.buffer_text = True
    try:
        _feed(parser, archive, path, clock, lambda: scan.row)
    except Refused:
        raise
    except Exception as exc:  # not well-formed, truncated, not in the archive
        raise unreadable(
            [RowError(scan.row, "file", "the sheet is not well-formed XML after this row")]
        ) from exc
    if scan.errors:
        raise unreadable(scan.errors)
    return scan.rows, scan.uncalculated


# --- off the event loop ----------------------------------------------------------------------


def _log() -> Any:
    from te_shared.logging import get_logger  # here: the reading process goes without

    return get_logger(__name__)


_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def _slot() -> asyncio.Semaphore:
    """The running loop's turns at reading (:data:`WORKERS` at once)."""
    loop = asyncio.get_running_loop()
    if loop not in _slots:
        _slots[loop] = asyncio.Semaphore(WORKERS)
    return _slots[loop]


#: the reading process: this module run as a script (see :func:`main`)
READER = (sys.executable, "-m", __name__)


async def read_in_worker(
    data: bytes, filename: str | None, limits: Limits | None = None, encoding: str = "utf-8"
) -> list[NumberedRow]:
    """:func:`read_table` in a process of its own, never on the event loop; raises
    :class:`Refused` for a file that cannot be read within the limits."""
    limits = limits or Limits()
    _check_size(data)
    if encoding not in CSV_ENCODINGS:  # the endpoint's enum holds it
        raise ValueError(f"not an import encoding: {encoding!r}")
    request = json.dumps(
        {"filename": filename, "limits": dataclasses.asdict(limits), "encoding": encoding}
    )
    answer = await run_reader(READER, request.encode() + b"\n" + data, limits.time_limit)
    if "rows" in answer:
        return [(int(number), [str(cell) for cell in cells]) for number, cells in answer["rows"]]
    if "refused" in answer:
        refused = answer["refused"]
        errors = [RowError(int(row), str(col), str(why)) for row, col, why in refused["errors"]]
        raise Refused(str(refused["detail"]), errors, bool(refused["too_large"]))
    if "killed" in answer:
        raise too_slow(limits.time_limit)
    _log().warning("import_read_failed", error=str(answer.get("failed"))[:500], bytes=len(data))
    raise not_a_workbook("the file cannot be read")


async def run_reader(argv: Sequence[str], request: bytes, time_limit: float) -> dict[str, Any]:
    """Run ``argv`` with ``request`` on its standard input and its JSON answer from its standard
    output; ``{"killed": ...}`` when it has not answered :data:`KILL_GRACE` seconds after
    ``time_limit`` (it is killed then), ``{"failed": ...}`` when it answers nothing sensible."""
    async with _slot():
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            output = await asyncio.wait_for(_exchange(process, request), time_limit + KILL_GRACE)
        except TimeoutError:
            seconds = round(time.monotonic() - started, 2)
            _log().warning("import_read_killed", seconds=seconds, bytes=len(request))
            return {"killed": seconds}
        except (OSError, _TooMuchOutput) as exc:  # it stopped reading, or answers too much
            return {"failed": type(exc).__name__}
        finally:
            if process.returncode is None:  # over the time limit, or the request was cancelled
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
    if process.returncode != 0:
        return {"failed": f"the reading process ended with {process.returncode}"}
    try:
        answer = await asyncio.to_thread(json.loads, output)
    except ValueError:
        return {"failed": "the reading process answered no JSON"}
    return answer if isinstance(answer, dict) else {"failed": "an answer that is not an object"}


class _TooMuchOutput(Exception):
    pass


async def _exchange(process: asyncio.subprocess.Process, request: bytes) -> bytes:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(request)
    await process.stdin.drain()
    process.stdin.close()
    chunks: list[bytes] = []
    size = 0
    while chunk := await process.stdout.read(CHUNK):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise _TooMuchOutput
        chunks.append(chunk)
    await process.wait()
    return b"".join(chunks)


def _limit_memory() -> None:
    try:
        import resource

        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = size + MAX_MEMORY
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, ValueError):  # not Linux: the time limit still holds
        pass


def main() -> None:
    """The reading process: a JSON line (``filename``, ``limits``) and the file's bytes on
    standard input; ``{"rows": ...}``, ``{"refused": ...}`` or ``{"failed": ...}`` on standard
    output."""
    warnings.simplefilter("ignore")  # openpyxl warns about what it drops; nobody reads them
    _limit_memory()
    with contextlib.suppress(OSError, AttributeError):  # the service comes first for the CPU
        os.nice(NICENESS)
    answer: dict[str, Any]
    try:
        request = json.loads(sys.stdin.buffer.readline())
        data = sys.stdin.buffer.read(MAX_BYTES + 1)
        limits = Limits(**request["limits"])
        encoding = request.get("encoding")
        if encoding not in CSV_ENCODINGS:
            raise ValueError("not an import encoding")
        answer = {"rows": read_table(data, request["filename"], limits, encoding)}
    except Refused as exc:
        errors = [(e.row, e.column, e.reason) for e in exc.errors]
        answer = {"refused": {"detail": exc.detail, "errors": errors, "too_large": exc.too_large}}
    except MemoryError:
        errors = [(0, "file", "the file needs too much memory to read")]
        detail = "The import file is too large to read."
        answer = {"refused": {"detail": detail, "errors": errors, "too_large": True}}
    except Exception as exc:  # a bug, or a file openpyxl fails on in a way not foreseen
        answer = {"failed": f"{type(exc).__name__}: {exc}"[:500]}
    sys.stdout.buffer.write(json.dumps(answer, ensure_ascii=False).encode())


if __name__ == "__main__":
    main()
