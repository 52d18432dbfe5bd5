"""R-ENR-5, findings F2 and F7: reading an import file, with workbooks written by hand so that
every ``r=`` attribute is the test's. The reading function runs in-process here; the last tests
run it as the service does, in a process of its own."""

from __future__ import annotations

import asyncio
import codecs
import dataclasses
import io
import os
import sys
import time
import zipfile
from pathlib import Path

import pytest

from registration.enrollments import importing, reading
from registration.enrollments.reading import Limits, Refused, read_in_worker, read_table
from te_testing.xlsx import handmade_xlsx, written_xlsx, xlsx_cell, xlsx_row

HEADER = xlsx_row(1, "user_id", "session")


def refused(data: bytes, filename: str = "users.xlsx", limits: Limits | None = None) -> Refused:
    with pytest.raises(Refused) as caught:
        read_table(data, filename, limits)
    return caught.value


def where(exc: Refused) -> list[tuple[int, str]]:
    return [(e.row, e.column) for e in exc.errors]


def timed_refusal(data: bytes, limits: Limits | None = None) -> tuple[Refused, float]:
    started = time.perf_counter()
    exc = refused(data, limits=limits)
    return exc, time.perf_counter() - started


# --- F2: nothing unbounded -------------------------------------------------------------------


@pytest.mark.parametrize("number", [20_001, 10_000_000, 4_294_967_295])
def test_f2_a_row_number_past_the_bound_is_refused_up_front(number: int) -> None:
    """The probe's file: one ``<row r="10000000">`` made openpyxl yield ten million empty rows
    (3.4 s on the event loop; ``4294967295`` about 24 minutes). The scan refuses it before
    openpyxl reads a row, naming the row."""
    sheet = HEADER + f'<row r="{number}">{xlsx_cell(f"A{number}", "late")}</row>'
    exc, seconds = timed_refusal(handmade_xlsx(sheet))
    assert where(exc) == [(number, "file")]
    assert f"after row {reading.MAX_ROW_NUMBER}" in exc.errors[0].reason
    assert "too long" in exc.detail
    assert seconds < 1


def test_f2_rows_up_to_the_bound_are_read_with_their_numbers() -> None:
    """Blank rows still keep the numbers the spreadsheet shows, up to the bound."""
    last = reading.MAX_ROW_NUMBER
    sheet = xlsx_row(3, "user_id", "session") + xlsx_row(last, "u-last", "Main")
    assert read_table(handmade_xlsx(sheet), "users.xlsx") == [
        (3, ["user_id", "session"]),
        (last, ["u-last", "Main"]),
    ]


@pytest.mark.parametrize(
    "row",
    [
        '<row r="2"><c r="XFD2"/></row>',  # one blank cell at the last column
        '<row r="2" spans="1:16384"><c r="A2"/><c r="XFD2"/></row>',
        '<row r="2"><c r="AY2"/></row>',  # the first column past the bound
        "<row>" + "<c/>" * 16384 + "</row>",  # cells without references, across the width
        '<row r="2"><x r="XFD2"/></row>',  # openpyxl reads any element in a row as a cell
    ],
    ids=["blank-xfd", "spans", "ay", "unreferenced", "not-a-c"],
)
def test_f2_a_blank_row_as_wide_as_the_sheet_is_refused_up_front(row: str) -> None:
    """openpyxl padded such a row to 16,384 values, and read every blank one of them; a cell
    (blank or not) past column AX is refused naming its row."""
    exc, seconds = timed_refusal(handmade_xlsx(HEADER + row))
    assert [e.row for e in exc.errors] == [2]
    assert "columns after AX" in exc.errors[0].reason
    assert "too wide" in exc.detail
    assert seconds < 1


def test_f2_a_sheet_claiming_absurd_dimensions_is_refused() -> None:
    for ref, row in (("A1:B1048576", 1048576), ("A1:XFD2", 2)):
        exc = refused(handmade_xlsx(HEADER, before_data=f'<dimension ref="{ref}"/>'))
        assert where(exc) == [(row, "file")]
    sheet = HEADER + xlsx_row(2, "u1", "Main")
    rows = read_table(handmade_xlsx(sheet, before_data='<dimension ref="A1:B2"/>'), "u.xlsx")
    assert rows == [(1, ["user_id", "session"]), (2, ["u1", "Main"])]


