"""Text that came from a report, made safe to show: in XML, in a terminal, in a spreadsheet.

Dimension values are whatever apps sent (an OS version string, an endpoint, an error
code), so they are treated as hostile everywhere they are shown:

- XML (`xml_text`): characters XML 1.0 forbids (NUL and most C0 controls, lone
  surrogates, U+FFFE/U+FFFF) would make the whole document ill-formed even escaped,
  and bidirectional overrides could reorder what a reader sees; both become U+FFFD.
  ``& < > " '`` are escaped, so text is safe in element content and quoted attributes.
- Terminals (`terminal_text`): C0/C1 controls and DEL (ANSI escape sequences, carriage
  returns) are shown as ``\\xNN`` instead of being obeyed.
- Spreadsheets (`csv_cell`): a cell starting with ``= + - @`` (or a tab / CR) would be
  read as a formula, so it gets a leading ``'`` (OWASP "CSV injection").
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "csv_cell",
    "display_width",
    "fit",
    "format_count",
    "format_lift",
    "format_percent",
    "terminal_text",
    "xml_text",
]

_XML_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]"
)
_TERMINAL_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}
_XML_SPECIAL = re.compile("[&<>\"']")


def xml_text(value: object) -> str:
    """``value`` as text safe in XML element content and quoted attribute values."""
    text = _XML_FORBIDDEN.sub("\ufffd", str(value))
    return _XML_SPECIAL.sub(lambda match: _XML_ESCAPES[match.group()], text)


def terminal_text(value: object) -> str:
    """``value`` with control characters spelled out (``\\x1b``), never obeyed."""
    return _TERMINAL_CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", str(value))


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell no spreadsheet evaluates as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide characters take two."""
    return sum(
        0
        if unicodedata.combining(ch)
        else 2
        if unicodedata.east_asian_width(ch) in ("W", "F")
        else 1
        for ch in text
    )


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` display columns, with ``…`` when it was cut."""
    if display_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = display_width(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def format_percent(share: float | None) -> str:
    """``0.8`` → ``80.0%``; None → ``-``."""
    return "-" if share is None else f"{share * 100:.1f}%"


def format_lift(lift: float | None) -> str:
    """``8`` → ``8.0`` and a multiplication sign; None (no calls) → ``-``."""
    return "-" if lift is None else f"{lift:.1f}\u00d7"


def format_count(value: float) -> str:
    """A count or an amount: whole numbers without a fraction, others with two decimals."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"
