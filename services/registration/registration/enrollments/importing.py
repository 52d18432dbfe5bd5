"""R-ENR-5: enrollment import from CSV or XLSX.

The whole file is parsed and validated before anything is written; any bad row makes the
import fail with every bad row listed (row number, column, reason). Valid files are applied in
the request's single transaction (all or nothing) through :func:`admin_enroll`, which leaves an
already approved enrollment untouched, so re-importing the same rows changes nothing.
"""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registration import readmodel
from registration.enrollments.service import admin_enroll
from registration.models import Enrollment, KnownUser, SessionReplica
from te_shared.contracts import EnrollmentStatus
from te_shared.errors import Conflict, PayloadTooLarge, Unprocessable

#: A cell starting with one of these is a spreadsheet formula when re-opened in Excel/Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

MAX_BYTES = 2 * 1024 * 1024
MAX_UNPACKED_BYTES = 50 * 1024 * 1024
MAX_ROWS = 5000
USER_COLUMNS = ("user_id", "email")
SESSION_COLUMN = "session"


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


class ImportRejected(Unprocessable):
    code = "import_invalid"


def reject(errors: list[RowError], detail: str) -> ImportRejected:
    return ImportRejected(detail, extra={"errors": [e.as_dict() for e in errors]})


@dataclass(frozen=True)
class ImportRow:
    row: int
    user_id: str
    email: str | None
    target: SessionReplica


def _is_xlsx(filename: str | None, data: bytes) -> bool:
    return (filename or "").lower().endswith(".xlsx") or data[:4] == b"PK\x03\x04"


