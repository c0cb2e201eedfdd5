"""Argument checks shared by every constructor: bad values fail at construction with a
`ConfigurationError` that names the argument, never later with a `TypeError`.

Numbers are real numbers: `int` or `float`, not `bool` (an accident, not a count),
not NaN, not a numeric string (``"5"`` is a bug in the caller's config loading).
"""

from __future__ import annotations

import math

from .errors import ConfigurationError

__all__ = ["is_real", "require_real"]


def is_real(value: object) -> bool:
    """True for an int or float that is not a bool and not NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not (isinstance(value, float) and math.isnan(value))


def require_real(
    value: object,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
) -> float:
    """Return ``value`` as a float if it is a real number within the bounds.

    Raises:
        ConfigurationError: naming ``name``, the bounds and what was given.
    """
    low_ok = (
        minimum is None
        or not is_real(value)
        or (value > minimum if exclusive_minimum else value >= minimum)  # type: ignore[operator]
    )
    high_ok = maximum is None or not is_real(value) or value <= maximum  # type: ignore[operator]
    if not is_real(value) or not low_ok or not high_ok:
        bounds = []
        if minimum is not None:
            bounds.append(f"{'>' if exclusive_minimum else '>='} {minimum:g}")
        if maximum is not None:
            bounds.append(f"<= {maximum:g}")
        within = f" {' and '.join(bounds)}" if bounds else ""
        raise ConfigurationError(f"{name} must be a number{within}, got {value!r}")
    return float(value)  # type: ignore[arg-type]