def test_f2_blank_rows_count_against_the_row_bound() -> None:
    """A file of blank lines used to be read to its end: blank rows did not count at all."""
    csv = b"user_id,session\n" + b"\n" * (2 * 1024 * 1024 - 100)
    exc, seconds = timed_refusal_csv(csv)
    assert where(exc) == [(reading.MAX_ROW_NUMBER + 1, "file")]
    assert seconds < 2
    blank_rows = "".join(f'<row r="{n}"/>' for n in range(2, reading.MAX_ROW_NUMBER + 2))
    exc = refused(handmade_xlsx(HEADER + blank_rows))
    assert where(exc) == [(reading.MAX_ROW_NUMBER + 1, "file")]


def timed_refusal_csv(data: bytes) -> tuple[Refused, float]:
    started = time.perf_counter()
    exc = refused(data, "users.csv")
    return exc, time.perf_counter() - started


def test_f2_a_csv_value_past_column_ax_is_refused_but_trailing_blank_cells_are_not() -> None:
    wide = b"user_id,session" + b"," * 60 + b"x\nu1,Main\n"
    assert where(refused(wide, "users.csv")) == [(1, "file")]
    trailing = b"user_id,session" + b"," * 60 + b"\nu1,Main\n"
    assert read_table(trailing, "users.csv")[1] == (2, ["u1", "Main"])


def test_f2_cells_and_shared_strings_are_capped() -> None:
    limits = Limits(max_cells=10, max_shared_strings=3)
    rows = "".join(f'<row r="{n}"><c r="A{n}"/><c r="B{n}"/></row>' for n in range(2, 10))
    exc = refused(handmade_xlsx(HEADER + rows), limits=limits)
    assert "more than 10 cells" in exc.errors[0].reason
    assert exc.errors[0].row == 6  # the row of the eleventh cell (the header holds two)
    exc = refused(handmade_xlsx(HEADER, shared_strings=["a", "b", "c", "d"]), limits=limits)
    assert "more than 3 strings" in exc.errors[0].reason


def test_f2_a_huge_shared_strings_table_is_refused_before_openpyxl_loads_it() -> None:
    """openpyxl loads the whole table before any row (2.9 million strings: 18 s, 280 MB)."""
    data = handmade_xlsx(HEADER, shared_strings=["s"] * (reading.MAX_SHARED_STRINGS + 1))
    exc, seconds = timed_refusal(data)
    assert "shared-strings table" in exc.errors[0].reason
    assert seconds < 3


def test_f2_the_text_kept_is_capped() -> None:
    """One long shared string in every cell is a small file but a huge answer."""
    rows = "".join(
        f'<row r="{n}"><c r="A{n}" t="s"><v>0</v></c><c r="B{n}" t="s"><v>0</v></c></row>'
        for n in range(2, 40)
    )
    exc = refused(
        handmade_xlsx(HEADER + rows, shared_strings=["x" * 50]), limits=Limits(max_text=1000)
    )
    assert where(exc) == [(11, "file")]
    assert "more text" in exc.detail


def heavy_workbook(rows: int = 4000, columns: int = 20) -> bytes:
    """Within every cap, but slow to read: ``rows`` x ``columns`` text cells."""
    letters = [chr(ord("A") + i) for i in range(columns)]
    body = "".join(
        f'<row r="{n}">' + "".join(xlsx_cell(f"{c}{n}", f"v{n}") for c in letters) + "</row>"
        for n in range(2, rows + 2)
    )
    return handmade_xlsx('<row r="1">' + xlsx_cell("A1", "name") + "</row>" + body)


def test_f2_the_reading_loops_stop_at_the_time_limit() -> None:
    """The scan and the row loop check the deadline themselves: a read over the limit stops
    there and is refused naming the row it had reached."""
    data = heavy_workbook()
    started = time.perf_counter()
    exc = refused(data, limits=Limits(time_limit=0.05, max_rows=10_000))
    seconds = time.perf_counter() - started
    assert "took longer than 0.05 s" in exc.detail
    assert exc.errors[0].column == "file"
    assert exc.errors[0].row > 0
    assert seconds < 2


# --- F7: a cell openpyxl cannot read is a row error, never a crash ---------------------------


