"""XLSX workbooks for the import tests: hand-made ones, written with :mod:`zipfile` so that a test
controls every part and attribute a library would write for it, and ones as openpyxl writes them
(as export scripts do: a cell starting with ``=`` is a formula, saved without its result)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="xl/workbook.xml" Type="http://schemas.openxmlformats.org'
        '/officeDocument/2006/relationships/officeDocument"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Target="worksheets/sheet1.xml" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/worksheet"/>'
        '<Relationship Id="rId2" Target="sharedStrings.xml" Type="http://schemas.'
        'openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
        "</Relationships>"
    ),
}


def xlsx_cell(ref: str, text: str) -> str:
    """An inline-string cell ``ref`` holding ``text``."""
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'


def xlsx_row(number: int, *texts: str) -> str:
    """Row ``number`` with ``texts`` in columns A, B, ... (inline strings)."""
    cells = "".join(xlsx_cell(f"{chr(ord('A') + i)}{number}", t) for i, t in enumerate(texts))
    return f'<row r="{number}">{cells}</row>'


def handmade_xlsx(
    sheet_data: str,
    *,
    shared_strings: list[str] | tuple[str, ...] = (),
    before_data: str = "",
    parts: Mapping[str, str | bytes | None] | None = None,
) -> bytes:
    """An XLSX workbook written by hand with :mod:`zipfile`, so that a test controls every
    ``r=`` attribute openpyxl would write for it: one sheet, ``xl/worksheets/sheet1.xml``, whose
    ``<sheetData>`` holds ``sheet_data`` (after ``before_data``, e.g. a ``<dimension>``), and a
    shared-strings table. ``parts`` adds or replaces parts by name (``None`` leaves one out)."""
    sheet = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        f"{before_data}<sheetData>{sheet_data}</sheetData></worksheet>"
    )
    strings = "".join(f"<si><t>{escape(s)}</t></si>" for s in shared_strings)
    every: dict[str, str | bytes | None] = {
        **_XLSX_PARTS,
        "xl/worksheets/sheet1.xml": sheet,
        "xl/sharedStrings.xml": (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            f"{strings}</sst>"
        ),
        **(parts or {}),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in every.items():
            if content is not None:
                archive.writestr(name, content)
    return buffer.getvalue()


def written_xlsx(*rows: list[Any]) -> bytes:
    """A workbook as openpyxl writes it, with ``rows`` from row 1; an empty list leaves that
    row blank."""
    from openpyxl import Workbook  # here: the hand-made workbooks go without

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for number, cells in enumerate(rows, start=1):
        for column, value in enumerate(cells, start=1):
            sheet.cell(row=number, column=column, value=value)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
