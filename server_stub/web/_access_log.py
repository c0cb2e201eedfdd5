"""Keeping bearer capabilities out of logs: alert ids in paths are cut.

An alert id (``/v1/alerts/{alert_id}``) is a capability: whoever holds it sees the
popup and its discount token. Logs are read by more people than the database, so the id
is logged as its first four characters and ``…`` (enough to correlate two lines).
`server_stub.web._logging.MaskSecrets` applies `mask_path` to every log line.
"""

from __future__ import annotations

import re

__all__ = ["mask_path"]

#: the part of an alert id that stays visible
VISIBLE = 4
_ALERT_PATH = re.compile(r"(/v1/alerts/)([^/?#\s\"]+)")


def mask_path(text: str) -> str:
    """``text`` with every alert id cut to its first `VISIBLE` characters and ``…``."""
    return _ALERT_PATH.sub(lambda m: m.group(1) + m.group(2)[:VISIBLE] + "…", text)
