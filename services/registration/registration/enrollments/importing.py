"""R-ENR-5: enrollment import from CSV or XLSX.

The file is read into rows by :mod:`registration.enrollments.reading`, in a process of its own
and never on the event loop, with a time limit (``IMPORT_READ_TIMEOUT``) and caps on every row
and cell read: 2 MiB uploaded and 50 MiB unpacked (413), 5000 data rows, nothing past row 20,000
or column AX (blank rows and cells included), 200,000 cells; a workbook is checked with expat
(no DTD, so no entity expansion; row numbers and cell references sane) before openpyxl reads it,
and a cell openpyxl cannot read is a 422 naming its row, never a 500.

The whole file is parsed and validated before anything is written; any bad row makes the
import fail with every bad row listed (row number, column, reason). Row numbers are the file's
own, as a spreadsheet shows them (a header on the first line is row 1). Blank rows are skipped:
they never count against the data-row cap, and the rows after them keep their numbers. Validation
also checks that the rows needing a seat fit in each session's free seats. Valid files are
applied in the request's single transaction (all or nothing) through the admin enrollment of
:mod:`registration.enrollments.service`, which moves only pending and waitlisted users to
approved and leaves every other status as it is, so re-importing the same rows changes nothing.

Seats are checked when validating without holding locks; a sign-up that takes the last seats in
between makes the write fail (409 ``session_full`` naming the row), and nothing is imported.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from registration import readmodel
from registration.enrollments import reading
from registration.enrollments import rules as enrollment_rules
from registration.enrollments.reading import (
    MAX_BYTES as MAX_BYTES,  # the endpoint's read limit
)
from registration.enrollments.reading import (
    MAX_ROWS,
    MAX_UNPACKED_BYTES,
    UNCALCULATED,
    UNCALCULATED_REASON,
    NumberedRow,
    Refused,
    RowError,
    column_letter,
)
from registration.enrollments.schemas import MAX_EMAIL, MAX_USER_ID
from registration.enrollments.service import (
    AdminRequest,
    enroll_as_admin,
    prepare_admin_enrollment,
    resolve_emails,
)
from registration.models import Enrollment, SessionReplica
from te_shared import rules
from te_shared.contracts import EnrollmentStatus
from te_shared.errors import Conflict, PayloadTooLarge, Unprocessable
from te_shared.text import text_problem

#: A cell starting with one of these is a spreadsheet formula when re-opened in Excel/Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

#: longer than any session name; only a bound on what is read and echoed back
MAX_SESSION_NAME = 1000
USER_COLUMNS = ("user_id", "email")
SESSION_COLUMN = "session"


class ImportRejected(Unprocessable):
    code = "import_invalid"


def reject(errors: list[RowError], detail: str) -> ImportRejected:
    return ImportRejected(detail, extra={"errors": [e.as_dict() for e in errors]})


@dataclass(frozen=True)
class ImportRow:
    """A valid row: the person by user id, or (``user_id`` None) by an e-mail no user has
    signed in with yet; the e-mail lowercased."""

    row: int
    user_id: str | None
    email: str | None
    target: SessionReplica


async def read_table(
    data: bytes,
    filename: str | None,
    *,
    time_limit: float = reading.TIME_LIMIT,
    encoding: str = "utf-8",
) -> list[NumberedRow]:
    """The file's non-blank rows with their numbers, read in a process of its own (see
    :mod:`registration.enrollments.reading`); a file refused there is a 413 or 422 problem."""
    limits = reading.Limits(
        max_rows=MAX_ROWS, max_unpacked_bytes=MAX_UNPACKED_BYTES, time_limit=time_limit
    )
    try:
        return await reading.read_in_worker(data, filename, limits, encoding)
    except Refused as exc:
        if exc.too_large:
            raise PayloadTooLarge(exc.detail, code="import_too_large") from exc
        raise reject(exc.errors, exc.detail) from exc


@dataclass
class _Checked:
    """What the row checks found: rows that may be written and every error."""

    rows: list[ImportRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


async def validate(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, table: list[NumberedRow]
) -> list[ImportRow]:
    """Check every row; raise :class:`ImportRejected` listing all bad rows."""
    if not table:
        raise reject([RowError(1, "file", "the file is empty")], "The import file is empty.")
    header_row, header_cells = table[0]
    data = table[1:]
    if len(data) > MAX_ROWS:
        raise reject(
            [
                RowError(
                    data[MAX_ROWS][0],
                    "file",
                    f"at most {MAX_ROWS} rows may be imported at once (blank rows not counted); "
                    "this row is over the cap",
                )
            ],
            f"The import file has too many rows: at most {MAX_ROWS} may be imported at once.",
        )
    col, twice = enrollment_rules.import_columns(header_cells)
    if twice:
        errors = [
            RowError(
                header_row,
                column_letter(indexes[1] + 1),
                f"columns {' and '.join(column_letter(i + 1) for i in indexes)} both name "
                f"`{name}`: keep one",
            )
            for name, indexes in twice.items()
        ]
        raise reject(errors, "The import file names a column twice.")
    missing: list[RowError] = []
    if not any(name in col for name in USER_COLUMNS):
        missing.append(RowError(header_row, "user_id", "a `user_id` or `email` column is required"))
    if SESSION_COLUMN not in col:
        missing.append(RowError(header_row, SESSION_COLUMN, "a `session` column is required"))
    if missing:
        raise reject(missing, "The import file lacks required columns.")
    checked = await _check_rows(session, company_id, event_id, data, col)
    checked.errors += await _check_enrollments(session, company_id, event_id, checked.rows)
    if checked.errors:
        errors = sorted(checked.errors, key=lambda e: e.row)
        raise reject(errors, f"{len(errors)} problem(s) in the import file; nothing was imported.")
    return checked.rows


async def _check_rows(
    session: AsyncSession,
    company_id: str,
    event_id: uuid.UUID,
    data: list[NumberedRow],
    col: dict[str, int],
) -> _Checked:
    """Each row on its own: text, person, session; a person listed twice. A person named only
    by an e-mail nobody has signed in with is no error: they are enrolled by that e-mail and
    bound to the user who first signs in with it (R-ENR-5 ruling)."""
    sessions = await readmodel.session_by_name(session, company_id, event_id)
    cells_of_email = (_cell(cells, col.get("email")) for _, cells in data)
    known = await resolve_emails(
        session,
        company_id,
        (
            address
            for t in cells_of_email
            if t
            and text_problem(t, max_length=MAX_EMAIL) is None
            and (address := enrollment_rules.cell_address(t)) is not None
        ),
    )
    checked = _Checked()
    seen: dict[str, int] = {}
    for number, cells in data:
        user_id = _cell(cells, col.get("user_id"))
        email = _cell(cells, col.get("email")) or None
        name = _cell(cells, col.get(SESSION_COLUMN))
        row_errors = _text_errors(number, user_id, email, name)
        if row_errors:
            checked.errors += row_errors
            continue
        address = enrollment_rules.cell_address(email) if email is not None else None
        if email is not None and address is None:
            row_errors.append(RowError(number, "email", NOT_AN_ADDRESS))
            email = None
        elif address is not None:
            email = address.lower()
            user_id = user_id or known.get(email, "")
        if not user_id and email is None and not row_errors:
            row_errors.append(RowError(number, "user_id", "a user id or an email is required"))
        candidates = sessions.get(rules.name_key(name), []) if name else []
        if not name:
            row_errors.append(RowError(number, SESSION_COLUMN, "the session name is required"))
        elif not candidates:
            row_errors.append(
                RowError(number, SESSION_COLUMN, f"the event has no session named {quoted(name)}")
            )
        elif len(candidates) > 1:
            named = "; ".join(_names(s) for s in candidates)
            row_errors.append(
                RowError(
                    number,
                    SESSION_COLUMN,
                    f"{quoted(name)} names {len(candidates)} sessions of the event (in different "
                    f"languages): {named}; use a name only one of them has",
                )
            )
        person = user_id or f"email {email}"
        if not row_errors and person in seen:
            row_errors.append(
                RowError(
                    number,
                    "user_id" if user_id else "email",
                    f"the person is already listed on row {seen[person]}",
                )
            )
        if row_errors:
            checked.errors += row_errors
            continue
        seen[person] = number
        checked.rows.append(ImportRow(number, user_id or None, email, candidates[0]))
    return checked


def _names(target: SessionReplica) -> str:
    """A session as an error names it: its id and its names per locale."""
    names = ", ".join(f"{locale}: {quoted(text)}" for locale, text in (target.name or {}).items())
    return f"{target.session_id} ({names})"


NOT_AN_ADDRESS = (
    "not an email address: one address, as `ann@x.io` or `Ann Smith <ann@x.io>`, per cell"
)


def _text_errors(number: int, user_id: str, email: str | None, name: str) -> list[RowError]:
    """Cells that cannot be stored or echoed: formulas, control characters, overlong text."""
    errors: list[RowError] = []
    for column, value, limit in (
        ("user_id", user_id, MAX_USER_ID),
        ("email", email or "", MAX_EMAIL),
        (SESSION_COLUMN, name, MAX_SESSION_NAME),
    ):
        if value == UNCALCULATED:
            errors.append(RowError(number, column, UNCALCULATED_REASON))
            continue
        if column != SESSION_COLUMN and looks_like_formula(value):
            errors.append(RowError(number, column, "a cell starting with =, +, -, @ is refused"))
            continue
        problem = text_problem(value, max_length=limit, min_length=0)
        if problem is not None:
            errors.append(RowError(number, column, problem))
    return errors


async def _check_enrollments(
    session: AsyncSession, company_id: str, event_id: uuid.UUID, rows: list[ImportRow]
) -> list[RowError]:
    """Against what is stored: a person enrolled in another session of the event; rows that
    need a seat beyond the session's free seats (R-ENR-6). A new person and a waitlisted one
    moving to approved need a seat; a pending one holds one already; anyone else is left as
    is. Admin enrollment never waitlists, even where the session has a waitlist (ruling). A
    person is found by user id, or, named by an e-mail alone, by the enrollment made for that
    e-mail (so re-importing the same rows changes nothing, bound or not)."""
    if not rows:
        return []
    users = sorted({r.user_id for r in rows if r.user_id})
    emails = sorted({r.email for r in rows if r.user_id is None and r.email})
    live: dict[str, Enrollment] = {}
    if users:
        for e in await session.scalars(
            select(Enrollment).where(
                Enrollment.company_id == company_id,
                Enrollment.event_id == event_id,
                Enrollment.user_id.in_(users),
                Enrollment.status != EnrollmentStatus.CANCELLED,
            )
        ):
            live[str(e.user_id)] = e
    if emails:
        for e in await session.scalars(
            select(Enrollment).where(
                Enrollment.company_id == company_id,
                Enrollment.event_id == event_id,
                Enrollment.user_id.is_(None),
                Enrollment.email.in_(emails),
                Enrollment.status != EnrollmentStatus.CANCELLED,
            )
        ):
            live[f"email {e.email}"] = e
    errors: list[RowError] = []
    wanting: dict[uuid.UUID, list[ImportRow]] = {}
    for row in rows:
        existing = live.get(row.user_id or f"email {row.email}")
        if existing is not None and existing.session_id != row.target.session_id:
            errors.append(
                RowError(row.row, SESSION_COLUMN, "the person is enrolled in another session")
            )
        elif existing is None or existing.status == EnrollmentStatus.WAITLISTED:
            wanting.setdefault(row.target.session_id, []).append(row)
    for needing in wanting.values():
        target = needing[0].target
        if not target.limit_enabled or target.participant_limit is None:
            continue
        free = max(target.participant_limit - target.taken, 0)
        for row in needing[free:]:
            errors.append(
                RowError(
                    row.row,
                    SESSION_COLUMN,
                    f"the session {quoted(_name(target))} has {free} free seat(s) and "
                    f"{len(needing)} row(s) of this file need one; this row does not fit",
                )
            )
    return errors


def _name(target: SessionReplica) -> str:
    return next(iter((target.name or {}).values()), str(target.session_id))


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
    *,
    time_limit: float = reading.TIME_LIMIT,
    encoding: str = "utf-8",
) -> tuple[int, int]:
    """Validate the whole file, then enroll every row in this transaction. Returns
    ``(imported, unchanged)``. The file is read first, off the event loop and before the
    transaction takes a connection, so a slow file never holds one."""
    table = await read_table(data, filename, time_limit=time_limit, encoding=encoding)
    await readmodel.get_event(session, company_id, event_id)
    rows = await validate(session, company_id, event_id, table)
    requests = sorted(  # the lock order of enrollments.statuses: users, then e-mails
        (AdminRequest(r.user_id, r.email, r.target, r.row) for r in rows),
        key=lambda r: (r.user_id is None, r.user_id or "", r.email or ""),
    )
    batch = await prepare_admin_enrollment(session, company_id, event_id, requests, by=by)
    imported = unchanged = 0
    for request in requests:
        try:
            _, changed = await enroll_as_admin(
                session, company_id, event_id, request, batch, by=by, reason="import"
            )
        except Conflict as exc:  # a sign-up took the seat since validation: nothing is written
            raise Conflict(
                f"Row {request.row}: {exc.detail} Nothing was imported.",
                code=exc.code,
                extra={
                    "errors": [RowError(request.row or 0, "session", str(exc.detail)).as_dict()]
                },
            ) from exc
        imported += changed
        unchanged += not changed
    return imported, unchanged
