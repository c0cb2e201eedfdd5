"""Amounts and dates for the server-rendered text, as the browser's ``Intl`` writes them.

The widget formats in the browser with ``Intl.NumberFormat`` / ``Intl.DateTimeFormat``;
the texts the server renders (summaries, the redemption page) must read the same, so this
module is a small table of the CLDR forms those APIs produce for our languages (no ICU
dependency). A browser test holds the two to each other for every row of the tables
(``tests/server/test_widget.py``), so a table that drifts from Chromium fails there.

- Currencies (ISO 4217 units): the locale's symbol and the currency's minor digits, e.g.
  ``$2.00`` (en) and ``US$2.00`` (zh-CN) for USD, ``CN¥2.00`` and ``¥2.00`` for CNY; a
  code not in `CURRENCIES` is written ``CODE 2.00`` (with a no-break space), as CLDR does.
- ``points`` and ``days``: grouped plain numbers (``1,000``); the unit word is the
  catalogue's (``{amount} points``, ``{amount} 积分``).
- Dates: in UTC (the server does not know the reader's zone), with the zone shown:
  ``Dec 8, 2026, 3:04 PM UTC`` / ``2026年12月8日 UTC 15:04``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

import attrs

__all__ = [
    "CURRENCIES",
    "DATE_FORMATS",
    "Currency",
    "format_amount",
    "format_datetime",
    "format_number",
    "is_currency",
]

_CURRENCY_CODE = re.compile(r"[A-Z]{3}")
_NBSP = "\u00a0"


@attrs.frozen
class Currency:
    """How one currency is written: minor digits and the symbol per language."""

    digits: int
    symbols: Mapping[str, str]


def _same(symbol: str, digits: int = 2) -> Currency:
    return Currency(digits, {"en": symbol, "zh-CN": symbol})


#: CLDR's symbols (what ``Intl.NumberFormat(lang, {style: "currency"})`` shows).
CURRENCIES: Mapping[str, Currency] = {
    "USD": Currency(2, {"en": "$", "zh-CN": "US$"}),
    "CNY": Currency(2, {"en": "CN¥", "zh-CN": "¥"}),
    "EUR": _same("€"),
    "GBP": _same("£"),
    "JPY": Currency(0, {"en": "¥", "zh-CN": "JP¥"}),
    "KRW": _same("₩", 0),
    "HKD": _same("HK$"),
    "TWD": _same("NT$"),
    "INR": _same("₹"),
    "CAD": _same("CA$"),
    "AUD": Currency(2, {"en": "A$", "zh-CN": "AU$"}),
}

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _date_en(at: dt.datetime) -> str:
    hour = at.hour % 12 or 12
    half = "AM" if at.hour < 12 else "PM"
    return f"{_MONTHS[at.month - 1]} {at.day}, {at.year}, {hour}:{at.minute:02d} {half} UTC"


def _date_zh(at: dt.datetime) -> str:
    return f"{at.year}年{at.month}月{at.day}日 UTC {at.hour:02d}:{at.minute:02d}"


#: language → UTC date-time writer; the browser's options are the widget's ``formatDate``.
DATE_FORMATS = {"en": _date_en, "zh-CN": _date_zh}


def is_currency(unit: str) -> bool:
    """An ISO 4217-shaped unit (the token spec's currency units)."""
    return _CURRENCY_CODE.fullmatch(unit) is not None


def format_number(value: int | float | Decimal, digits: int = 0) -> str:
    """``1234.5`` → ``1,234.50`` with ``digits`` decimals, rounding half away from zero."""
    exact = Decimal(str(value)).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return f"{exact:,.{digits}f}"


def format_amount(amount: int | float, unit: str, lang: str) -> str:
    """An amount of ``unit`` in ``lang``: currency style for currencies, else the number.

    Units other than currencies, ``points`` and ``days`` (a token spec violation that
    reached the store) keep their name after the number, as plain text.
    """
    if is_currency(unit):
        currency = CURRENCIES.get(unit)
        if currency is None:
            return f"{unit}{_NBSP}{format_number(amount, 2)}"
        return currency.symbols[lang] + format_number(amount, currency.digits)
    number = format_number(amount, 0 if float(amount).is_integer() else 2)
    return number if unit in ("points", "days") else f"{number} {unit}"


def format_datetime(at: dt.datetime, lang: str) -> str:
    """``at`` in UTC, written the ``lang`` way with the zone shown."""
    return DATE_FORMATS[lang](at.astimezone(dt.UTC))