@pytest.mark.parametrize(
    ("cell", "column", "reason"),
    [
        ('<c r="A0" t="inlineStr"><is><t>x</t></is></c>', "file", "'A0' is not a cell reference"),
        ('<c r="1A" t="inlineStr"><is><t>x</t></is></c>', "file", "'1A' is not a cell reference"),
        ('<c r="XFE2"/>', "file", "columns end at XFD"),
        ('<c r="A2" t="n"><v>abc</v></c>', "A", "number cell that holds no number"),
        ('<c r="A2"><v>1.2.3</v></c>', "A", "number cell that holds no number"),
        ('<c r="A2" t="s"><v>99</v></c>', "A", "shared string 99; the workbook has 2"),
        ('<c r="A2" t="s"><v>-1</v></c>', "A", "shared string -1"),
        ('<c r="A2" t="s"><v>x</v></c>', "A", "no shared-string index"),
        ('<c r="A2" t="b"><v>yes</v></c>', "A", "TRUE/FALSE cell that holds neither"),
        ('<c r="A2" t="d"><v>not-a-date</v></c>', "A", "date cell that holds no date"),
        ('<c r="A2" s="bold"><v>1</v></c>', "A", "style that is not a number"),
        ('<c r="A3"><v>1</v></c>', "A", "cell A3 is inside row 2"),
        ('<c r="C2"><v>1</v></c><c r="A2"><v>2</v></c>', "A", "cells must be in order"),
    ],
)
def test_f7_a_cell_openpyxl_cannot_read_is_refused_naming_the_row(
    cell: str, column: str, reason: str
) -> None:
    """These answered 500 (openpyxl raised while the rows were read, where nothing caught it),
    or lost a cell silently (a cell left of the one before it)."""
    exc = refused(handmade_xlsx(HEADER + f'<row r="2">{cell}</row>', shared_strings=["a", "b"]))
    assert where(exc) == [(2, column)]
    assert reason in exc.errors[0].reason
    assert "cannot be read" in exc.detail


@pytest.mark.parametrize(
    ("rows", "row", "reason"),
    [
        ('<row r="x"><c/></row>', 2, "row's number is not a number"),
        ('<row r="0"><c/></row>', 2, "rows must be numbered upwards"),
        (xlsx_row(5, "a") + xlsx_row(3, "b"), 3, "row 3 comes after row 5"),
        (xlsx_row(2, "a") + xlsx_row(2, "b"), 2, "row 2 comes after row 2"),
        ('<row r="2"><c r="A2"><row r="3"/></c></row>', 2, "a row inside a row"),
    ],
)
def test_f7_row_numbers_openpyxl_cannot_follow_are_refused(
    rows: str, row: int, reason: str
) -> None:
    """A row numbered backwards or twice was dropped silently; ``r="x"`` answered 500."""
    exc = refused(handmade_xlsx(HEADER + rows))
    assert where(exc) == [(row, "file")]
    assert reason in exc.errors[0].reason


def test_f7_every_unreadable_cell_is_listed() -> None:
    rows = "".join(f'<row r="{n}"><c r="B{n}"><v>x{n}</v></c></row>' for n in range(2, 6))
    exc = refused(handmade_xlsx(HEADER + rows))
    assert where(exc) == [(2, "B"), (3, "B"), (4, "B"), (5, "B")]


def test_f7_what_the_scan_lets_through_and_openpyxl_still_fails_on_names_the_row() -> None:
    """The last guard: openpyxl raising while rows are read (here on a column definition it
    cannot read, after the rows) is a refusal naming the row reading stopped at."""
    data = handmade_xlsx(
        HEADER + xlsx_row(2, "u1", "Main"),
        parts={
            "xl/worksheets/sheet1.xml": (
                '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                f"<sheetData>{HEADER}{xlsx_row(2, 'u1', 'Main')}</sheetData>"
                '<cols><col min="x" max="2"/></cols></worksheet>'
            )
        },
    )
    exc = refused(data)
    assert where(exc) == [(3, "file")]
    assert "cannot be read at this row" in exc.errors[0].reason


def test_f7_dates_booleans_inline_strings_and_error_values_read_as_text() -> None:
    """No 500 for the other kinds of cell: they read as the text a spreadsheet shows (what
    validation then makes of it: an unknown session, say)."""
    row = (
        '<row r="2"><c r="A2" t="d"><v>2024-05-01T09:00:00</v></c><c r="B2" t="b"><v>1</v></c>'
        '<c r="C2" t="inlineStr"><is><t>inline</t></is></c><c r="D2" t="e"><v>#N/A</v></c>'
        '<c r="E2" t="str"><v>formula text</v><f>"formula "&amp;"text"</f></c></row>'
    )
    assert read_table(handmade_xlsx(HEADER + row), "users.xlsx")[1] == (
        2,
        ["2024-05-01 09:00:00", "True", "inline", "#N/A", "formula text"],
    )


