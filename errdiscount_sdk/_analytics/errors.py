"""The two errors of the report renderers."""

from __future__ import annotations

from .._model.errors import ConfigurationError, ErrDiscountError

__all__ = ["InvalidReport", "PngUnavailable"]


class InvalidReport(ErrDiscountError, ValueError):
    """A report document is not what the analytics API returns (the message names the member)."""


class PngUnavailable(ConfigurationError):
    """PNG output needs the optional ``png`` extra: ``pip install 'errdiscount-sdk[png]'``."""
