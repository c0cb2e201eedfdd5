"""PNG from the SVG charts, through the optional ``png`` extra (cairosvg)."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import InvalidReport, PngUnavailable

__all__ = ["png_available", "svg_to_png"]

_HINT = "PNG output needs cairosvg: pip install 'errdiscount-sdk[png]'"


def _cairosvg() -> Any:
    try:
        return importlib.import_module("cairosvg")
    except ImportError:
        raise PngUnavailable(_HINT) from None
    except OSError:  # cairosvg is there but the cairo C library is not
        raise PngUnavailable(f"{_HINT} (and the cairo library)") from None


def png_available() -> bool:
    """True when `svg_to_png` can work here."""
    try:
        _cairosvg()
    except PngUnavailable:
        return False
    return True


def svg_to_png(svg: str, *, scale: float = 2.0) -> bytes:
    """The PNG of an SVG document made by this package (``scale`` 2: sharp on HiDPI).

    External references are never fetched (cairosvg's ``unsafe`` stays off, and our
    charts have none).

    Raises:
        PngUnavailable: cairosvg (or cairo) is not installed.
        InvalidReport: the SVG could not be rendered.
    """
    cairosvg = _cairosvg()
    try:
        png: bytes = cairosvg.svg2png(bytestring=svg.encode("utf-8"), scale=scale, unsafe=False)
    except (ValueError, TypeError, LookupError, SyntaxError) as exc:  # its parser, bad input
        raise InvalidReport(f"the chart could not be rendered as PNG: {exc}") from None
    return png