def test_a_formula_whose_result_the_file_lacks_reads_as_uncalculated() -> None:
    """A workbook a program wrote (openpyxl here, as HR tools' export scripts do) keeps each
    formula without its result; openpyxl read such a cell as empty, so the row lost its
    e-mail with nothing saying why. It reads as UNCALCULATED, which the import's row checks
    refuse in a column they read, with the fix."""
    book = written_xlsx(
        ["email", "session", "name"],
        ['=LOWER("Ann@Example.com")', "Main", "Ann"],
        ["bo@example.com", "Main", '=UPPER("bo")'],
    )
    assert read_table(book, "people.xlsx") == [
        (1, ["email", "session", "name"]),
        (2, [reading.UNCALCULATED, "Main", "Ann"]),
        (3, ["bo@example.com", "Main", reading.UNCALCULATED]),
    ]


def test_formulas_with_their_saved_results_read_as_the_results() -> None:
    """As Excel and LibreOffice save them: a number, a text (``str``), an empty text, an
    error value; the result is what is read, never the formula."""
    row = (
        '<row r="2"><c r="A2"><f>1+1</f><v>2</v></c>'
        '<c r="B2" t="str"><f>LOWER("A@X.IO")</f><v>a@x.io</v></c>'
        '<c r="C2" t="str"><f>""</f><v></v></c>'
        '<c r="D2" t="e"><f>1/0</f><v>#DIV/0!</v></c>'
        '<c r="E2" t="b"><f>TRUE()</f><v>1</v></c></row>'
    )
    assert read_table(handmade_xlsx(HEADER + row), "users.xlsx")[1] == (
        2,
        ["2", "a@x.io", "", "#DIV/0!", "True"],
    )


def test_f7_a_workbook_without_its_sheet_or_any_sheet_is_an_empty_file() -> None:
    no_part = handmade_xlsx(HEADER, parts={"xl/worksheets/sheet1.xml": None})
    assert read_table(no_part, "users.xlsx") == []
    no_sheets = handmade_xlsx(
        HEADER,
        parts={
            "xl/workbook.xml": (
                '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                "<sheets/></workbook>"
            )
        },
    )
    assert read_table(no_sheets, "users.xlsx") == []


@pytest.mark.parametrize(
    "part",
    [
        "xl/worksheets/sheet1.xml",
        "xl/sharedStrings.xml",
        "xl/workbook.xml",
        "[Content_Types].xml",
        "docProps/core.xml",
    ],
)
def test_f7_a_dtd_in_any_part_is_refused_so_no_entity_expands(part: str) -> None:
    """A billion-laughs DTD: refused before openpyxl parses anything (defusedxml-style)."""
    laughs = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    )
    original = handmade_xlsx(HEADER)
    with zipfile.ZipFile(io.BytesIO(original)) as archive:
        text = archive.read(part).decode() if part in archive.namelist() else "<x>&lol2;</x>"
    body = text.split("?>", 1)[-1]
    exc = refused(handmade_xlsx(HEADER, parts={part: laughs + body}))
    assert "DTD" in exc.errors[0].reason


def test_f7_damaged_workbooks_are_refused() -> None:
    for data in (
        b"PK\x03\x04garbage",
        handmade_xlsx(HEADER, parts={"xl/worksheets/sheet1.xml": "<worksheet><sheetData>"}),
        handmade_xlsx(HEADER + "<row r='2'><c r='A2'><v>1</v></c>"),  # never closed
    ):
        exc = refused(data)
        assert exc.errors[0].column == "file"
        assert not exc.too_large


# --- in a process of its own, as the service reads -------------------------------------------


async def test_f2_the_service_reads_in_a_process_of_its_own() -> None:
    ok = handmade_xlsx(HEADER + xlsx_row(2, "u1", "Main"))
    assert await read_in_worker(ok, "users.xlsx") == [
        (1, ["user_id", "session"]),
        (2, ["u1", "Main"]),
    ]
    probe = handmade_xlsx(HEADER + f'<row r="10000000">{xlsx_cell("A10000000", "x")}</row>')
    with pytest.raises(Refused) as caught:
        await read_in_worker(probe, "users.xlsx")
    assert where(caught.value) == [(10_000_000, "file")]
    with pytest.raises(Refused) as caught:
        await read_in_worker(b"x" * (reading.MAX_BYTES + 1), "users.csv")
    assert caught.value.too_large


