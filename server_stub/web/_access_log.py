"""Keeping bearer capabilities out of logs: alert ids in paths are masked.

An alert id (``/v1/alerts/{alert_id}``) is a capability: whoever holds it sees the
popup and its discount token. Access logs are read by more people than the database,
so the id is logged as its first four characters and ``…``. `MaskAlertIds` is a
`logging.Filter` for uvicorn's access logger (its record args are ``(client, method,
path, http_version, status)``); `mask_path` serves the server's own log lines.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

__all__ = ["MaskAlertIds", "access_log_config", "mask_path"]

#: the part of an alert id that stays visible (enough to correlate two lines)
VISIBLE = 4
_ALERT_PATH = re.compile(r"(/v1/alerts/)([^/?#\s]+)")


def mask_path(path: str) -> str:
    """``path`` with every alert id cut to its first `VISIBLE` characters and ``…``."""
    return _ALERT_PATH.sub(lambda m: m.group(1) + m.group(2)[:VISIBLE] + "…", path)


class MaskAlertIds(logging.Filter):
    """Rewrites the path argument of uvicorn access-log records (and never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], mask_path(args[2]), *args[3:])
        return True


def access_log_config() -> dict[str, Any]:
    """uvicorn's logging config with `MaskAlertIds` on the access handler.

    Passed as ``log_config`` so that worker processes (``--workers N``), which
    configure logging afresh, mask too.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["mask_alert_ids"] = {"()": f"{__name__}.MaskAlertIds"}
    config["handlers"]["access"].setdefault("filters", []).append("mask_alert_ids")
    return config
