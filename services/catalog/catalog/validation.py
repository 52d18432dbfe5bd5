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

from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError

from te_shared.text import CleanText

EARLIEST = dt.datetime(1971, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(2999, 1, 1, tzinfo=dt.UTC)


def _in_range(value: dt.datetime) -> dt.datetime:
    if not EARLIEST <= value <= LATEST:
        raise ValueError("the time must be between 1971 and 2999")
    return value


#: An ISO 8601 time with an offset, in a range where day arithmetic cannot overflow.
Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]


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


#: An online day's link (R-DAY-2); empty is the service's "needs a URL".
WebLink = Annotated[str, CleanText(MAX_PLACE, min_length=0), AfterValidator(_link)]