async def test_f2_the_event_loop_keeps_serving_while_a_file_is_read() -> None:
    """The loop's longest stall while a slow (legal) workbook is read next to it."""
    task = asyncio.create_task(read_in_worker(heavy_workbook(), "users.xlsx", Limits()))
    worst = 0.0
    ticks = 0
    while not task.done():
        before = time.perf_counter()
        await asyncio.sleep(0.01)
        worst = max(worst, time.perf_counter() - before - 0.01)
        ticks += 1
    assert len(task.result()) == 4001
    assert ticks > 10  # the read took a while, and the loop went on meanwhile
    assert worst < 0.25


async def test_f2_a_reader_over_the_time_limit_is_killed(tmp_path: Path) -> None:
    """A reading process that does not answer (here one that only sleeps) is killed shortly
    after the limit: nothing goes on running in the background."""
    pid_file = tmp_path / "pid"
    sleeper = [
        sys.executable,
        "-c",
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)",
    ]
    started = time.perf_counter()
    answer = await reading.run_reader(sleeper, b"", 0.2)
    assert "killed" in answer
    assert time.perf_counter() - started < 0.2 + reading.KILL_GRACE + 2
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


async def test_f2_a_slow_file_is_a_422_naming_the_time_limit() -> None:
    """Through the import's own reading (the endpoint passes IMPORT_READ_TIMEOUT)."""
    with pytest.raises(importing.ImportRejected) as caught:
        await importing.read_table(heavy_workbook(), "users.xlsx", time_limit=0.05)
    assert caught.value.status == 422
    assert "took longer than 0.05 s" in str(caught.value.detail)
    assert caught.value.extra["errors"][0]["column"] == "file"


def test_f2_limits_travel_to_the_reading_process_as_json() -> None:
    """The process gets its limits as JSON: every field must survive the trip."""
    limits = Limits(max_rows=7, time_limit=1.5)
    assert Limits(**dataclasses.asdict(limits)) == limits


def test_r_enr_5_a_csv_is_read_in_the_encoding_its_mark_or_the_import_names() -> None:
    """UTF-8 unless the import names another encoding; a byte order mark (UTF-8, UTF-16 in
    either byte order) names it whatever the import says; a file not in the encoding is
    refused naming the row (a spreadsheet's, across a quoted cell of two lines) of its first
    byte that is not."""
    text = 'user_id;session\r\nu1;"Früh\r\nmorgens"\r\nu2;Spät\r\n'
    cp1252 = text.encode("windows-1252")
    exc = refused(cp1252, "users.csv")
    assert where(exc) == [(2, "file")]  # the ü of row 2
    assert exc.errors[0].reason == reading.NOT_UTF8
    expected = [(1, ["user_id", "session"]), (2, ["u1", "Früh\r\nmorgens"]), (3, ["u2", "Spät"])]
    assert read_table(cp1252, "users.csv", encoding="windows-1252") == expected
    for data in (
        text.encode("utf-8-sig"),
        codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
        codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    ):
        assert read_table(data, "users.csv", encoding="windows-1252") == expected
    with pytest.raises(Refused) as caught:
        read_table("u;s\r\nu1;Спб\r\n".encode("windows-1251"), "u.csv", encoding="shift_jis")
    assert caught.value.errors[0].reason == "the file is not shift_jis text"


def test_r_enr_5_the_delimiter_is_the_one_the_header_holds_most_of() -> None:
    for data, value in (
        (b"user_id,session\nu1,Main; late\n", "Main; late"),
        (b"user_id;session\nu1;Main, late\n", "Main, late"),
        (b"user_id\tsession\nu1\tMain, late; or not\n", "Main, late; or not"),
    ):
        assert read_table(data, "users.csv")[1] == (2, ["u1", value])


async def test_r_enr_5_the_reading_process_reads_the_named_encoding() -> None:
    data = "user_id;session\nu1;Früh\n".encode("windows-1252")
    rows = await read_in_worker(data, "users.csv", encoding="windows-1252")
    assert rows[1] == (2, ["u1", "Früh"])
    with pytest.raises(ValueError, match="not an import encoding"):
        await read_in_worker(data, "users.csv", encoding="rot13")
