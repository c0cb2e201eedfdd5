"""``Retry-After`` (RFC 9110 §10.2.3): delta-seconds or an HTTP-date."""

from __future__ import annotations

import email.utils
import math
import time

__all__ = ["cap_retry_after", "parse_retry_after"]

# A header longer than any valid HTTP-date is garbage; do not even parse it.
_MAX_HEADER_LENGTH = 64


def parse_retry_after(value: str | bytes | None, *, now: float | None = None) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header value.

    Args:
        value: the raw header value: ``"120"`` or ``"Wed, 21 Oct 2015 07:28:00 GMT"``.
        now: the current time as a Unix timestamp (defaults to `time.time()`);
            only used for the HTTP-date form.

    Returns:
        The wait in seconds (a date in the past gives ``0.0``), or None when the
        value is absent, negative, non-finite or not a valid form. Never raises.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    text = value.strip()
    if not text or len(text) > _MAX_HEADER_LENGTH:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        # RFC 9110 dates are always GMT; parsedate gives naive for "-0000".
        return None
    reference = time.time() if now is None else now
    wait = moment.timestamp() - reference
    if not math.isfinite(wait):
        return None
    return max(0.0, wait)


def cap_retry_after(seconds: float | None, maximum: float) -> float | None:
    """Clamp a parsed Retry-After to ``[0, maximum]``; None stays None.

    Use it where waiting *up to* the cap is acceptable; to refuse instead of
    sleeping when the server asks for more, compare against the cap yourself
    (the retry policy raises `RetryAfterTooLong`).
    """
    if seconds is None:
        return None
    return min(max(0.0, seconds), maximum)
