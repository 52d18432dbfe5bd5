"""Input types shared by the catalog's request bodies: nothing a client sends may cause a 500.

R-DAY-2's two kinds of place live here, as checks the request schemas run (so a refused value
never reaches the service) and the day service runs again on what it stores:

- an offline day's **address** is free text that may contain links. They are kept as text and
  only http, https and mailto links are ever rendered; a link that runs script or reaches local
  files (``javascript:``, ``vbscript:``, ``data:text/html,...``, ``file:///...``) is refused,
  however it is written: HTML character references (``java&#115;cript:``,
  ``javascript&colon;``), percent-encoding (``javascript%3A``), tabs, line breaks and invisible
  characters inside the scheme (``java\\tscript:``), and full-width forms are undone before
  looking. HTML markup is refused too: ``<`` directly followed by a letter, ``/``, ``!`` or ``?``
  (what starts a tag, an end tag, a comment or a processing instruction in HTML), also when
  written as ``&lt;``. ``<`` followed by anything else ("Room <5>", "a < b") is text.
- an online day's **link** is a well-formed absolute http(s) URL: no whitespace, control or
  invisible characters, quotes, angle brackets, backslashes or other characters RFC 3986 does
  not allow; percent escapes well formed; no user name or password; a host that is a DNS name
  with valid labels or an IPv4/IPv6 literal; a port from 1 to 65535; at most 2000 characters.
"""

from __future__ import annotations

import datetime as dt
import html
import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import unquote, urlsplit
from zoneinfo import available_timezones

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from te_shared.text import CleanText

#: The years a time may be written in: a range where day arithmetic cannot overflow.
EARLIEST_YEAR, LATEST_YEAR = 1971, 2999
#: RFC 3339's ``date-time`` (what JSON Schema's ``format: date-time`` names), with a year from
#: 1971 to 2999 as written. Pydantic alone would also take a number of seconds, a space for the
#: ``T``, a time without seconds or an offset without its colon.
INSTANT_PATTERN = (
    r"^(?:197[1-9]|19[89][0-9]|2[0-9]{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
    r"(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
)
_INSTANT = re.compile(INSTANT_PATTERN)


def _written_as_stated(value: object) -> object:
    if isinstance(value, str) and not _INSTANT.fullmatch(value):
        raise PydanticCustomError(
            "datetime_format",
            "Input should be an RFC 3339 date-time with an offset, such as "
            "2030-05-01T09:00:00+03:00, in a year from {earliest} to {latest}",
            {"earliest": EARLIEST_YEAR, "latest": LATEST_YEAR},
        )
    return value


def _in_range(value: dt.datetime) -> dt.datetime:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ValueError(f"the time must be in a year from {EARLIEST_YEAR} to {LATEST_YEAR}")
    return value


#: An RFC 3339 time with an offset, in a year (as written) from 1971 to 2999.
Instant = Annotated[
    AwareDatetime,
    BeforeValidator(_written_as_stated),
    AfterValidator(_in_range),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": INSTANT_PATTERN,
            "description": "RFC 3339, with an offset, in a year from 1971 to 2999.",
        }
    ),
]

#: An IANA time zone name, one of those the service knows (:func:`validate_timezone`).
TimeZoneName = Annotated[
    str,
    CleanText(64),
    WithJsonSchema(
        {
            "type": "string",
            "enum": sorted(available_timezones()),
            "description": "An IANA time zone name, such as `Europe/Moscow`.",
        }
    ),
]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a place (an address or a link) is refused: a code and a message for the client."""

    code: str
    message: str


MAX_PLACE = 2000

# --- addresses -------------------------------------------------------------------------------

#: links that run script or reach local files: ``javascript:``, ``vbscript:``, ``data:``
#: followed by a media type (``data:text/html,...``) and ``file:`` followed by a path, so that
#: "Data: room 5" or "File: B2" stay plain text.
_UNSAFE_LINK = re.compile(
    r"""\b(?:
        (?:java|vb)script\s*:
      | data\s*:\s*(?:application|audio|font|image|message|model|multipart|text|video|x-[\w.+-]+)
        /[\w.+-]+
      | file\s*:\s*[/\\]
    )""",
    re.IGNORECASE | re.VERBOSE,
)
#: what starts HTML markup: a tag, an end tag, a comment or doctype, a processing instruction
_MARKUP = re.compile(r"<[A-Za-z/!?]")
UNSAFE_LINK = Refusal("unsafe_link", "The address may only contain http, https or mailto links.")
MARKUP = Refusal(
    "markup",
    "The address is plain text: HTML markup (such as <a ...>, <img ...> or <!-- -->) is not "
    "allowed; a '<' followed by a letter, '/', '!' or '?' starts markup.",
)
OVER_ENCODED = Refusal(
    "unsafe_link",
    "The address is encoded over and over (HTML character references or percent-encoding): "
    "write it as plain text.",
)
#: rounds of decoding after which a text counts as built to hide something (honest text needs
#: one or two: "AT&amp;T" is "AT&T")
_DECODE_ROUNDS = 20


def _invisible(char: str) -> bool:
    """A character a reader does not see and URL parsers or linkers may drop: controls (tab and
    line breaks included) and format characters (zero-width space, soft hyphen, BOM, bidi)."""
    return unicodedata.category(char) in ("Cc", "Cf")


def _reading(text: str, invisible: str) -> str | None:
    """``text`` as a browser or a linker might read it once every layer of encoding is undone:
    HTML character references and percent-encoding decoded, full-width and other compatibility
    forms folded (NFKC) and invisible characters replaced by ``invisible``, until nothing changes.
    None when the text still changes after :data:`_DECODE_ROUNDS` rounds."""
    for _ in range(_DECODE_ROUNDS):
        decoded = unicodedata.normalize("NFKC", unquote(html.unescape(text), errors="replace"))
        decoded = "".join(invisible if _invisible(c) else c for c in decoded)
        if decoded == text:
            return text
        text = decoded
    return None


def address_refusal(address: str) -> Refusal | None:
    """R-DAY-2: why an offline day's address is refused, or None when it may be stored."""
    # invisible characters dropped (a tab inside "javascript:" is nothing to a URL parser) and
    # read as spaces (a line break before "javascript:" starts a word)
    dropped, spaced = _reading(address, ""), _reading(address, " ")
    if dropped is None or spaced is None:
        return OVER_ENCODED
    if _UNSAFE_LINK.search(dropped) or _UNSAFE_LINK.search(spaced):
        return UNSAFE_LINK
    if _MARKUP.search(dropped) or _MARKUP.search(spaced):
        return MARKUP
    return None