def read_table(data: bytes, filename: str | None) -> list[list[str]]:
    """Rows of cells as text; row 1 is the header."""
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(
            f"The import file is larger than {MAX_BYTES // 1024} KiB.", code="import_too_large"
        )
    if _is_xlsx(filename, data):
        return _read_xlsx(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise reject(
            [RowError(0, "file", "the file is neither UTF-8 text nor an XLSX workbook")],
            "The import file cannot be read.",
        ) from exc
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    try:
        return list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:  # e.g. a field over csv's size limit, a NUL byte
        raise reject(
            [RowError(0, "file", f"the CSV cannot be parsed: {exc}")],
            "The import file cannot be read.",
        ) from exc


def _read_xlsx(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        unpacked = 0  # load_workbook below reports the bad file
    if unpacked > MAX_UNPACKED_BYTES:  # a zip bomb: small upload, huge sheet
        raise PayloadTooLarge(
            f"The workbook unpacks to more than {MAX_UNPACKED_BYTES // (1024 * 1024)} MiB.",
            code="import_too_large",
        )
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged or foreign file
        raise reject(
            [RowError(0, "file", "the file is not a valid XLSX workbook")],
            "The import file cannot be read.",
        ) from exc
    try:
        sheet = book.active
        if sheet is None:
            return []
        rows: list[list[str]] = []
        for values in sheet.iter_rows(values_only=True):
            rows.append(["" if v is None else str(v).strip() for v in values])
            if len(rows) > MAX_ROWS + 1:
                break
        return rows
    finally:
        book.close()


async def validate(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, table: list[list[str]]
) -> list[ImportRow]:
    """Check every row; raise :class:`ImportRejected` listing all bad rows."""
    rows = [r for r in table if any(cell.strip() for cell in r)]
    if not rows:
        raise reject([RowError(1, "file", "the file is empty")], "The import file is empty.")
    header = [cell.strip().lower() for cell in rows[0]]
    data = rows[1:]
    if len(data) > MAX_ROWS:
        raise reject(
            [RowError(MAX_ROWS + 2, "file", f"at most {MAX_ROWS} rows may be imported at once")],
            "The import file has too many rows.",
        )
    missing: list[RowError] = []
    if not any(col in header for col in USER_COLUMNS):
        missing.append(RowError(1, "user_id", "a `user_id` or `email` column is required"))
    if SESSION_COLUMN not in header:
        missing.append(RowError(1, SESSION_COLUMN, "a `session` column is required"))
    if missing:
        raise reject(missing, "The import file lacks required columns.")
    col = {name: header.index(name) for name in (*USER_COLUMNS, SESSION_COLUMN) if name in header}
    sessions = await readmodel.session_by_name(session, company_id, event_id)
    emails = {_cell(r, col.get("email")).lower() for r in data if _cell(r, col.get("email"))}
    known: dict[str, str] = {}
    if emails:
        known = {
            k.email: k.user_id
            for k in await session.scalars(
                select(KnownUser).where(
                    KnownUser.company_id == company_id, KnownUser.email.in_(sorted(emails))
                )
            )
        }
    errors: list[RowError] = []
    result: list[ImportRow] = []
    seen: dict[str, int] = {}
    for number, cells in enumerate(rows[1:], start=2):
        user_id = _cell(cells, col.get("user_id"))
        email = _cell(cells, col.get("email")) or None
        name = _cell(cells, col.get(SESSION_COLUMN))
        row_errors: list[RowError] = []
        for column, value in (("user_id", user_id), ("email", email or "")):
            if looks_like_formula(value):
                row_errors.append(
                    RowError(number, column, "a cell starting with =, +, -, @ is refused")
                )
        if row_errors:
            errors.extend(row_errors)
            continue
        if email is not None and "@" not in email:
            row_errors.append(RowError(number, "email", "not an email address"))
        if not user_id and email is not None and "@" in email:
            user_id = known.get(email.lower(), "")
            if not user_id:
                row_errors.append(
                    RowError(number, "email", f"no known user has email {quoted(email)}")
                )
        elif not user_id and email is None:
            row_errors.append(RowError(number, "user_id", "a user id or an email is required"))
        if len(user_id) > 200:
            row_errors.append(RowError(number, "user_id", "the user id is too long"))
        target = sessions.get(readmodel.normalise_name(name)) if name else None
        if not name:
            row_errors.append(RowError(number, SESSION_COLUMN, "the session name is required"))
        elif target is None:
            row_errors.append(
                RowError(number, SESSION_COLUMN, f"the event has no session named {quoted(name)}")
            )
        if user_id and user_id in seen and not row_errors:
            row_errors.append(
                RowError(number, "user_id", f"the user is already listed on row {seen[user_id]}")
            )
        if row_errors or target is None:
            errors.extend(row_errors)
            continue
        seen[user_id] = number
        result.append(ImportRow(number, user_id, email, target))
    if not errors:
        errors = await _check_other_sessions(session, company_id, event_id, result)
    if errors:
        raise reject(errors, f"{len(errors)} problem(s) in the import file; nothing was imported.")
    return result


async def _check_other_sessions(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, rows: list[ImportRow]
) -> list[RowError]:
    live = {
        e.user_id: e.session_id
        for e in await session.scalars(
            select(Enrollment).where(
                Enrollment.company_id == company_id,
                Enrollment.event_id == event_id,
                Enrollment.user_id.in_(sorted({r.user_id for r in rows})),
                Enrollment.status != EnrollmentStatus.CANCELLED,
            )
        )
    }
    return [
        RowError(row.row, SESSION_COLUMN, "the user is enrolled in another session")
        for row in rows
        if live.get(row.user_id, row.target.session_id) != row.target.session_id
    ]


def looks_like_formula(value: str) -> bool:
    return value.startswith(FORMULA_PREFIXES)


def quoted(value: str) -> str:
    """``value`` as it may be echoed back: formula-looking text is defused with a leading ``'``
    (OWASP's CSV-injection advice), so an error report pasted into a spreadsheet stays inert."""
    return repr("'" + value if looks_like_formula(value) else value)


def _cell(cells: list[str], index: int | None) -> str:
    if index is None or index >= len(cells):
        return ""
    return cells[index].strip()


async def import_file(
    session: AsyncSession,
    company_id: str,
    event_id: uuid.UUID,
    data: bytes,
    filename: str | None,
    by: str,
) -> tuple[int, int]:
    await readmodel.get_event(session, company_id, event_id)
    rows = await validate(session, company_id, event_id, read_table(data, filename))
    imported = unchanged = 0
    for row in rows:
        try:
            _, changed = await admin_enroll(
                session,
                company_id,
                event_id,
                row.target,
                row.user_id,
                row.email,
                by=by,
                reason="import",
            )
        except Conflict as exc:
            raise Conflict(
                f"Row {row.row}: {exc.detail} Nothing was imported.",
                code=exc.code,
                extra={"errors": [RowError(row.row, "session", str(exc.detail)).as_dict()]},
            ) from exc
        imported += changed
        unchanged += not changed
    return imported, unchanged
