"""``errdiscount demo``: a guided tour run entirely on loopback."""

from __future__ import annotations

__all__ = ["run_demo"]


def run_demo() -> int:
    print("errdiscount demo: coming together; see docs/index.md")
    return 0