def _address(value: str) -> str:
    refusal = address_refusal(value)
    if refusal is not None:
        raise PydanticCustomError(refusal.code, refusal.message)
    return value


#: An offline day's address: free text over several lines (R-DAY-2); empty is the service's
#: "needs an address".
Address = Annotated[
    str, CleanText(MAX_PLACE, min_length=0, multiline=True), AfterValidator(_address)
]

# --- links -----------------------------------------------------------------------------------

NOT_A_LINK = Refusal("invalid_url", "An online day needs an absolute http or https URL.")
BAD_CHARACTERS = Refusal(
    "invalid_url",
    "The link may not contain spaces, control or invisible characters, quotes, angle "
    "brackets, backslashes or other characters a URL cannot hold (percent-encode them).",
)
BAD_PERCENT = Refusal("invalid_url", "The link has a '%' that is not followed by two hex digits.")
USER_INFO = Refusal("invalid_url", "The link may not contain a user name or password.")
BAD_HOST = Refusal(
    "invalid_url", "The link's host must be a domain name or an IPv4 or IPv6 address."
)
BAD_PORT = Refusal("invalid_url", "The link's port must be a number from 1 to 65535.")

#: ASCII characters RFC 3986 does not allow anywhere in a URI, plus the quote ``'`` (allowed
#: there, but it ends an attribute a link is written into)
_URL_FORBIDDEN = frozenset(" \"'<>\\^`{|}")
_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _forbidden_in_link(char: str) -> bool:
    return char in _URL_FORBIDDEN or char.isspace() or unicodedata.category(char)[0] in "CZ"


def _host_refusal(host: str, bracketed: bool) -> Refusal | None:
    """A DNS name with valid labels (internationalised names as their ASCII form), an IPv4
    address in dotted decimal, or a bracketed IPv6 address (without a zone)."""
    if bracketed:
        if "%" in host:  # a zone ("fe80::1%25eth0") means nothing outside the machine
            return BAD_HOST
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return BAD_HOST
        return None
    name = host[:-1] if host.endswith(".") else host
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return BAD_HOST
    labels = ascii_name.split(".")
    if len(ascii_name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return BAD_HOST
    if labels[-1].isdigit():  # a numeric last label makes it an IPv4 address (WHATWG URL)
        try:
            ipaddress.IPv4Address(ascii_name)
        except ValueError:
            return BAD_HOST
    return None


def link_refusal(url: str) -> Refusal | None:
    """R-DAY-2: why an online day's link is refused, or None when it is a well-formed absolute
    http(s) URL."""
    if not url or len(url) > MAX_PLACE:
        return NOT_A_LINK
    if any(_forbidden_in_link(c) for c in url):
        return BAD_CHARACTERS
    if _PERCENT.search(url):
        return BAD_PERCENT
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: "http://[x"
        return NOT_A_LINK
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return NOT_A_LINK
    if "@" in parts.netloc:
        return USER_INFO
    try:
        port = parts.port
    except ValueError:  # not a number, or above 65535
        return BAD_PORT
    if port == 0:
        return BAD_PORT
    host = parts.netloc.rpartition(":")[0] if port is not None else parts.netloc
    host = host.removesuffix(":")  # an empty port ("http://host:/") is allowed by RFC 3986
    bracketed = host.startswith("[")
    if bracketed != host.endswith("]"):
        return BAD_HOST
    return _host_refusal(host[1:-1] if bracketed else host, bracketed)


def _link(value: str) -> str:
    refusal = link_refusal(value) if value else None
    if refusal is not None:
        raise PydanticCustomError(refusal.code, refusal.message)
    return value


_LABEL_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_LAST_LABEL_PATTERN = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PORT_PATTERN = (
    r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
_REST_PATTERN = r"(?:[/?#](?:[A-Za-z0-9._~!$&()*+,;=:@/?#-]|%[0-9A-Fa-f]{2})*)?"
#: The links :func:`link_refusal` accepts, as far as a JSON Schema pattern can say it: http or
#: https, a DNS name whose last label is not a number (up to three labels before it), a port,
#: then the characters RFC 3986 allows, percent escapes well formed. (The service also takes
#: IPv4 and IPv6 hosts and internationalised names; the pattern does not show them.) Empty is
#: "no link" (an online day needs one).
LINK_PATTERN = (
    r"^\s*(?:[Hh][Tt][Tt][Pp][Ss]?://"
    rf"(?:{_LABEL_PATTERN}\.){{0,3}}{_LAST_LABEL_PATTERN}(?::{_PORT_PATTERN})?{_REST_PATTERN}"
    r")?\s*$"
)

#: An online day's link (R-DAY-2); empty is the service's "needs a URL".
WebLink = Annotated[
    str,
    CleanText(MAX_PLACE, min_length=0),
    AfterValidator(_link),
    WithJsonSchema({"type": "string", "maxLength": MAX_PLACE, "pattern": LINK_PATTERN}),
]
