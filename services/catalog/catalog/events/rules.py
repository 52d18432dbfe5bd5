"""Pure rules of events: titles (R-SES-2's sibling for events) and the meeting topic a day's
Zoom meeting gets. No session, no HTTP."""

from __future__ import annotations

from catalog.events.schemas import TITLE_MAX, Title
from te_shared.errors import field_error

#: Zoom refuses longer topics
TOPIC_MAX = 200


def clean_title(value: Title, locales: list[str]) -> dict[str, str]:
    """A plain string titles every locale; a dict names some of the company's locales."""
    raw = dict.fromkeys(locales, value) if isinstance(value, str) else dict(value)
    if not raw:
        raise field_error("body.title", "A title is required.")
    title: dict[str, str] = {}
    for locale, text in raw.items():
        field = "body.title" if isinstance(value, str) else f"body.title.{locale}"
        if locale not in locales:
            raise field_error(field, f"{locale!r} is not one of the company's locales {locales}.")
        cleaned = text.strip()
        if not cleaned or len(cleaned) > TITLE_MAX:
            raise field_error(field, f"A title has 1 to {TITLE_MAX} characters.")
        title[locale] = cleaned
    return title


def first_text(texts: dict[str, str]) -> str:
    """The text of the first locale (the company's first)."""
    return next(iter(texts.values()), "") if texts else ""


def topic(title: dict[str, str], names: dict[str, str]) -> str:
    """A day's Zoom meeting topic: the event title and the session name (first locale of
    each), at most 200 characters."""
    head, name = first_text(title), first_text(names)
    return f"{head} — {name}"[:TOPIC_MAX] if name else head[:TOPIC_MAX]
