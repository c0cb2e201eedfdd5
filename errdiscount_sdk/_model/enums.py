"""The two small vocabularies every other module speaks: error category and severity."""

from __future__ import annotations

import enum

__all__ = ["ErrorCategory", "Severity"]


class ErrorCategory(enum.StrEnum):
    """Where an API failure comes from (the seed's four kinds of API error).

    - ``NETWORK``: no usable HTTP exchange happened (DNS, connect, timeouts, resets).
    - ``PROTOCOL``: an HTTP exchange happened and its status says it failed
      (403, 404, 5xx, ...), with no business code in the body.
    - ``BUSINESS``: the server understood the request and refused it for a
      business reason it names in a structured payload (``error_code``).
    - ``DATA_FORMAT``: a body that could not be parsed where one was expected,
      or a request the server rejected as malformed.
    """

    NETWORK = "network"
    PROTOCOL = "protocol"
    BUSINESS = "business"
    DATA_FORMAT = "data_format"


class Severity(enum.StrEnum):
    """How badly the failure hurts the user (the seed's graded compensation).

    - ``MINOR``: one operation failed; trying again or later is likely to work.
    - ``MODERATE``: a core function is blocked for this user until something changes.
    - ``SEVERE``: the service is down or broken for everyone.
    """

    MINOR = "minor"
    MODERATE = "moderate"
    SEVERE = "severe"
