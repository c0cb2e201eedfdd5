"""`USE_CLIENT_DEFAULT`: the one sentinel for "the default for this argument".

As httpx's ``UseClientDefault``: a dedicated type, so an argument's default is
never a real value compared by identity (a `RetryPolicy` that happens to be the
module's default instance would be mistaken for "no choice made").

- In a constructor (``Client(retry=...)``): the client's documented default
  (for ``retry``: a fresh ``RetryPolicy()`` with its own `RetryBudget`).
- In a call (``client.get(url, auth=..., follow_redirects=..., timeout=...)``):
  what the client was configured with.
"""

from __future__ import annotations

from typing import Final, final

__all__ = ["USE_CLIENT_DEFAULT", "UseClientDefault"]


@final
class UseClientDefault:
    """The type of `USE_CLIENT_DEFAULT`; test with ``isinstance``. Falsy, shown as its name."""

    __slots__ = ()

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault()
